"""GoogLeNet / Inception v1: torchvision's layout (counts, keys) and the paper's (Table 1, Figure 3,
Section 5), auxiliary classifiers in training mode only."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import reslab
from reslab.errors import ConfigError
from reslab.models.base import AuxLogits

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

# Table 1 of the paper: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj; and the output depth
TABLE_1 = {
    "3a": ((64, 96, 128, 16, 32, 32), 256),
    "3b": ((128, 128, 192, 32, 96, 64), 480),
    "4a": ((192, 96, 208, 16, 48, 64), 512),
    "4b": ((160, 112, 224, 24, 64, 64), 512),
    "4c": ((128, 128, 256, 24, 64, 64), 512),
    "4d": ((112, 144, 288, 32, 64, 64), 528),
    "4e": ((256, 160, 320, 32, 128, 128), 832),
    "5a": ((256, 160, 320, 32, 128, 128), 832),
    "5b": ((384, 192, 384, 48, 128, 128), 1024),
}


def _basic_conv(prefix, cout, cin, k):
    """torchvision's BasicConv2d: a bias-free convolution and a BatchNorm2d."""
    keys = [(f"{prefix}.conv.weight", (cout, cin, k, k))]
    keys += [(f"{prefix}.bn.{p}", (cout,)) for p in ("weight", "bias", "running_mean", "running_var")]
    return keys + [(f"{prefix}.bn.num_batches_tracked", ())]


def torchvision_googlenet_keys(aux: bool = True) -> list[tuple[str, tuple[int, ...]]]:
    keys = _basic_conv("conv1", 64, 3, 7) + _basic_conv("conv2", 64, 64, 1) + _basic_conv("conv3", 192, 64, 3)
    cin = 192
    for name, ((c1, c3r, c3, c5r, c5, pp), out) in TABLE_1.items():
        p = f"inception{name}"
        keys += _basic_conv(f"{p}.branch1", c1, cin, 1)
        keys += _basic_conv(f"{p}.branch2.0", c3r, cin, 1) + _basic_conv(f"{p}.branch2.1", c3, c3r, 3)
        # torchvision's known deviation: a 3x3 convolution in the "5x5" branch
        keys += _basic_conv(f"{p}.branch3.0", c5r, cin, 1) + _basic_conv(f"{p}.branch3.1", c5, c5r, 3)
        keys += _basic_conv(f"{p}.branch4.1", pp, cin, 1)
        cin = out
    if aux:
        for name, chs in (("aux1", 512), ("aux2", 528)):
            keys += _basic_conv(f"{name}.conv", 128, chs, 1)
            keys += [(f"{name}.fc1.weight", (1024, 2048)), (f"{name}.fc1.bias", (1024,))]
            keys += [(f"{name}.fc2.weight", (1000, 1024)), (f"{name}.fc2.bias", (1000,))]
    return keys + [("fc.weight", (1000, 1024)), ("fc.bias", (1000,))]


def _aux_head_params(in_chs: int) -> int:
    # 1x1 conv to 128 (+ BN), dense 2048 -> 1024, dense 1024 -> 1000
    return in_chs * 128 + 2 * 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000


def test_parameter_counts_match_torchvision():
    assert n_params(meta_model("googlenet", aux_logits=False)) == 6_624_904
    assert reslab.get_model_entry("googlenet").params == 6_624_904
    with_aux = meta_model("googlenet")
    assert n_params(with_aux) == 6_624_904 + _aux_head_params(512) + _aux_head_params(528) == 13_004_888
    excluding_aux = sum(p.numel() for n, p in with_aux.named_parameters() if not n.startswith("aux"))
    assert excluding_aux == 6_624_904


@pytest.mark.parametrize("aux", [True, False])
def test_state_dict_equals_torchvision(aux):
    assert key_shapes(meta_model("googlenet", aux_logits=aux)) == torchvision_googlenet_keys(aux)


def test_table_1_depths_and_map_sizes():
    for layout in ("googlenet", "googlenet_paper"):
        model = reslab.create_model(layout).eval()
        seen = {}
        hooks = [
            getattr(model, f"inception{n}").register_forward_hook(
                lambda m, i, o, n=n, seen=seen: seen.__setitem__(n, tuple(o.shape[1:]))
            )
            for n in TABLE_1
        ]
        eval_logits(model, 224)
        for h in hooks:
            h.remove()
        # Table 1: 28x28 for 3a/3b, 14x14 for 4a-4e, 7x7 for 5a/5b
        side = {"3": 28, "4": 14, "5": 7}
        assert seen == {n: (out, side[n[0]], side[n[0]]) for n, (_, out) in TABLE_1.items()}


def test_paper_layout_follows_the_paper():
    paper = reslab.create_model("googlenet_paper")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in paper.modules())
    assert all(m.bias is not None for m in paper.modules() if isinstance(m, nn.Conv2d))
    for name in TABLE_1:
        five = getattr(paper, f"inception{name}").branch3[1].conv
        assert five.kernel_size == (5, 5) and five.padding == (2, 2)
    assert isinstance(paper.lrn1, nn.LocalResponseNorm) and isinstance(paper.lrn2, nn.LocalResponseNorm)
    assert paper.maxpool4.kernel_size == 3 and paper.dropout.p == 0.4
    assert isinstance(paper.avgpool, nn.AvgPool2d) and paper.avgpool.kernel_size == 7
    for aux in (paper.aux1, paper.aux2):  # Section 5: 5x5/3 average pool, 128 1x1, dense 1024, dropout 0.7
        assert (aux.pool.kernel_size, aux.pool.stride) == (5, 3)
        assert aux.conv.conv.out_channels == 128 and aux.fc1.out_features == 1024 and aux.dropout.p == 0.7
    torchvision = reslab.create_model("googlenet")
    assert torchvision.maxpool4.kernel_size == 2 and torchvision.dropout.p == 0.2
    assert not hasattr(torchvision, "lrn1")
    assert all(m.eps == 1e-3 for m in torchvision.modules() if isinstance(m, nn.BatchNorm2d))
    # the counts differ by exactly: 5x5 instead of 3x3 kernels, biases instead of BN's gamma and beta
    convs_tv = [m for m in torchvision.modules() if isinstance(m, nn.Conv2d)]
    five_by_five = sum(c5r * c5 * (25 - 9) for (_, _, _, c5r, c5, _), _ in TABLE_1.values())
    bn_affine = sum(2 * c.out_channels for c in convs_tv)
    biases = sum(c.out_channels for c in convs_tv)
    assert n_params(paper) == n_params(torchvision) + five_by_five - bn_affine + biases


@pytest.mark.parametrize("name", ["googlenet", "googlenet_paper"])
def test_aux_logits_in_training_mode_only(name):
    model = reslab.create_model(name, num_classes=10, dropout=0.0, aux_dropout=0.0)
    size = model.fixed_input_size or 64
    x = torch.randn(2, 3, size, size)
    taps = {}
    for n in ("4a", "4d"):
        getattr(model, f"inception{n}").register_forward_hook(lambda m, i, o, n=n: taps.__setitem__(n, o))
    model.train()
    out = model(x)
    assert isinstance(out, AuxLogits) and all(t.shape == (2, 10) for t in out)
    # aux1 reads the output of 4a, aux2 the output of 4d (Section 5), in that order
    with torch.no_grad():
        torch.testing.assert_close(out.aux1, model.aux1(taps["4a"]))
        torch.testing.assert_close(out.aux2, model.aux2(taps["4d"]))
    model.eval()
    logits = model(x)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 10)
    no_aux = reslab.create_model(name, aux_logits=False).train()
    assert not hasattr(no_aux, "aux1") and isinstance(no_aux(x), torch.Tensor)


def test_forward_backward_default_and_other_sizes():
    model = reslab.create_model("googlenet")
    assert eval_logits(model, 224).shape == (1, 1000)
    check_forward_backward(model, 64, batch=2)  # aux heads included (training mode)
    assert eval_logits(model, 97).shape == (1, 1000)
    paper = reslab.create_model("googlenet_paper", in_chans=1, num_classes=10)
    check_forward_backward(paper, 224)  # the paper's dense aux layers fix 224x224; batch 1 (no BN)
    assert eval_logits(reslab.create_model("googlenet_paper"), 224).shape == (1, 1000)


@pytest.mark.parametrize("name", ["googlenet", "googlenet_paper"])
def test_errors_summary_pickle(name):
    model = reslab.create_model(name, num_classes=10)
    check_too_small(model)  # googlenet: 15x15, as torchvision documents; googlenet_paper: 224 only
    check_unknown_override(name)
    size = model.fixed_input_size or 64
    check_summary(model, (3, size, size))
    check_pickle(model, size)


def test_export_reset_classifier_and_options():
    model = reslab.create_model("googlenet", num_classes=10)
    assert model.min_input_size == 15
    check_export(model, 64)
    model.reset_classifier(4)
    model.train()
    out = model(torch.randn(2, 3, 64, 64))
    assert [t.shape[-1] for t in out] == [4, 4, 4]  # the aux heads are reset with the main classifier
    with pytest.raises(ConfigError, match="layout"):
        reslab.create_model("googlenet", layout="inception_v3")
    with pytest.raises(ConfigError, match="aux_dropout"):
        reslab.create_model("googlenet", aux_dropout=1.0)


def test_transform_input_is_torchvisions_formula():
    # torchvision's GoogLeNet._transform_input, written out: x_c * (std_c / 0.5) + (mean_c - 0.5) / 0.5
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    x = torch.randn(2, 3, 40, 40)
    expected = torch.cat([x[:, c : c + 1] * (std[c] / 0.5) + (mean[c] - 0.5) / 0.5 for c in range(3)], 1)
    on = reslab.create_model("googlenet", transform_input=True, aux_logits=False).eval()
    torch.testing.assert_close(on._transform_input(x), expected)
    # the input [0, 1] pixels normalised with ImageNet's statistics come out as (pixels - 0.5) / 0.5
    pixels = torch.rand(1, 3, 8, 8)
    normalised = (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(on._transform_input(normalised), (pixels - 0.5) / 0.5)
    off = reslab.create_model("googlenet", aux_logits=False).eval()
    assert off.transform_input is False
    off.load_state_dict(on.state_dict())  # the option adds no state: torchvision's weights load either way
    with torch.no_grad():
        torch.testing.assert_close(on(x), off(expected))
