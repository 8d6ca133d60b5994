"""Keras 3 transcriptions of the tutorials' Keras networks (test references, not part of reslab).

- :func:`resnet18_000`: tutorial 000 (``000_0ff863154fdac21e.txt``), the TensorFlow 2 subclassed ``BasicBlock`` /
  ``ResNet([2, 2, 2, 2])``, 100 classes, built on ``(None, 32, 32, 3)``;
- :func:`lenet_004`, :func:`alexnet_004`, :func:`zfnet_004`, :func:`vgg16_004`, :func:`googlenet_004`,
  :func:`resnet50_004`, :func:`densenet121_004`: tutorial 004 (``004_536a8bc8a72bc43f.txt``).

The code is the tutorials', layer for layer: the same layer order, kernel sizes, strides, padding, biases,
BatchNormalization epsilons (Keras's default 1e-3 unless the code says otherwise; DenseNet's 1.1e-5), input sizes,
class counts and layer names (only DenseNet names its layers; every other layer is auto-named by Keras, as in
the tutorials). Kept as written, on purpose: VGG-16's ``(3, 2)`` kernel; GoogLeNet's Conv->ReLU->BN units, its
"5x5" branch written as 1x1 -> 1x1 and its ``Dense(1000, relu)`` + ``Dense(1000)`` applied to the 4-D
``(N, 1, 1, 1024)`` pooled map (so it returns ``(N, 1, 1, 1000)``); ResNet50's Conv->ReLU->BN units, 3x3
projection shortcuts and no ReLU after the add; DenseNet's ``reduction=0.0`` (no compression in the transitions).

Modernised only where Keras 3 no longer has the tutorial's API:

- ``tf.nn.relu`` (000) -> ``keras.ops.relu`` (Keras on the torch backend, no TensorFlow);
- ``model.build((None, 32, 32, 3))`` (000) creates no weights for a subclassed model in Keras 3 (it only marks it
  built, with a warning): the model is also called once on a zero image, which creates them (inference mode: the
  BatchNorm statistics are untouched);
- ``Convolution2D(n, 7, 7, subsample=s, bias=False)`` -> ``Conv2D(n, (7, 7), strides=s, use_bias=False)`` (DenseNet);
- ``merge([a, b], mode='concat', concat_axis=ax, name=...)`` -> ``concatenate([a, b], axis=ax, name=...)``;
- ``K.image_dim_ordering() == 'tf'`` -> channels_last (``concat_axis = 3``, input ``(224, 224, 3)``);
- DenseNet's ``Scale`` layer (flyyufelix's Keras 1 layer the tutorial uses without showing it): a Keras 3 custom
  layer computing ``gamma * x + beta`` per channel, weights created gamma first, then beta (both trainable).

Every builder takes ``logits=True`` by default: it drops only the final softmax (the final Dense keeps its name and
weights; DenseNet loses its last ``Activation('softmax', name='prob')`` layer, which has no weights);
``logits=False`` keeps the tutorial's softmax. Tutorial 000's ResNet-18 has no softmax (its ``fc`` is a plain
``Dense(num_class)``): both values give the same logits model there.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import Sequential, layers  # noqa: E402
from keras.layers import (  # noqa: E402
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    MaxPooling2D,
    ZeroPadding2D,
    add,
    concatenate,
)
from keras.models import Model  # noqa: E402


def _head(logits: bool) -> str | None:
    """The final layer's activation: none for logits, the tutorial's softmax otherwise."""
    return None if logits else "softmax"


# --------------------------------------------------------------------------------------------------------------------
# Tutorial 000: ResNet-18 (TensorFlow 2 subclassed Keras)
# --------------------------------------------------------------------------------------------------------------------


# basic Block模块
class BasicBlock(layers.Layer):
    def __init__(self, filter_num, stride=1):
        super().__init__()
        self.c1 = layers.Conv2D(filter_num, (3, 3), strides=stride, padding="same")
        self.b1 = layers.BatchNormalization()
        self.relu = layers.Activation("relu")

        self.c2 = layers.Conv2D(filter_num, (3, 3), strides=1, padding="same")
        self.b2 = layers.BatchNormalization()

        if stride != 1:
            self.downsample = Sequential()
            self.downsample.add(layers.Conv2D(filter_num, (1, 1), strides=stride))
        else:
            self.downsample = lambda x: x

    def call(self, inputs, training=None):
        out = self.c1(inputs)
        out = self.b1(out)
        out = self.relu(out)

        out = self.c2(out)
        out = self.b2(out)

        identity = self.downsample(inputs)
        out = layers.add([out, identity])
        output = keras.ops.relu(out)  # the tutorial's tf.nn.relu
        return output


class ResNet(keras.Model):
    def __init__(self, layer_dims, num_class=100):
        super().__init__()

        # 预处理层
        self.stem = Sequential(
            [
                layers.Conv2D(64, (3, 3), strides=(1, 1)),
                layers.BatchNormalization(),
                layers.Activation("relu"),
                layers.MaxPool2D(pool_size=(2, 2), strides=(1, 1)),
            ]
        )

        # 创建4个Res Block
        self.layer1 = self.build_resblock(64, layer_dims[0])
        self.layer2 = self.build_resblock(128, layer_dims[1], stride=2)
        self.layer3 = self.build_resblock(256, layer_dims[2], stride=2)
        self.layer4 = self.build_resblock(512, layer_dims[3], stride=2)

        self.avgpool = layers.GlobalAveragePooling2D()
        self.fc = layers.Dense(num_class)

    def call(self, input, training=None):
        x = self.stem(input)

        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)

        x = self.avgpool(x)
        x = self.fc(x)
        return x

    def build_resblock(self, filter_num, blocks, stride=1):
        res_blocks = Sequential()

        # 每个Res Block只有一次下采样的能力
        res_blocks.add(BasicBlock(filter_num, stride))

        for _ in range(1, blocks):
            res_blocks.add(BasicBlock(filter_num, stride=1))

        return res_blocks


def resnet18(num_class=100):
    return ResNet([2, 2, 2, 2], num_class=num_class)


def resnet18_000(num_classes: int = 100, logits: bool = True) -> ResNet:
    """Tutorial 000's ``model = resnet18(); model.build(input_shape=(None, 32, 32, 3))``, with its weights created.

    The tutorial's ``fc`` has no softmax: ``logits`` changes nothing (accepted for a uniform builder signature).
    """
    del logits  # the tutorial's model already returns logits
    model = resnet18(num_class=num_classes)
    model.build(input_shape=(None, 32, 32, 3))
    # Keras 3: build() on a subclassed model creates no weights; one call (inference mode) does
    model(np.zeros((1, 32, 32, 3), dtype="float32"), training=False)
    return model


# --------------------------------------------------------------------------------------------------------------------
# Tutorial 004: LeNet, AlexNet, ZF-Net, VGG-16 (Sequential)
# --------------------------------------------------------------------------------------------------------------------


def lenet_004(logits: bool = True) -> Sequential:
    model = Sequential()
    model.add(
        Conv2D(
            32,
            (5, 5),
            strides=(1, 1),
            input_shape=(28, 28, 1),
            padding="valid",
            activation="relu",
            kernel_initializer="uniform",
        )
    )
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Conv2D(64, (5, 5), strides=(1, 1), padding="valid", activation="relu", kernel_initializer="uniform"))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Flatten())
    model.add(Dense(100, activation="relu"))
    model.add(Dense(10, activation=_head(logits)))
    return model


def alexnet_004(logits: bool = True) -> Sequential:
    model = Sequential()
    model.add(
        Conv2D(
            96,
            (11, 11),
            strides=(4, 4),
            input_shape=(227, 227, 3),
            padding="valid",
            activation="relu",
            kernel_initializer="uniform",
        )
    )
    model.add(MaxPooling2D(pool_size=(3, 3), strides=(2, 2)))
    model.add(Conv2D(256, (5, 5), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(MaxPooling2D(pool_size=(3, 3), strides=(2, 2)))
    model.add(Conv2D(384, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(Conv2D(384, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(Conv2D(256, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(MaxPooling2D(pool_size=(3, 3), strides=(2, 2)))
    model.add(Flatten())
    model.add(Dense(4096, activation="relu"))
    model.add(Dropout(0.5))
    model.add(Dense(4096, activation="relu"))
    model.add(Dropout(0.5))
    model.add(Dense(1000, activation=_head(logits)))
    return model


def zfnet_004(logits: bool = True) -> Sequential:
    model = Sequential()
    model.add(
        Conv2D(
            96,
            (7, 7),
            strides=(2, 2),
            input_shape=(224, 224, 3),
            padding="valid",
            activation="relu",
            kernel_initializer="uniform",
        )
    )
    model.add(MaxPooling2D(pool_size=(3, 3), strides=(2, 2)))
    model.add(Conv2D(256, (5, 5), strides=(2, 2), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(MaxPooling2D(pool_size=(3, 3), strides=(2, 2)))
    model.add(Conv2D(384, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(Conv2D(384, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(Conv2D(256, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(MaxPooling2D(pool_size=(3, 3), strides=(2, 2)))
    model.add(Flatten())
    model.add(Dense(4096, activation="relu"))
    model.add(Dropout(0.5))
    model.add(Dense(4096, activation="relu"))
    model.add(Dropout(0.5))
    model.add(Dense(1000, activation=_head(logits)))
    return model


def vgg16_004(logits: bool = True) -> Sequential:
    model = Sequential()
    model.add(
        Conv2D(
            64,
            (3, 3),
            strides=(1, 1),
            input_shape=(224, 224, 3),
            padding="same",
            activation="relu",
            kernel_initializer="uniform",
        )
    )
    model.add(Conv2D(64, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    # (3, 2): as written in the tutorial
    model.add(Conv2D(128, (3, 2), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(Conv2D(128, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Conv2D(256, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(Conv2D(256, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(Conv2D(256, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Conv2D(512, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(Conv2D(512, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(Conv2D(512, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Conv2D(512, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(Conv2D(512, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(Conv2D(512, (3, 3), strides=(1, 1), padding="same", activation="relu", kernel_initializer="uniform"))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Flatten())
    model.add(Dense(4096, activation="relu"))
    model.add(Dropout(0.5))
    model.add(Dense(4096, activation="relu"))
    model.add(Dropout(0.5))
    model.add(Dense(1000, activation=_head(logits)))
    return model


# --------------------------------------------------------------------------------------------------------------------
# Tutorial 004: simplified GoogLeNet (functional)
# --------------------------------------------------------------------------------------------------------------------


def Conv2d_BN(x, nb_filter, kernel_size, padding="same", strides=(1, 1), name=None):
    """GoogLeNet's unit: Conv (with bias) -> ReLU -> BatchNormalization (eps 1e-3), in that order."""
    if name is not None:
        bn_name = name + "_bn"
        conv_name = name + "_conv"
    else:
        bn_name = None
        conv_name = None

    x = Conv2D(nb_filter, kernel_size, padding=padding, strides=strides, activation="relu", name=conv_name)(x)
    x = BatchNormalization(axis=3, name=bn_name)(x)
    return x


def Inception(x, nb_filter):
    branch1x1 = Conv2d_BN(x, nb_filter, (1, 1), padding="same", strides=(1, 1), name=None)

    branch3x3 = Conv2d_BN(x, nb_filter, (1, 1), padding="same", strides=(1, 1), name=None)
    branch3x3 = Conv2d_BN(branch3x3, nb_filter, (3, 3), padding="same", strides=(1, 1), name=None)

    # the tutorial's "5x5" branch: 1x1 -> 1x1
    branch5x5 = Conv2d_BN(x, nb_filter, (1, 1), padding="same", strides=(1, 1), name=None)
    branch5x5 = Conv2d_BN(branch5x5, nb_filter, (1, 1), padding="same", strides=(1, 1), name=None)

    branchpool = MaxPooling2D(pool_size=(3, 3), strides=(1, 1), padding="same")(x)
    branchpool = Conv2d_BN(branchpool, nb_filter, (1, 1), padding="same", strides=(1, 1), name=None)

    x = concatenate([branch1x1, branch3x3, branch5x5, branchpool], axis=3)

    return x


def googlenet_004(logits: bool = True) -> Model:
    """The tutorial's ``GoogLeNet()``. Its Dense layers act on the 4-D ``(N, 1, 1, 1024)`` pooled map (no Flatten):
    the model returns ``(N, 1, 1, 1000)``."""
    inpt = Input(shape=(224, 224, 3))
    # padding = 'same',填充为(步长-1)/2,还可以用ZeroPadding2D((3,3))
    x = Conv2d_BN(inpt, 64, (7, 7), strides=(2, 2), padding="same")
    x = MaxPooling2D(pool_size=(3, 3), strides=(2, 2), padding="same")(x)
    x = Conv2d_BN(x, 192, (3, 3), strides=(1, 1), padding="same")
    x = MaxPooling2D(pool_size=(3, 3), strides=(2, 2), padding="same")(x)
    x = Inception(x, 64)  # 256
    x = Inception(x, 120)  # 480
    x = MaxPooling2D(pool_size=(3, 3), strides=(2, 2), padding="same")(x)
    x = Inception(x, 128)  # 512
    x = Inception(x, 128)
    x = Inception(x, 128)
    x = Inception(x, 132)  # 528
    x = Inception(x, 208)  # 832
    x = MaxPooling2D(pool_size=(3, 3), strides=(2, 2), padding="same")(x)
    x = Inception(x, 208)
    x = Inception(x, 256)  # 1024
    x = AveragePooling2D(pool_size=(7, 7), strides=(7, 7), padding="same")(x)
    x = Dropout(0.4)(x)
    x = Dense(1000, activation="relu")(x)
    x = Dense(1000, activation=_head(logits))(x)
    model = Model(inpt, x, name="inception")
    return model


# --------------------------------------------------------------------------------------------------------------------
# Tutorial 004: ResNet-50 (functional)
# --------------------------------------------------------------------------------------------------------------------


def Conv2d_BN_resnet(x, nb_filter, kernel_size, strides=(1, 1), padding="same", name=None):
    """The ResNet section's own ``Conv2d_BN`` (same body as GoogLeNet's, ``strides`` before ``padding``)."""
    if name is not None:
        bn_name = name + "_bn"
        conv_name = name + "_conv"
    else:
        bn_name = None
        conv_name = None

    x = Conv2D(nb_filter, kernel_size, padding=padding, strides=strides, activation="relu", name=conv_name)(x)
    x = BatchNormalization(axis=3, name=bn_name)(x)
    return x


def Conv_Block(inpt, nb_filter, kernel_size, strides=(1, 1), with_conv_shortcut=False):
    x = Conv2d_BN_resnet(inpt, nb_filter=nb_filter[0], kernel_size=(1, 1), strides=strides, padding="same")
    x = Conv2d_BN_resnet(x, nb_filter=nb_filter[1], kernel_size=(3, 3), padding="same")
    x = Conv2d_BN_resnet(x, nb_filter=nb_filter[2], kernel_size=(1, 1), padding="same")
    if with_conv_shortcut:
        # kernel_size is (3, 3) at every call: 3x3 projection shortcuts
        shortcut = Conv2d_BN_resnet(inpt, nb_filter=nb_filter[2], strides=strides, kernel_size=kernel_size)
        x = add([x, shortcut])
        return x
    else:
        x = add([x, inpt])
        return x


def resnet50_004(logits: bool = True) -> Model:
    """The tutorial's ``ResNet50()``: 227x227 input, no ReLU after the residual additions."""
    inpt = Input(shape=(227, 227, 3))
    x = ZeroPadding2D((3, 3))(inpt)
    x = Conv2d_BN_resnet(x, nb_filter=64, kernel_size=(7, 7), strides=(2, 2), padding="valid")
    x = MaxPooling2D(pool_size=(3, 3), strides=(2, 2), padding="same")(x)
    x = Conv_Block(x, nb_filter=[64, 64, 256], kernel_size=(3, 3), strides=(1, 1), with_conv_shortcut=True)
    x = Conv_Block(x, nb_filter=[64, 64, 256], kernel_size=(3, 3))
    x = Conv_Block(x, nb_filter=[64, 64, 256], kernel_size=(3, 3))

    x = Conv_Block(x, nb_filter=[128, 128, 512], kernel_size=(3, 3), strides=(2, 2), with_conv_shortcut=True)
    x = Conv_Block(x, nb_filter=[128, 128, 512], kernel_size=(3, 3))
    x = Conv_Block(x, nb_filter=[128, 128, 512], kernel_size=(3, 3))
    x = Conv_Block(x, nb_filter=[128, 128, 512], kernel_size=(3, 3))

    x = Conv_Block(x, nb_filter=[256, 256, 1024], kernel_size=(3, 3), strides=(2, 2), with_conv_shortcut=True)
    x = Conv_Block(x, nb_filter=[256, 256, 1024], kernel_size=(3, 3))
    x = Conv_Block(x, nb_filter=[256, 256, 1024], kernel_size=(3, 3))
    x = Conv_Block(x, nb_filter=[256, 256, 1024], kernel_size=(3, 3))
    x = Conv_Block(x, nb_filter=[256, 256, 1024], kernel_size=(3, 3))
    x = Conv_Block(x, nb_filter=[256, 256, 1024], kernel_size=(3, 3))

    x = Conv_Block(x, nb_filter=[512, 512, 2048], kernel_size=(3, 3), strides=(2, 2), with_conv_shortcut=True)
    x = Conv_Block(x, nb_filter=[512, 512, 2048], kernel_size=(3, 3))
    x = Conv_Block(x, nb_filter=[512, 512, 2048], kernel_size=(3, 3))
    x = AveragePooling2D(pool_size=(7, 7))(x)
    x = Flatten()(x)
    x = Dense(1000, activation=_head(logits))(x)

    model = Model(inputs=inpt, outputs=x)
    return model


# --------------------------------------------------------------------------------------------------------------------
# Tutorial 004: DenseNet-121 (functional; flyyufelix's Keras 1 code with its Scale layer)
# --------------------------------------------------------------------------------------------------------------------

#: ``K.image_dim_ordering() == 'tf'`` (channels_last): the tutorial's ``global concat_axis``
concat_axis = 3


class Scale(keras.layers.Layer):
    """flyyufelix's ``Scale``: a learned per-channel affine ``gamma * x + beta`` (after each BatchNormalization
    in DenseNet), written for Keras 3. Weights: ``gamma`` (ones) then ``beta`` (zeros), both trainable; the
    Keras 1 layer's ``momentum`` is stored but unused, as there. Not registered with Keras, like the original: a
    legacy full-model file names it ``"class_name": "Scale"`` and loads with ``custom_objects={"Scale": Scale}``."""

    def __init__(self, axis=-1, momentum=0.9, beta_init="zero", gamma_init="one", **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.momentum = momentum
        self.beta_init = beta_init
        self.gamma_init = gamma_init

    def build(self, input_shape):
        shape = (int(input_shape[self.axis]),)
        self.gamma = self.add_weight(shape=shape, initializer=_initializer(self.gamma_init), name="gamma")
        self.beta = self.add_weight(shape=shape, initializer=_initializer(self.beta_init), name="beta")

    def call(self, x):
        broadcast_shape = [1] * len(x.shape)
        broadcast_shape[self.axis] = x.shape[self.axis]
        gamma = keras.ops.reshape(self.gamma, broadcast_shape)
        beta = keras.ops.reshape(self.beta, broadcast_shape)
        return gamma * x + beta

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(axis=self.axis, momentum=self.momentum, beta_init=self.beta_init, gamma_init=self.gamma_init)
        return config


def _initializer(name: str):
    """Keras 1's ``initializations.get('zero' / 'one')``."""
    return {"zero": "zeros", "one": "ones"}.get(name, name)


def densenet121_004(logits: bool = True, **kwargs) -> Model:
    """The tutorial's ``DenseNet121()`` (keyword arguments as there: ``reduction=0.0`` by default)."""
    return DenseNet121(logits=logits, **kwargs)


def DenseNet121(
    nb_dense_block=4,
    growth_rate=32,
    nb_filter=64,
    reduction=0.0,
    dropout_rate=0.0,
    weight_decay=1e-4,
    classes=1000,
    weights_path=None,
    logits=False,
):
    """Instantiate the DenseNet 121 architecture (the tutorial's docstring, abridged; ``logits`` added)."""
    eps = 1.1e-5

    # compute compression factor
    compression = 1.0 - reduction

    # channels_last (the tutorial's K.image_dim_ordering() == 'tf' branch)
    img_input = Input(shape=(224, 224, 3), name="data")

    # From architecture for ImageNet (Table 1 in the paper)
    nb_filter = 64
    nb_layers = [6, 12, 24, 16]  # For DenseNet-121

    # Initial convolution
    x = ZeroPadding2D((3, 3), name="conv1_zeropadding")(img_input)
    x = Conv2D(nb_filter, (7, 7), strides=(2, 2), name="conv1", use_bias=False)(x)
    x = BatchNormalization(epsilon=eps, axis=concat_axis, name="conv1_bn")(x)
    x = Scale(axis=concat_axis, name="conv1_scale")(x)
    x = Activation("relu", name="relu1")(x)
    x = ZeroPadding2D((1, 1), name="pool1_zeropadding")(x)
    x = MaxPooling2D((3, 3), strides=(2, 2), name="pool1")(x)

    # Add dense blocks
    for block_idx in range(nb_dense_block - 1):
        stage = block_idx + 2
        x, nb_filter = dense_block(
            x, stage, nb_layers[block_idx], nb_filter, growth_rate, dropout_rate=dropout_rate, weight_decay=weight_decay
        )

        # Add transition_block
        x = transition_block(
            x, stage, nb_filter, compression=compression, dropout_rate=dropout_rate, weight_decay=weight_decay
        )
        nb_filter = int(nb_filter * compression)

    final_stage = stage + 1
    x, nb_filter = dense_block(
        x, final_stage, nb_layers[-1], nb_filter, growth_rate, dropout_rate=dropout_rate, weight_decay=weight_decay
    )

    x = BatchNormalization(epsilon=eps, axis=concat_axis, name="conv" + str(final_stage) + "_blk_bn")(x)
    x = Scale(axis=concat_axis, name="conv" + str(final_stage) + "_blk_scale")(x)
    x = Activation("relu", name="relu" + str(final_stage) + "_blk")(x)
    x = GlobalAveragePooling2D(name="pool" + str(final_stage))(x)

    x = Dense(classes, name="fc6")(x)
    if not logits:
        x = Activation("softmax", name="prob")(x)

    model = Model(img_input, x, name="densenet")

    if weights_path is not None:
        model.load_weights(weights_path)

    return model


def conv_block(x, stage, branch, nb_filter, dropout_rate=None, weight_decay=1e-4):
    """Apply BatchNorm, Relu, bottleneck 1x1 Conv2D, 3x3 Conv2D, and option dropout"""
    eps = 1.1e-5
    conv_name_base = "conv" + str(stage) + "_" + str(branch)
    relu_name_base = "relu" + str(stage) + "_" + str(branch)

    # 1x1 Convolution (Bottleneck layer)
    inter_channel = nb_filter * 4
    x = BatchNormalization(epsilon=eps, axis=concat_axis, name=conv_name_base + "_x1_bn")(x)
    x = Scale(axis=concat_axis, name=conv_name_base + "_x1_scale")(x)
    x = Activation("relu", name=relu_name_base + "_x1")(x)
    x = Conv2D(inter_channel, (1, 1), name=conv_name_base + "_x1", use_bias=False)(x)

    if dropout_rate:
        x = Dropout(dropout_rate)(x)

    # 3x3 Convolution
    x = BatchNormalization(epsilon=eps, axis=concat_axis, name=conv_name_base + "_x2_bn")(x)
    x = Scale(axis=concat_axis, name=conv_name_base + "_x2_scale")(x)
    x = Activation("relu", name=relu_name_base + "_x2")(x)
    x = ZeroPadding2D((1, 1), name=conv_name_base + "_x2_zeropadding")(x)
    x = Conv2D(nb_filter, (3, 3), name=conv_name_base + "_x2", use_bias=False)(x)

    if dropout_rate:
        x = Dropout(dropout_rate)(x)

    return x


def transition_block(x, stage, nb_filter, compression=1.0, dropout_rate=None, weight_decay=1e-4):
    """Apply BatchNorm, 1x1 Convolution, averagePooling, optional compression, dropout"""
    eps = 1.1e-5
    conv_name_base = "conv" + str(stage) + "_blk"
    relu_name_base = "relu" + str(stage) + "_blk"
    pool_name_base = "pool" + str(stage)

    x = BatchNormalization(epsilon=eps, axis=concat_axis, name=conv_name_base + "_bn")(x)
    x = Scale(axis=concat_axis, name=conv_name_base + "_scale")(x)
    x = Activation("relu", name=relu_name_base)(x)
    x = Conv2D(int(nb_filter * compression), (1, 1), name=conv_name_base, use_bias=False)(x)

    if dropout_rate:
        x = Dropout(dropout_rate)(x)

    x = AveragePooling2D((2, 2), strides=(2, 2), name=pool_name_base)(x)

    return x


def dense_block(
    x, stage, nb_layers, nb_filter, growth_rate, dropout_rate=None, weight_decay=1e-4, grow_nb_filters=True
):
    """Build a dense_block where the output of each conv_block is fed to subsequent ones"""
    concat_feat = x

    for i in range(nb_layers):
        branch = i + 1
        x = conv_block(concat_feat, stage, branch, growth_rate, dropout_rate, weight_decay)
        concat_feat = concatenate([concat_feat, x], axis=concat_axis, name="concat_" + str(stage) + "_" + str(branch))

        if grow_nb_filters:
            nb_filter += growth_rate

    return concat_feat, nb_filter


#: the Keras builders by name (the parity tests' fixtures)
BUILDERS = {
    "resnet18_000": resnet18_000,
    "lenet_004": lenet_004,
    "alexnet_004": alexnet_004,
    "zfnet_004": zfnet_004,
    "vgg16_004": vgg16_004,
    "googlenet_004": googlenet_004,
    "resnet50_004": resnet50_004,
    "densenet121_004": densenet121_004,
}
