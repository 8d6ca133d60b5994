"""Weights entries: keras.applications' ImageNet-1k weights (``keras_in1k``), read from the legacy ``.h5``
files keras.applications downloads (no TensorFlow needed).

Facts from Keras 3's ``keras/src/applications/{resnet,resnet_v2,vgg16,vgg19,densenet}.py``: the URL and the
MD5 ``file_hash`` Keras checks (the file names carry no hash), and ``preprocess_input``'s mode:
``caffe`` for ResNet v1 and VGG (BGR, 0-255, ImageNet mean subtracted: reslab's loader reverses the first
convolution's input channels, so the network takes RGB), ``tf`` for ResNetV2 (x / 127.5 - 1) and ``torch``
for DenseNet. The figures are keras.io's applications table (top-1 / top-5 on the ImageNet validation set).
"""

from __future__ import annotations

from ..preprocessing import CAFFE_MEAN, CAFFE_STD, IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from ..registry import WeightsEntry, register_weights

BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"
SOURCE = "keras.io/api/applications (ImageNet val, top-1 / top-5)"
KERAS_LICENSE = "Apache-2.0 (Keras)"

#: Keras's examples load images with ``load_img(path, target_size=(224, 224))``: the whole image squashed to
#: 224x224 with PIL's nearest-neighbour resampling (load_img's default interpolation)
_SQUASH_NOTE = (
    "Keras's examples resize the whole image to 224x224 with load_img's default nearest-neighbour "
    "interpolation (no centre crop); the published figures are single centre crops."
)


def _prep(mode: str) -> Preprocessing:
    mean, std, order = {
        "caffe": (CAFFE_MEAN, CAFFE_STD, "BGR"),
        "tf": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "RGB"),
        "torch": (IMAGENET_MEAN, IMAGENET_STD, "RGB"),
    }[mode]
    return Preprocessing(
        input_size=(3, 224, 224),
        resize=224,
        crop="squash",
        interpolation="nearest",
        mean=mean,
        std=std,
        mode=mode,
        channel_order=order,
    )


#: reslab model -> (folder/file name, MD5, top-1, top-5, mode, weights' terms, default, model_args)
_TABLE = {
    "resnet50_keras": (
        "resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5",
        "2cb95161c43110f7111970584f804107",
        74.9,
        92.1,
        "caffe",
        "MIT (ported from Kaiming He's release)",
        True,
        {},
    ),
    "resnet101_keras": (
        "resnet/resnet101_weights_tf_dim_ordering_tf_kernels.h5",
        "f1aeb4b969a6efcfb50fad2f0c20cfc5",
        76.4,
        92.8,
        "caffe",
        "",
        True,
        {},
    ),
    "resnet152_keras": (
        "resnet/resnet152_weights_tf_dim_ordering_tf_kernels.h5",
        "100835be76be38e30d865e96f2aaae62",
        76.6,
        93.1,
        "caffe",
        "",
        True,
        {},
    ),
    "resnet50v2": (
        "resnet/resnet50v2_weights_tf_dim_ordering_tf_kernels.h5",
        "3ef43a0b657b3be2300d5770ece849e0",
        76.0,
        93.0,
        "tf",
        "",
        True,
        {},
    ),
    "resnet101v2": (
        "resnet/resnet101v2_weights_tf_dim_ordering_tf_kernels.h5",
        "6343647c601c52e1368623803854d971",
        77.2,
        93.8,
        "tf",
        "",
        True,
        {},
    ),
    "resnet152v2": (
        "resnet/resnet152v2_weights_tf_dim_ordering_tf_kernels.h5",
        "a49b44d1979771252814e80f8ec446f9",
        78.0,
        94.2,
        "tf",
        "",
        True,
        {},
    ),
    "vgg16": (
        "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        "64373286793e3c8b2b4e3219cbf3544b",
        71.3,
        90.1,
        "caffe",
        "CC-BY-4.0 (Oxford VGG)",
        False,
        {},
    ),
    "vgg19": (
        "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels.h5",
        "cbe5617147190e668d6c5d5026f83318",
        71.3,
        90.0,
        "caffe",
        "CC-BY-4.0 (Oxford VGG)",
        False,
        {},
    ),
    "densenet121": (
        "densenet/densenet121_weights_tf_dim_ordering_tf_kernels.h5",
        "9d60b8095a5708f2dcce2bca79d332c7",
        75.0,
        92.3,
        "torch",
        "",
        False,
        {"bn_eps": 1.001e-5},
    ),
    "densenet169": (
        "densenet/densenet169_weights_tf_dim_ordering_tf_kernels.h5",
        "d699b8f76981ab1b30698df4c175e90b",
        76.2,
        93.2,
        "torch",
        "",
        False,
        {"bn_eps": 1.001e-5},
    ),
    "densenet201": (
        "densenet/densenet201_weights_tf_dim_ordering_tf_kernels.h5",
        "1ceb130c1ea1b78c3bf6114dbdfd8807",
        77.3,
        93.6,
        "torch",
        "",
        False,
        {"bn_eps": 1.001e-5},
    ),
}


def _register() -> None:
    for model, (path, md5, top1, top5, mode, terms, default, model_args) in _TABLE.items():
        notes = _SQUASH_NOTE
        if mode == "caffe":
            notes += " Caffe mode: the file's first convolution takes BGR; reslab reverses it to take RGB."
        if model_args:
            notes += " Keras's BatchNormalization epsilon is 1.001e-5 (bn_eps)."
        register_weights(
            WeightsEntry(
                model=model,
                tag="keras_in1k",
                url=BASE + path,
                hash="md5:" + md5,
                layout="keras_h5",
                preprocessing=_prep(mode),
                classes="imagenet",
                metrics={"top1": top1, "top5": top5},
                metrics_source=SOURCE,
                license=f"{KERAS_LICENSE}; weights: {terms or 'as keras.io states'}",
                model_args=dict(model_args),
                default=default,
                notes=notes,
            )
        )


_register()
