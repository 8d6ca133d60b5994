"""Pre-activation networks as "Identity Mappings" (He et al. 2016) and its authors' code built them.

The reference is the paper's appendix and github.com/KaimingHe/resnet-1k-layers ``resnet-pre-act.lua``:
the first activation sits right after conv1 and BEFORE the split into branch and shortcut; every
stage's first unit pre-activates before splitting (its shortcut, identity, zero-padding or projection,
sees the activated input), the other units pre-activate their branch only; a bottleneck's stride is
on its first 1x1; the network ends in BN-ReLU before the average pool.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import reslab
from reslab.models.shortcuts import ZeroPadShortcut

from .conftest import randomise_bn


def _bn(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def _capture(module: torch.nn.Module, store: dict, key: str, what: str = "output"):
    def hook(_m, args, out):
        store[key] = (args[0] if what == "input" else out).detach().clone()

    return module.register_forward_hook(hook)


BASIC_PREACT = [
    ("preact_resnet110", {}),
    ("resnet20", {"unit": "full_preact"}),
    ("resnet56", {"unit": "full_preact", "shortcut": "B"}),
]


@pytest.mark.parametrize("name,overrides", BASIC_PREACT)
def test_first_units_shortcut_carries_the_activated_conv1_output(name, overrides):
    # The paper's appendix: "we adopt the first activation right after conv1 and before splitting
    # into two paths". With the first unit's branch silenced, its output is its shortcut alone,
    # which must be BN-ReLU of conv1's output (not conv1's raw output).
    torch.manual_seed(0)
    model = reslab.create_model(name, **overrides).eval()
    randomise_bn(model)
    first = model.layer1[0]
    with torch.no_grad():
        first.conv2.weight.zero_()  # the branch's last layer: F(x) = 0
    seen: dict = {}
    hooks = [_capture(model.conv1, seen, "stem"), _capture(first, seen, "unit")]
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    for h in hooks:
        h.remove()
    activated = F.relu(_bn(seen["stem"], first.bn1))
    assert torch.allclose(seen["unit"], activated, atol=1e-6)
    assert not torch.allclose(seen["unit"], seen["stem"], atol=1e-3)  # the raw output would differ


def test_relu_only_preact_first_unit_shortcut_carries_the_activated_conv1_output():
    # (d): conv1 -> BN, then ReLU before every convolution: the first ReLU precedes the split.
    torch.manual_seed(0)
    model = reslab.create_model("resnet20", unit="relu_only_preact").eval()
    randomise_bn(model)
    first = model.layer1[0]
    with torch.no_grad():
        first.bn2.weight.zero_()  # F(x) = BN(conv(...)) = 0
        first.bn2.bias.zero_()
    seen: dict = {}
    hooks = [_capture(model.bn1, seen, "stem"), _capture(first, seen, "unit")]
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    for h in hooks:
        h.remove()
    assert torch.allclose(seen["unit"], F.relu(seen["stem"]), atol=1e-6)
    assert (seen["stem"] < 0).any()  # so the ReLU matters


def _basic_preact_reference(unit, x: torch.Tensor, *, first_of_stage: bool) -> torch.Tensor:
    """A basic full pre-activation unit, written out from resnet-pre-act.lua / fb.resnet.torch."""
    pre = F.relu(_bn(x, unit.bn1))
    branch = F.conv2d(pre, unit.conv1.weight, None, unit.conv1.stride, 1)
    branch = F.conv2d(F.relu(_bn(branch, unit.bn2)), unit.conv2.weight, None, 1, 1)
    shortcut_in = pre if first_of_stage else x  # 'both_preact' vs 'preact'
    if isinstance(unit.downsample, ZeroPadShortcut):
        sub = shortcut_in[:, :, ::2, ::2]
        shortcut = F.pad(sub, (0, 0, 0, 0, 0, unit.conv2.out_channels - sub.shape[1]))
    elif unit.downsample is not None:
        shortcut = F.conv2d(shortcut_in, unit.downsample[0].weight, None, unit.downsample[0].stride)
    else:
        shortcut = shortcut_in
    return branch + shortcut


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_every_stages_first_unit_splits_after_its_preactivation(shortcut):
    torch.manual_seed(0)
    model = reslab.create_model("resnet20", unit="full_preact", shortcut=shortcut).eval()
    randomise_bn(model)
    for stage, chs, size in ((model.layer1, 16, 8), (model.layer2, 16, 8), (model.layer3, 32, 8)):
        x = torch.randn(2, chs, size, size)
        with torch.no_grad():
            assert torch.allclose(stage[0](x), _basic_preact_reference(stage[0], x, first_of_stage=True), atol=1e-5)
            y = torch.randn_like(stage[0](x))
            assert torch.allclose(stage[1](y), _basic_preact_reference(stage[1], y, first_of_stage=False), atol=1e-5)


def _bottleneck_preact_reference(unit, x: torch.Tensor) -> torch.Tensor:
    """A first (dimension-increasing) unit of resnet-pre-act.lua: common BN-ReLU, then both paths;
    strides on the first 1x1 and on the projection."""
    pre = F.relu(_bn(x, unit.bn1))
    stride = 2 if unit.conv1.stride == (2, 2) or unit.conv2.stride == (2, 2) else 1
    out = F.conv2d(pre, unit.conv1.weight, None, stride)
    out = F.conv2d(F.relu(_bn(out, unit.bn2)), unit.conv2.weight, None, 1, 1)
    out = F.conv2d(F.relu(_bn(out, unit.bn3)), unit.conv3.weight, None)
    return out + F.conv2d(pre, unit.downsample[0].weight, None, stride)


def test_preact_resnet164_first_units_follow_the_authors_code():
    torch.manual_seed(0)
    model = reslab.create_model("preact_resnet164").eval()
    randomise_bn(model)
    for stage, chs in ((model.layer1, 16), (model.layer2, 64), (model.layer3, 128)):
        first = stage[0]
        assert isinstance(first.downsample, torch.nn.Sequential) and len(first.downsample) == 1  # no BN
        x = torch.randn(2, chs, 8, 8)
        with torch.no_grad():
            assert torch.allclose(first(x), _bottleneck_preact_reference(first, x), atol=1e-5)


def _strided_units(model):
    return [u for stage in model.stages() for u in stage if 2 in (u.conv1.stride[0], u.conv2.stride[0])]


@pytest.mark.parametrize("name", ["preact_resnet164", "preact_resnet1001"])
def test_preact_bottlenecks_stride_on_the_first_1x1(name):
    # resnet-pre-act.lua: Convolution(nInputPlane, nBottleneckPlane, 1, 1, stride, stride, 0, 0)
    model = reslab.create_model(name)
    strided = _strided_units(model)
    assert len(strided) == 2  # stages 2 and 3
    for unit in strided:
        assert unit.conv1.stride == (2, 2) and unit.conv2.stride == (1, 1) and unit.conv3.stride == (1, 1)
        assert unit.downsample[0].stride == (2, 2)
    assert model.layer2[0] in strided and model.layer3[0] in strided


@pytest.mark.parametrize(
    "name,strided_conv", [("resnet50v2", "conv2"), ("resnet50", "conv2"), ("resnet50_keras", "conv1")]
)
def test_other_bottlenecks_keep_their_stride(name, strided_conv):
    # keras ResNet50V2 strides its 3x3 (block2's Conv2D(filters, kernel_size, strides=stride));
    # torchvision's resnet50 is v1.5 (3x3); keras ResNet50 (v1) strides its first 1x1.
    model = reslab.create_model(name)
    strided = _strided_units(model)
    assert len(strided) == 3
    other = "conv1" if strided_conv == "conv2" else "conv2"
    for unit in strided:
        assert getattr(unit, strided_conv).stride == (2, 2) and getattr(unit, other).stride == (1, 1)


@pytest.mark.parametrize(
    "name,overrides", [("preact_resnet110", {}), ("preact_resnet164", {}), ("resnet20", {"unit": "relu_only_preact"})]
)
def test_final_bn_relu_before_the_average_pool(name, overrides):
    torch.manual_seed(0)
    model = reslab.create_model(name, **overrides).eval()
    randomise_bn(model)
    seen: dict = {}
    hooks = [_capture(model.layer3, seen, "last_stage"), _capture(model.avgpool, seen, "pooled_in", "input")]
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    for h in hooks:
        h.remove()
    if overrides.get("unit") == "relu_only_preact":
        expected = F.relu(seen["last_stage"])  # (d) has no BN of its own after the last addition
    else:
        expected = F.relu(_bn(seen["last_stage"], model.post_bn))
    assert torch.allclose(seen["pooled_in"], expected, atol=1e-6)


def test_summary_shows_the_stride_on_the_first_1x1(capsys):
    # what a user sees: `reslab summary preact_resnet164` gives the first 1x1 of stage 2 a 16x16 output
    from reslab.cli import main

    assert main(["summary", "preact_resnet164"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "[1, 32, 16, 16]" in rows["layer2.0.conv1"]
    assert "[1, 32, 16, 16]" in rows["layer2.0.conv2"]
    assert "[1, 128, 16, 16]" in rows["layer2.0.downsample.0"]
