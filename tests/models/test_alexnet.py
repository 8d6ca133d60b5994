"""AlexNet (torchvision's single tower and the 2012 paper's) and ZF-Net."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import reslab
from reslab.errors import ConfigError, InputShapeError
from reslab.models.layers import local_response_norm

from .zoo_helpers import (
    check_export,
    check_forward_backward,
    check_pickle,
    check_summary,
    check_too_small,
    check_unknown_override,
    eval_logits,
    key_shapes,
    meta_model,
    n_params,
)

# torchvision.models.alexnet's state dict: (key, shape), in order
TORCHVISION_ALEXNET = [
    ("features.0.weight", (64, 3, 11, 11)),
    ("features.0.bias", (64,)),
    ("features.3.weight", (192, 64, 5, 5)),
    ("features.3.bias", (192,)),
    ("features.6.weight", (384, 192, 3, 3)),
    ("features.6.bias", (384,)),
    ("features.8.weight", (256, 384, 3, 3)),
    ("features.8.bias", (256,)),
    ("features.10.weight", (256, 256, 3, 3)),
    ("features.10.bias", (256,)),
    ("classifier.1.weight", (4096, 9216)),
    ("classifier.1.bias", (4096,)),
    ("classifier.4.weight", (4096, 4096)),
    ("classifier.4.bias", (4096,)),
    ("classifier.6.weight", (1000, 4096)),
    ("classifier.6.bias", (1000,)),
]


def _conv_params(cin, cout, k, groups=1):
    return cout * (cin // groups) * k * k + cout


DENSE = 9216 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000


def test_parameter_counts():
    assert n_params(meta_model("alexnet")) == 61_100_840 == reslab.get_model_entry("alexnet").params
    # the 2012 paper on one device: 96@11x11, 256@5x5, 384@3x3, 384@3x3, 256@3x3, then 6*6*256 -> 4096 -> 4096
    one_device = (
        _conv_params(3, 96, 11)
        + _conv_params(96, 256, 5)
        + _conv_params(256, 384, 3)
        + _conv_params(384, 384, 3)
        + _conv_params(384, 256, 3)
        + DENSE
    )
    assert n_params(meta_model("alexnet_paper")) == one_device == 62_378_344
    # two towers: conv2, conv4, conv5 see only their own GPU's maps (Figure 2): the paper's "60 million"
    two_towers = (
        _conv_params(3, 96, 11)
        + _conv_params(96, 256, 5, 2)
        + _conv_params(256, 384, 3)
        + _conv_params(384, 384, 3, 2)
        + _conv_params(384, 256, 3, 2)
        + DENSE
    )
    assert n_params(meta_model("alexnet_paper", towers=2)) == two_towers == 60_965_224
    zf = (
        _conv_params(3, 96, 7)
        + _conv_params(96, 256, 5)
        + _conv_params(256, 384, 3)
        + _conv_params(384, 384, 3)
        + _conv_params(384, 256, 3)
        + DENSE
    )
    assert n_params(meta_model("zfnet")) == zf


def test_alexnet_state_dict_equals_torchvision():
    assert key_shapes(meta_model("alexnet")) == TORCHVISION_ALEXNET


def _map_sizes(model, size):
    x = torch.zeros(1, 3, size, size)
    sizes = []
    for layer in model.features:
        x = layer(x)
        if isinstance(layer, nn.Conv2d | nn.MaxPool2d):
            sizes.append(x.shape[-1])
    return sizes


def test_map_sizes_follow_the_papers():
    # AlexNet Figure 2 (227 input): 55 -> pool 27 -> 27 -> pool 13 -> 13 -> 13 -> 13 -> pool 6
    assert _map_sizes(reslab.create_model("alexnet_paper"), 227) == [55, 27, 27, 13, 13, 13, 13, 6]
    # ZF-Net Figure 3: 110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 13 -> 6
    assert _map_sizes(reslab.create_model("zfnet"), 224) == [110, 55, 26, 13, 13, 13, 13, 6]


def test_paper_layout_order_normalisation_dropout_and_init():
    paper = reslab.create_model("alexnet_paper")
    kinds = [type(m).__name__ for m in paper.features]
    # Section 3.5: response normalisation follows conv1/conv2 (after the ReLU), then max-pooling
    assert kinds[:8] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"] * 2
    zf_kinds = [type(m).__name__ for m in reslab.create_model("zfnet").features]
    assert zf_kinds[:8] == ["Conv2d", "ReLU", "MaxPool2d", "LocalResponseNorm"] * 2  # ZF: pool, then normalise
    # dropout on the outputs of the two hidden layers (paper) vs on the inputs of fc6/fc7 (torchvision)
    assert [type(m).__name__ for m in paper.classifier] == [
        "Linear",
        "ReLU",
        "Dropout",
        "Linear",
        "ReLU",
        "Dropout",
        "Linear",
    ]
    assert [type(m).__name__ for m in reslab.create_model("alexnet").classifier][:2] == ["Dropout", "Linear"]
    assert all(m.p == 0.5 for m in paper.classifier if isinstance(m, nn.Dropout))
    # Section 5: N(0, 0.01) weights; biases 1 in conv2, conv4, conv5 and the hidden dense layers
    convs = [m for m in paper.features if isinstance(m, nn.Conv2d)]
    dense = [m for m in paper.classifier if isinstance(m, nn.Linear)]
    assert [float(m.bias.detach().mean()) for m in convs] == [0.0, 1.0, 0.0, 1.0, 1.0]
    assert [float(m.bias.detach().mean()) for m in dense] == [1.0, 1.0, 0.0]
    assert abs(float(dense[0].weight.detach().std()) - 0.01) < 1e-3


def test_response_normalisation_is_the_papers_formula():
    # Section 3.3: b_i = a_i / (k + alpha * sum_{j=max(0,i-n/2)}^{min(N-1,i+n/2)} a_j^2)^beta,
    # k=2, n=5, alpha=1e-4, beta=0.75; large activations so alpha's scale matters
    a = torch.randn(2, 7, 3, 3) * 30
    expected = torch.empty_like(a)
    for i in range(7):
        window = a[:, max(0, i - 2) : min(7, i + 3)]
        expected[:, i] = a[:, i] / (2 + 1e-4 * window.square().sum(1)) ** 0.75
    torch.testing.assert_close(local_response_norm(5, 1e-4, 0.75, 2.0)(a), expected)
    lrn = next(m for m in reslab.create_model("alexnet_paper").features if isinstance(m, nn.LocalResponseNorm))
    torch.testing.assert_close(lrn(a), expected)
    # torch's (and Caffe's) convention: alpha multiplies the mean of the squares
    caffe = local_response_norm(5, 1e-4, 0.75, 2.0, alpha_applies_to="mean")
    assert caffe.alpha == pytest.approx(1e-4) and not torch.allclose(caffe(a), expected)
    with pytest.raises(ConfigError, match="alpha_applies_to"):
        local_response_norm(alpha_applies_to="median")


def test_zfnet_pool_switches():
    model = reslab.create_model("zfnet").eval()
    x = torch.randn(1, 3, 224, 224)
    pre_pool = {}
    hooks = [
        m.register_forward_hook(lambda mod, inp, out, i=i: pre_pool.__setitem__(f"features.{i}", inp[0]))
        for i, m in enumerate(model.features)
        if isinstance(m, nn.MaxPool2d)
    ]
    with torch.no_grad():
        plain = model.forward_features(x)
        for h in hooks:
            h.remove()
        features, switches = model.forward_features(x, return_indices=True)
        logits = model(x)
    assert isinstance(logits, torch.Tensor) and logits.shape == (1, 1000)  # the normal forward: logits only
    torch.testing.assert_close(features, plain, rtol=0, atol=0)
    assert list(switches) == list(pre_pool) == ["features.2", "features.6", "features.14"]
    for name, switch in switches.items():
        before = pre_pool[name]
        assert tuple(switch.input_size) == tuple(before.shape[-2:])
        pool = model.features[int(name.split(".")[1])]
        pooled = F.max_pool2d(before, pool.kernel_size, pool.stride, ceil_mode=pool.ceil_mode)
        # the switch points at the maximum of each window...
        at_switch = before.flatten(2).gather(2, switch.indices.flatten(2)).view_as(pooled)
        torch.testing.assert_close(at_switch, pooled, rtol=0, atol=0)
        # ...which is what the deconvnet's unpooling needs
        unpooled = F.max_unpool2d(pooled, switch.indices, pool.kernel_size, pool.stride, output_size=switch.input_size)
        assert unpooled.shape == before.shape
        # (maps are ReLU outputs, >= 0, so pooling the unpooled map gives the pooled map back)
        repooled = F.max_pool2d(unpooled, pool.kernel_size, pool.stride, ceil_mode=pool.ceil_mode)
        torch.testing.assert_close(repooled, pooled, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["alexnet", "alexnet_paper", "zfnet"])
def test_forward_backward_at_default_and_other_configuration(name):
    model = reslab.create_model(name)
    default = reslab.get_model_entry(name).input_size[-1]
    assert eval_logits(model, default).shape == (1, 1000)
    if model.fixed_input_size is None:
        check_forward_backward(model, model.min_input_size)  # 63x63, the smallest legal size
        assert eval_logits(model, 300).shape == (1, 1000)
    else:
        # dense layers fix the input size; another configuration instead of another size
        grey = reslab.create_model(name, in_chans=1, num_classes=10)
        check_forward_backward(grey, default)
        with pytest.raises(InputShapeError, match=f"{default}x{default}"):
            model(torch.randn(1, 3, default + 1, default + 1))


@pytest.mark.parametrize("name", ["alexnet", "alexnet_paper", "zfnet"])
def test_errors_summary_pickle(name):
    model = reslab.create_model(name, num_classes=10)
    check_too_small(model)
    check_unknown_override(name)
    size = model.fixed_input_size or model.min_input_size
    check_summary(model, (3, size, size))
    check_pickle(model, size)


def test_export_and_classifier_reset():
    model = reslab.create_model("alexnet", num_classes=5)
    check_export(model, 63)
    model.reset_classifier(3)
    assert eval_logits(model, 63).shape == (1, 3)
    model.reset_classifier(0)
    assert eval_logits(model, 63).shape == (1, 4096)
    with pytest.raises(ConfigError, match="layout"):
        reslab.create_model("alexnet", layout="vgg")
    with pytest.raises(ConfigError, match="towers"):
        reslab.create_model("alexnet", towers=2)
    with pytest.raises(ConfigError, match="dropout"):
        reslab.create_model("alexnet", dropout=1.5)
