"""LeNet-5 (LeCun, Bottou, Bengio, Haffner, "Gradient-Based Learning Applied to Document Recognition",
Proc. IEEE 1998, Section II.B and Figure 2), and the wider variant of common Keras tutorials.

The paper's network for a 32x32 grey image::

    C1 6@5x5 -> S2 2x2 -> C3 16@5x5 -> S4 2x2 -> C5 120@5x5 -> F6 84 -> 10 outputs

Deviations from the paper, each deliberate and documented (the common modern reading):
- C3 connects every S2 map to every C3 map (the paper's Table I connects each C3 map to 3-6 S2
  maps only: 1,516 parameters instead of 2,416).
- S2/S4 are plain average (or max) pooling; the paper's subsampling units multiply the sum of
  their four inputs by a trainable coefficient, add a trainable bias (12 + 32 parameters) and
  then squash.
- The output layer is a linear layer with bias (logits for a cross-entropy loss); the paper's
  output layer is 10 Euclidean RBF units on fixed codes (840 weights, no bias).
- The squashing function is plain tanh (the paper scales it: 1.7159 tanh(2a/3)) or ReLU.
Hence 61,706 parameters: C1 156 + C3 2,416 + C5 48,120 + F6 10,164 + output 850. (The paper's
own network: 156 + 12 + 1,516 + 32 + 48,120 + 10,164 = 60,000 trainable parameters, the paper's
figure, plus 840 hand-chosen RBF weights.)
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError, InputShapeError
from .base import ReslabModel, make_classifier
from .layers import check_positive_ints, init_weights, make_activation
from .registry import register_model

POOLINGS = ("avg", "max")


class LeNet(ReslabModel):
    """LeNet-5 and its relatives: two convolution + pooling stages, an optional C5 convolution, one
    hidden dense layer and a linear classifier.

    Module names follow the paper: ``c1``, ``s2``, ``c3``, ``s4``, ``c5`` (a 5x5 convolution that
    reduces the 5x5 S4 maps to 1x1), ``f6`` and the classifier ``fc``.

    Args:
        image_size: the (square) input size. With a C5 convolution the network needs a 32x32 field,
            so a smaller even-margin input (28x28 MNIST) is zero-padded to 32 by C1's padding
            (``(32 - image_size) / 2`` = 2 for MNIST; the paper itself pads the 20x20 digit to
            32x32). Without C5 (``c5_channels=None``) the input is not padded and the size sets the
            number of inputs of the dense layer. The model accepts exactly this size.
        conv_channels: output channels of C1 and C3 (paper: 6, 16).
        c5_channels: channels of the C5 convolution (paper: 120), or None for a flatten + dense
            layout (the Keras-tutorial variant).
        hidden_features: units of the hidden dense layer F6 (paper: 84).
        kernel_size: convolution size (paper: 5).
        activation: ``"tanh"`` (as the paper), ``"relu"`` (modern tutorials) or ``"sigmoid"``.
        pooling: ``"avg"`` (the paper's subsampling) or ``"max"`` (modern tutorials).
        init: ``"paper"`` (Appendix A: weights uniform in +-2.4/fan-in, biases 0) or ``"he"``
            (He-normal convolutions, PyTorch's default linear layers).
        num_classes: classifier outputs (paper: 10; 0: no classifier, F6's output is returned).
        in_chans: input channels (1 for grey images).

    Raises:
        ConfigError: an unknown activation / pooling, or an image size the layout cannot take.
    """

    def __init__(
        self,
        *,
        image_size: int = 32,
        conv_channels: tuple[int, int] = (6, 16),
        c5_channels: int | None = 120,
        hidden_features: int = 84,
        kernel_size: int = 5,
        activation: str = "tanh",
        pooling: str = "avg",
        init: str = "paper",
        num_classes: int = 10,
        in_chans: int = 1,
    ):
        super().__init__()
        if init not in ("paper", "he"):
            raise ConfigError(f"init must be 'paper' or 'he', got {init!r}")
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        c1_out, c3_out = check_positive_ints("conv_channels", conv_channels, length=2)
        (hidden_features,) = check_positive_ints("hidden_features", (hidden_features,))
        (kernel_size,) = check_positive_ints("kernel_size", (kernel_size,))
        (image_size,) = check_positive_ints("image_size", (image_size,))
        make_activation(activation)  # validates the name before any layer is built

        # The spatial size after C1, S2, C3, S4 (valid convolutions, 2x2/2 pooling).
        if c5_channels is not None:
            (c5_channels,) = check_positive_ints("c5_channels", (c5_channels,))
            field = 4 * kernel_size + 3 * (kernel_size - 1)  # 32 for 5x5: C5 sees exactly a 5x5 map
            margin = field - image_size
            if margin < 0 or margin % 2:
                raise ConfigError(
                    f"image_size must be at most {field} with an even margin "
                    f"(C1 pads it to {field}x{field}), "
                    f"got {image_size}; pass c5_channels=None for a flatten + dense layout"
                )
            c1_padding = margin // 2
        else:
            c1_padding = 0
        size = (image_size + 2 * c1_padding - kernel_size + 1) // 2
        size = (size - kernel_size + 1) // 2  # the side of S4's maps (5 for the paper's C5 to reduce to 1)
        if size < 1:
            raise ConfigError(
                f"image_size={image_size} is too small for two {kernel_size}x{kernel_size} convolution + "
                f"2x2 pooling stages (it needs at least {3 * kernel_size + 1})"
            )

        self.num_classes, self.in_chans = num_classes, in_chans
        self.fixed_input_size = image_size
        self.min_input_size = image_size
        self.c1 = nn.Conv2d(in_chans, c1_out, kernel_size, padding=c1_padding)
        self.act1 = make_activation(activation)
        self.s2 = nn.AvgPool2d(2, 2) if pooling == "avg" else nn.MaxPool2d(2, 2)
        self.c3 = nn.Conv2d(c1_out, c3_out, kernel_size)
        self.act3 = make_activation(activation)
        self.s4 = nn.AvgPool2d(2, 2) if pooling == "avg" else nn.MaxPool2d(2, 2)
        self.feature_info = [
            {"num_chs": c1_out, "reduction": 2, "module": "s2"},
            {"num_chs": c3_out, "reduction": 4, "module": "s4"},
        ]
        if c5_channels is not None:
            self.c5 = nn.Conv2d(c3_out, c5_channels, kernel_size)
            self.act5 = make_activation(activation)
            flat = c5_channels
            self.feature_info.append({"num_chs": c5_channels, "reduction": image_size, "module": "c5"})
        else:
            flat = c3_out * size * size
        self.f6 = nn.Linear(flat, hidden_features)
        self.act6 = make_activation(activation)
        self.num_features = hidden_features
        self.fc = make_classifier(hidden_features, num_classes)
        if init == "paper":
            # Appendix A: uniform in +-2.4 / fan-in, which keeps the sigmoids in their linear range
            for m in self.modules():
                if isinstance(m, nn.Conv2d | nn.Linear):
                    fan_in = m.weight[0].numel()
                    nn.init.uniform_(m.weight, -2.4 / fan_in, 2.4 / fan_in)
                    nn.init.zeros_(m.bias)
        else:
            init_weights(self)

    def check_input(self, x: torch.Tensor) -> None:
        try:
            super().check_input(x)
        except InputShapeError as e:
            if x.dim() == 4 and x.shape[-1] != self.fixed_input_size:
                raise InputShapeError(f"{e} (build it with image_size={x.shape[-1]} for other inputs)") from None
            raise

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.s2(self.act1(self.c1(x)))
        x = self.s4(self.act3(self.c3(x)))
        if hasattr(self, "c5"):
            x = self.act5(self.c5(x))
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.act6(self.f6(torch.flatten(x, 1)))
        return x if pre_logits else self.fc(x)


LENET_PAPER = "LeCun et al. 1998, Gradient-Based Learning Applied to Document Recognition (Proc. IEEE)"

register_model(
    "lenet5",
    LeNet,
    family="mnist",
    input_size=(1, 32, 32),
    num_classes=10,
    paper=LENET_PAPER,
    params=61_706,
    params_source="C1 156 + C3 2,416 (full connections) + C5 48,120 + F6 10,164 + linear output 850; "
    "the paper's own 60,000 has C3's partial table, trainable subsampling and a fixed RBF output",
    accuracy="MNIST test error 0.95% (paper, Section III, LeNet-5 without distortions)",
    description="LeNet-5: C1 6@5x5, S2, C3 16@5x5, S4, C5 120@5x5, F6 84; tanh + average pooling "
    "(activation='relu', pooling='max' for the modern reading; image_size=28 for MNIST)",
)

register_model(
    "lenet5_wide",
    LeNet,
    family="mnist",
    input_size=(1, 28, 28),
    num_classes=10,
    paper=LENET_PAPER,
    description="The LeNet variant of common Keras MNIST tutorials: 32@5x5, max-pool, 64@5x5, max-pool, "
    "dense 100, dense 10 (ReLU), 28x28 input",
    image_size=28,
    conv_channels=(32, 64),
    c5_channels=None,
    hidden_features=100,
    activation="relu",
    pooling="max",
    init="he",
)
