"""VGG-11/13/16/19 and their batch-norm twins: one table, torchvision's counts and state-dict keys."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import reslab
from reslab.errors import ConfigError
from reslab.models.vgg import VGG

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

# torchvision.models parameter counts (1000 classes)
PUBLISHED = {
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840,
    "vgg13_bn": 133_053_736,
    "vgg16_bn": 138_365_992,
    "vgg19_bn": 143_678_248,
}

# The paper's Table 1 convolution widths (A, B, D, E) and, for each, the indices of the convolutions in
# torchvision's ``features`` (every conv is followed by ReLU, or BN + ReLU, and each block by a max-pool).
WIDTHS = {
    "vgg11": [64, 128, 256, 256, 512, 512, 512, 512],
    "vgg13": [64, 64, 128, 128, 256, 256, 512, 512, 512, 512],
    "vgg16": [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512],
    "vgg19": [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512],
}
CONV_INDICES = {
    "vgg11": [0, 3, 6, 8, 11, 13, 16, 18],
    "vgg13": [0, 2, 5, 7, 10, 12, 15, 17, 20, 22],
    "vgg16": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
    "vgg19": [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34],
    "vgg11_bn": [0, 4, 8, 11, 15, 18, 22, 25],
    "vgg13_bn": [0, 3, 7, 10, 14, 17, 21, 24, 28, 31],
    "vgg16_bn": [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40],
    "vgg19_bn": [0, 3, 7, 10, 14, 17, 20, 23, 27, 30, 33, 36, 40, 43, 46, 49],
}


def torchvision_keys(name: str) -> list[tuple[str, tuple[int, ...]]]:
    bn = name.endswith("_bn")
    widths = WIDTHS[name.removesuffix("_bn")]
    keys, cin = [], 3
    for i, w in zip(CONV_INDICES[name], widths):
        keys += [(f"features.{i}.weight", (w, cin, 3, 3)), (f"features.{i}.bias", (w,))]
        if bn:
            keys += [(f"features.{i + 1}.{p}", (w,)) for p in ("weight", "bias", "running_mean", "running_var")]
            keys.append((f"features.{i + 1}.num_batches_tracked", ()))
        cin = w
    return keys + [
        ("classifier.0.weight", (4096, 512 * 7 * 7)),
        ("classifier.0.bias", (4096,)),
        ("classifier.3.weight", (4096, 4096)),
        ("classifier.3.bias", (4096,)),
        ("classifier.6.weight", (1000, 4096)),
        ("classifier.6.bias", (1000,)),
    ]


def built(name: str) -> nn.Module:
    """A real (CPU) instance; not cached: eight VGGs would hold 4.4 GB."""
    torch.manual_seed(0)
    return reslab.create_model(name)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_parameter_count_and_torchvision_keys(name):
    model = meta_model(name)
    assert n_params(model) == PUBLISHED[name] == reslab.get_model_entry(name).params
    assert key_shapes(model) == torchvision_keys(name)
    # Table 1's depth: weight layers = convolutions + 3 dense layers
    depth = int(name.removeprefix("vgg").removesuffix("_bn"))
    assert sum(isinstance(m, nn.Conv2d | nn.Linear) for m in model.modules()) == depth


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_default_size_and_smallest_size_forward_backward(name):
    model = built(name)
    assert eval_logits(model, 224).shape == (1, 1000)
    assert model.min_input_size == 32
    check_forward_backward(model, 32)  # the smallest legal size (five 2x2 pools)
    check_too_small(model)


def test_table_is_expanded_by_one_function_and_takes_custom_configs():
    model = VGG(config=[16, "M", 32, "M"], num_classes=4)
    assert model.min_input_size == 4
    assert model.classifier[0].in_features == 32 * 7 * 7
    assert eval_logits(model, 8).shape == (1, 4)
    assert model.feature_info == [
        {"num_chs": 16, "reduction": 2, "module": "features.2"},
        {"num_chs": 32, "reduction": 4, "module": "features.5"},
    ]
    with pytest.raises(ConfigError, match="config"):
        reslab.create_model("vgg16", config="F")
    with pytest.raises(ConfigError, match="widths"):
        VGG(config=[64, "M", -3])
    with pytest.raises(ConfigError, match="dropout"):
        VGG(config="A", dropout=1.0)


def test_init_follows_torchvision():
    model = built("vgg11_bn")
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    # He-normal, fan-out: std = sqrt(2 / (out * 3 * 3))
    w = convs[-1].weight.detach()
    assert abs(float(w.std()) - (2 / (512 * 9)) ** 0.5) < 0.05 * (2 / (512 * 9)) ** 0.5
    assert all(torch.count_nonzero(m.bias) == 0 for m in convs)
    fc = model.classifier[3].weight.detach()
    assert abs(float(fc.std()) - 0.01) < 5e-4


def test_summary_pickle_export_classifier():
    model = reslab.create_model("vgg11_bn", num_classes=10)
    check_summary(model, (3, 32, 32))
    check_pickle(model, 32)
    check_export(reslab.create_model("vgg11", num_classes=10), 32)
    check_unknown_override("vgg16")
    model.reset_classifier(0)
    assert eval_logits(model, 32).shape == (1, 4096)
    assert model.forward_head(model.forward_features(torch.zeros(1, 3, 32, 32)), pre_logits=True).shape == (
        1,
        4096,
    )


def test_hidden_width_and_pool_size_make_a_cifar_sized_vgg():
    model = reslab.create_model("vgg11", num_classes=10, hidden=512, pool_size=1)
    # 9,220,480 convolution parameters (configuration A) + 512*512+512 + 512*512+512 + 512*10+10
    convs = sum(p.numel() for p in model.features.parameters())
    assert convs == 9_220_480
    assert sum(p.numel() for p in model.parameters()) == convs + 2 * (512 * 512 + 512) + 512 * 10 + 10
    assert model.num_features == 512 and model.avgpool.output_size == (1, 1)
    assert eval_logits(model, 32).shape == (1, 10)
    assert model.forward_head(model.forward_features(torch.zeros(1, 3, 32, 32)), pre_logits=True).shape == (1, 512)
    # the dense layers see width x pool_size^2 inputs
    assert VGG(config=[8, "M"], hidden=16, pool_size=2, num_classes=3).classifier[0].in_features == 8 * 2 * 2
    for bad in ({"hidden": 0}, {"hidden": 2.5}, {"pool_size": 0}, {"pool_size": True}):
        ((key, value),) = bad.items()
        with pytest.raises(ConfigError, match=f"{key} must be a whole number >= 1, got {value!r}"):
            VGG(config="A", **bad)


def test_cifar_sized_vgg_trains_from_the_command_line(tmp_path):
    from reslab.cli import main
    from reslab.training.checkpoint import load_checkpoint, model_from_checkpoint

    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--model",
            "vgg11",
            "--model-arg",
            "hidden=32",
            "--model-arg",
            "pool_size=1",
            "--data",
            "synthetic",
            "--image-size",
            "32",
            "--data-arg",
            "num_samples=32",
            "--data-arg",
            "num_classes=3",
            "--batch-size",
            "16",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--progress",
            "none",
            "--out",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    model = model_from_checkpoint(load_checkpoint(out / "last.pt"))
    assert model.classifier[0].in_features == 512 and model.num_features == 32
