"""Conv-BN folding: folded and unfolded networks compute the same function (eval mode, fp32)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reslab import create_model
from reslab.errors import ConfigError
from reslab.models import count_batchnorms, fuse, list_models, summary
from reslab.models.fuse import _example_input

from ..models.conftest import randomise_bn

# one model per family (ResNet v1 with option-A and projection shortcuts, plain, VGG_bn, GoogLeNet,
# DenseNet-BC, the Keras layout, pre-activation v2) and the BNs each keeps after folding
FAMILIES = {
    "resnet20": 0,  # option A shortcuts: every BN follows a conv
    "resnet18": 0,  # projection shortcuts (conv-BN) fold too
    "plain20": 0,
    "vgg11_bn": 0,
    "googlenet": 2,  # the two auxiliary classifiers' conv-BN run only in training: kept
    "densenet_bc100": 51,  # BN-ReLU-conv layers and transitions: BN before a conv cannot fold
    "resnet50_keras": 0,
    "resnet50v2": 17,  # pre-activation: each unit's first BN and the final BN precede a ReLU
    "preact_resnet110": 54,
}


def _compare(name: str, **kwargs) -> tuple[float, float, nn.Module]:
    torch.manual_seed(0)
    model = randomise_bn(create_model(name, num_classes=10, **kwargs)).eval()
    x = _example_input(model)
    with torch.no_grad():
        ref = model(x)
        out = model.fuse()(x)
    return (out - ref).abs().max().item(), ref.abs().max().item(), model


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_folded_equals_unfolded_per_family(name, exact_float32):
    diff, scale, model = _compare(name)
    # within 1e-5 (relative to the logits' size where randomised BNs in deep residual nets make them large)
    assert diff <= 1e-5 * max(1.0, scale), (name, diff, scale)
    assert count_batchnorms(model) == FAMILIES[name]


@pytest.mark.slow
def test_whole_registry_folds_exactly(exact_float32):
    """Every registered model (its smallest input size); deep nets' logits grow with randomised BNs, so
    the difference is relative to the largest logit. Families without BN (AlexNet, ZFNet, LeNet, plain
    VGG, GoogLeNet as in the paper) are left out: nothing to fold, and their large heads are slow to build."""
    no_bn = ("alexnet", "zfnet", "lenet", "googlenet_paper", "vgg11", "vgg13", "vgg16", "vgg19")
    for name in list_models():
        if name in no_bn or name.startswith("lenet") or name.startswith("alexnet"):
            continue
        if name in ("resnet1202", "preact_resnet1001"):
            continue  # randomised BN over 1000 layers overflows fp32 before any folding (checked: NaN unfused)
        diff, scale, model = _compare(name)
        assert diff <= 1e-5 * max(1.0, scale), (name, diff, scale)
        # nothing that follows a conv directly is left: every remaining BN has no conv output as input
        assert count_batchnorms(model) <= count_batchnorms(create_model(name, num_classes=10))


def test_fold_changes_weights_and_removes_bn_from_state_dict():
    model = randomise_bn(create_model("resnet20", num_classes=10)).eval()
    before = summary(model, (3, 32, 32))
    keys = set(model.state_dict())
    model.fuse()
    after_keys = set(model.state_dict())
    assert not any(".bn" in k for k in after_keys) and any(".bn" in k for k in keys)
    assert "conv1.bias" in after_keys  # the stem conv had no bias; the fold gave it one
    after = summary(model, (3, 32, 32))
    assert after.output_shape == before.output_shape
    assert after.macs == before.macs
    # each folded BN (2 parameters per channel) became one bias per channel on the conv
    assert after.total_params < before.total_params
    assert not any(r.kind == "BatchNorm2d" for r in after.rows)


def test_fuse_refuses_training_mode():
    model = create_model("resnet20", num_classes=10)
    with pytest.raises(ConfigError, match=r"eval mode .*resnet20\.eval\(\)"):
        fuse(model)
    assert count_batchnorms(model) == 19  # nothing changed


class _ShortcutReadsConv(nn.Module):
    """conv -> BN, and the same conv output also feeds an addition: folding the BN would change the add."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 3, 1)
        self.bn2 = nn.BatchNorm2d(3)

    def forward(self, x):
        y = self.conv(x)
        z = torch.relu_(self.conv2(x))  # an in-place ReLU between conv2 and bn2: no fold either
        return self.bn(y) + y + self.bn2(z)


def test_conv_output_read_twice_or_activated_is_not_folded():
    torch.manual_seed(0)
    model = randomise_bn(_ShortcutReadsConv()).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        ref = model(x)
        out = fuse(model, x)(x)
    assert count_batchnorms(model) == 2
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
