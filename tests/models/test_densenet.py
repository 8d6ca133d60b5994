"""DenseNet / DenseNet-B / DenseNet-BC: torchvision's ImageNet networks, the paper's CIFAR networks
(Table 2), the memory-efficient option and the old-checkpoint key remapping."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import reslab
from reslab.errors import ConfigError
from reslab.models.densenet import DenseLayer, DenseNet, remap_old_densenet_keys

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

# torchvision.models: parameters at 1000 classes; growth rate, first-conv width, layers per block
TORCHVISION = {
    "densenet121": (7_978_856, 32, 64, (6, 12, 24, 16)),
    "densenet169": (14_149_480, 32, 64, (6, 12, 32, 32)),
    "densenet201": (20_013_928, 32, 64, (6, 12, 48, 32)),
    "densenet161": (28_681_000, 48, 96, (6, 12, 36, 24)),
}


def _bn(prefix, chs):
    keys = [(f"{prefix}.{p}", (chs,)) for p in ("weight", "bias", "running_mean", "running_var")]
    return keys + [(f"{prefix}.num_batches_tracked", ())]


def torchvision_densenet_keys(k: int, stem: int, blocks: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
    """torchvision's current DenseNet state dict, from its rules: bottleneck 4k, compression 0.5."""
    keys = [("features.conv0.weight", (stem, 3, 7, 7))] + _bn("features.norm0", stem)
    chs = stem
    for b, n in enumerate(blocks, start=1):
        for j in range(1, n + 1):
            p = f"features.denseblock{b}.denselayer{j}"
            keys += _bn(f"{p}.norm1", chs) + [(f"{p}.conv1.weight", (4 * k, chs, 1, 1))]
            keys += _bn(f"{p}.norm2", 4 * k) + [(f"{p}.conv2.weight", (k, 4 * k, 3, 3))]
            chs += k
        if b < len(blocks):
            keys += _bn(f"features.transition{b}.norm", chs)
            keys += [(f"features.transition{b}.conv.weight", (chs // 2, chs, 1, 1))]
            chs //= 2
    return keys + _bn("features.norm5", chs) + [("classifier.weight", (1000, chs)), ("classifier.bias", (1000,))]


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_imagenet_counts_and_keys_equal_torchvision(name):
    params, k, stem, blocks = TORCHVISION[name]
    model = meta_model(name)
    assert n_params(model) == params == reslab.get_model_entry(name).params
    assert key_shapes(model) == torchvision_densenet_keys(k, stem, blocks)


@pytest.mark.parametrize("name,published,depth", [("densenet40", 1.0e6, 40), ("densenet_bc100", 0.8e6, 100)])
def test_cifar_counts_match_table_2_to_its_precision(name, published, depth):
    # Table 2 gives 1.0M and 0.8M, rounded to 0.1M: the exact count lies within half a unit (0.05M).
    model = meta_model(name)
    assert abs(n_params(model) - published) <= 0.05e6
    assert reslab.get_model_entry(name).params == published
    # L counts the weighted layers: every convolution plus the classifier
    assert sum(isinstance(m, nn.Conv2d | nn.Linear) for m in model.modules()) == depth


def test_flavours_are_options_of_one_implementation():
    plain = reslab.create_model("densenet40")  # L=40, k=12: 16 first maps, 12 layers per block
    assert plain.block_config == (12, 12, 12) and plain.features.conv0.out_channels == 16
    layer = plain.features.denseblock1.denselayer1
    assert not layer.bottleneck and layer.conv1.kernel_size == (3, 3) and not hasattr(layer, "conv2")
    # no compression: transitions keep the width (16 + 12*12 = 160)
    assert plain.features.transition1.conv.out_channels == 160 == plain.features.transition1.conv.in_channels
    bc = reslab.create_model("densenet_bc100")  # L=100, k=12: 2k first maps, 16 bottleneck layers per block
    assert bc.block_config == (16, 16, 16) and bc.features.conv0.out_channels == 24
    assert bc.features.denseblock1.denselayer1.conv1.out_channels == 48  # bottleneck 4k
    assert bc.features.transition1.conv.out_channels == (24 + 16 * 12) // 2  # theta = 0.5
    b_only = reslab.create_model("densenet_bc100", compression=1.0)  # DenseNet-B
    assert b_only.features.transition1.conv.out_channels == 24 + 16 * 12
    custom = reslab.create_model("densenet121", block_config=(2, 2), growth_rate=8, num_classes=3)
    assert custom.num_features == ((16 + 2 * 8) // 2) + 2 * 8
    assert eval_logits(custom, 32).shape == (1, 3)


def test_bad_depth_and_growth_rate_name_the_argument():
    with pytest.raises(ConfigError, match=r"depth .*DenseNet-B/BC.*6n\+4.*got 101"):
        reslab.create_model("densenet_bc100", depth=101)
    with pytest.raises(ConfigError, match=r"depth .*3n\+4.*got 41"):
        reslab.create_model("densenet40", depth=41)
    with pytest.raises(ConfigError, match=r"depth .*121, 169, 201, 161"):
        reslab.create_model("densenet121", depth=100)
    with pytest.raises(ConfigError, match="growth_rate"):
        reslab.create_model("densenet121", growth_rate=0)
    with pytest.raises(ConfigError, match="growth_rate"):
        reslab.create_model("densenet40", growth_rate=2.5)
    with pytest.raises(ConfigError, match="compression"):
        reslab.create_model("densenet_bc100", compression=0)
    with pytest.raises(ConfigError, match="block_config"):
        reslab.create_model("densenet121", block_config=(6, 0))
    with pytest.raises(ConfigError, match="drop_rate"):
        reslab.create_model("densenet40", drop_rate=1.0)
    check_unknown_override("densenet121")


@pytest.mark.parametrize("name", ["densenet_bc100", "densenet40"])
def test_memory_efficient_gives_identical_outputs_gradients_and_statistics(name):
    torch.manual_seed(0)
    # a shallower network of the same flavour keeps this fast
    depth = 22 if name == "densenet_bc100" else 16
    plain = reslab.create_model(name, depth=depth, drop_rate=0.2)
    efficient = reslab.create_model(name, depth=depth, drop_rate=0.2, memory_efficient=True)
    efficient.load_state_dict(plain.state_dict())
    x = torch.randn(4, 3, 32, 32)
    outputs = []
    for model in (plain, efficient):
        torch.manual_seed(1)  # the same dropout masks
        out = model(x)
        (out.square().sum() + out.sum()).backward()
        outputs.append(out)
    assert torch.equal(outputs[0], outputs[1])
    grads = {n: p.grad for n, p in plain.named_parameters()}
    for n, p in efficient.named_parameters():
        assert torch.equal(p.grad, grads[n]), n
    # BN running statistics are updated once, not again in the recomputation
    plain_state = plain.state_dict()
    for k, v in efficient.state_dict().items():
        assert torch.equal(v, plain_state[k]), k
    assert int(efficient.features.norm5.num_batches_tracked) == 1


def _saved_activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of distinct tensors autograd keeps for the backward pass (outside checkpoints)."""
    seen: dict[tuple[int, int], int] = {}

    def pack(t):
        seen[(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    out.sum().backward()
    return sum(seen.values())


def test_memory_efficient_keeps_fewer_activations():
    plain = reslab.create_model("densenet_bc100", depth=40)
    efficient = reslab.create_model("densenet_bc100", depth=40, memory_efficient=True)
    x = torch.randn(8, 3, 32, 32)
    saved_plain = _saved_activation_bytes(plain, x)
    saved_efficient = _saved_activation_bytes(efficient, x)
    assert saved_efficient < 0.7 * saved_plain, (saved_efficient, saved_plain)
    efficient.set_grad_checkpointing(False)
    assert not any(m.memory_efficient for m in efficient.modules() if isinstance(m, DenseLayer))


def test_remap_old_checkpoint_keys_loads_strictly():
    model = reslab.create_model("densenet121")
    current = model.state_dict()
    # an old (pre-0.3) torchvision checkpoint: "norm.1" for "norm1" etc., and no num_batches_tracked
    old = {}
    for key, value in current.items():
        if key.endswith("num_batches_tracked"):
            continue
        for mod in ("norm1", "conv1", "norm2", "conv2"):
            key = key.replace(f".{mod}.", f".{mod[:-1]}.{mod[-1]}.") if ".denselayer" in key else key
        old[key] = value.clone() + 1.0 if value.is_floating_point() else value.clone()
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    assert "features.denseblock1.denselayer1.conv.2.weight" in old
    fresh = reslab.create_model("densenet121")
    with pytest.raises(RuntimeError, match="Missing key"):
        fresh.load_state_dict(old, strict=True)
    remapped = remap_old_densenet_keys(old)
    assert "features.denseblock1.denselayer1.norm1.weight" in remapped
    fresh.load_state_dict(remapped, strict=True)
    loaded = fresh.state_dict()
    for key, value in current.items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(loaded[key], value + 1.0), key
    assert remap_old_densenet_keys(current).keys() == current.keys()  # current keys pass unchanged


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_imagenet_forward_backward(name):
    model = reslab.create_model(name)
    assert model.min_input_size == 29  # torchvision's documented minimum
    assert eval_logits(model, 224).shape == (1, 1000)
    check_forward_backward(model, 32, batch=2)  # BN needs two values per channel at the 1x1 end
    check_too_small(model)


@pytest.mark.parametrize("name", ["densenet40", "densenet_bc100"])
def test_cifar_forward_backward_errors_summary_pickle(name):
    model = reslab.create_model(name)
    assert [f["reduction"] for f in model.feature_info] == [1, 2, 4]
    check_forward_backward(model, 32, batch=2)
    assert eval_logits(model, 48).shape == (1, 10)
    check_too_small(model)
    check_summary(model)  # at the registered 32x32
    check_pickle(model, 32)


def test_export_keras_options_and_classifier():
    model = reslab.create_model("densenet40")
    check_export(model, 32)
    keras_like = reslab.create_model("densenet121", bn_eps=1.001e-5, num_classes=0)
    assert all(m.eps == 1.001e-5 for m in keras_like.modules() if isinstance(m, nn.BatchNorm2d))
    assert eval_logits(keras_like, 64).shape == (1, 1024)
    keras_like.reset_classifier(7)
    assert eval_logits(keras_like, 64).shape == (1, 7)
    with pytest.raises(ConfigError, match="stem"):
        DenseNet(stem="tiny")
    check_summary(reslab.create_model("densenet121", num_classes=5), (3, 64, 64))
