"""The ResNet family: published parameter counts, torchvision key layout, unit variants, shortcuts, interface."""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.nn.functional as F

import reslab
from reslab.errors import ConfigError, InputShapeError, UnknownModelError
from reslab.models.residual_units import FIGURE4_UNITS
from reslab.models.resnet import UNITS, ResidualUnit
from reslab.models.shortcuts import ZeroPadShortcut

RESNETS = reslab.list_models("*resnet*") + reslab.list_models("plain*")


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Published figures, written here independently of the registry (which carries the same numbers).
TORCHVISION_COUNTS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}
CIFAR_OPTION_A_COUNTS = {
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "resnet1202": 19_421_274,
}
KERAS_TRAINABLE = {"resnet50v2": 25_568_360, "resnet101v2": 44_577_896}
KERAS_WITH_BN_STATS = {"resnet50v2": 25_613_800, "resnet101v2": 44_675_560}


@pytest.mark.parametrize("name,count", {**TORCHVISION_COUNTS, **CIFAR_OPTION_A_COUNTS, **KERAS_TRAINABLE}.items())
def test_parameter_counts_match_published(name, count):
    model = reslab.create_model(name)
    assert n_params(model) == count
    assert reslab.get_model_entry(name).params == count


@pytest.mark.parametrize("name,count", KERAS_WITH_BN_STATS.items())
def test_keras_count_including_bn_moving_statistics(name, count):
    model = reslab.create_model(name)
    bn_stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    assert n_params(model) + bn_stats == count


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_plain_twins_have_the_option_a_counts(depth):
    assert n_params(reslab.create_model(f"plain{depth}")) == CIFAR_OPTION_A_COUNTS[f"resnet{depth}"]


def test_plain_imagenet_nets_are_resnets_without_projections():
    for d in (18, 34):
        plain, res = reslab.create_model(f"plain{d}"), reslab.create_model(f"resnet{d}")
        projections = sum(p.numel() for n, p in res.named_parameters() if "downsample" in n)
        assert n_params(plain) == n_params(res) - projections
        assert not any("downsample" in n for n, _ in plain.named_parameters())


@pytest.mark.parametrize(
    "name,published_millions", [("preact_resnet110", 1.7), ("preact_resnet164", 1.7), ("preact_resnet1001", 10.2)]
)
def test_preact_cifar_counts_match_the_paper_to_its_precision(name, published_millions):
    # "Identity Mappings" Table 3 states these to 0.1M. Its figures count convolution and classifier
    # weights: ResNet-1001's BN parameters (0.15M) would make it 10.3M.
    model = reslab.create_model(name)
    weights = sum(p.numel() for n, p in model.named_parameters() if ".bn" not in n and "post_bn" not in n)
    assert round(weights / 1e6, 1) == published_millions
    assert n_params(model) < 1.02 * published_millions * 1e6


def torchvision_resnet_keys(depth: int) -> dict[str, tuple[int, ...]]:
    """torchvision.models.resnet's state_dict layout (names and shapes), written out from its rules."""
    layers = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}[depth]
    bottleneck = depth >= 50
    keys: dict[str, tuple[int, ...]] = {}

    def bn(prefix, c):
        for k in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{prefix}.{k}"] = (c,)
        keys[f"{prefix}.num_batches_tracked"] = ()

    keys["conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    inplanes = 64
    for s, (n, planes) in enumerate(zip(layers, (64, 128, 256, 512)), start=1):
        out = planes * (4 if bottleneck else 1)
        for i in range(n):
            p = f"layer{s}.{i}"
            if bottleneck:
                shapes = [(planes, inplanes, 1, 1), (planes, planes, 3, 3), (out, planes, 1, 1)]
            else:
                shapes = [(planes, inplanes, 3, 3), (planes, planes, 3, 3)]
            for k, shape in enumerate(shapes, start=1):
                keys[f"{p}.conv{k}.weight"] = shape
                bn(f"{p}.bn{k}", shape[0])
            if i == 0 and (s > 1 or inplanes != out):
                keys[f"{p}.downsample.0.weight"] = (out, inplanes, 1, 1)
                bn(f"{p}.downsample.1", out)
            inplanes = out
    keys["fc.weight"] = (1000, inplanes)
    keys["fc.bias"] = (1000,)
    return keys


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_state_dict_layout_equals_torchvision(depth):
    model = reslab.create_model(f"resnet{depth}")
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == torchvision_resnet_keys(depth)
    # ... and such a state dict loads strictly
    model.load_state_dict(reslab.create_model(f"resnet{depth}").state_dict(), strict=True)


@pytest.mark.parametrize("name", RESNETS)
def test_forward_backward_every_registered_resnet(name):
    entry = reslab.get_model_entry(name)
    torch.manual_seed(0)
    model = reslab.create_model(name, num_classes=7)
    size = max(64 if entry.family == "imagenet" else 32, model.min_input_size)
    x = torch.randn(2, 3, size, size)
    out = model(x)
    assert out.shape == (2, 7)
    out.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    assert not any(k.startswith("module.") for k in model.state_dict())


def test_default_input_sizes_and_another_legal_size():
    m = reslab.create_model("resnet18").eval()
    with torch.no_grad():
        assert m(torch.randn(1, 3, 224, 224)).shape == (1, 1000)
        assert m(torch.randn(1, 3, 160, 96)).shape == (1, 1000)
    c = reslab.create_model("resnet20").eval()
    with torch.no_grad():
        assert c(torch.randn(1, 3, 32, 32)).shape == (1, 10)
        assert c(torch.randn(1, 3, 48, 40)).shape == (1, 10)


@pytest.mark.parametrize("option", ["A", "B", "C"])
def test_cifar_shortcut_options(option):
    model = reslab.create_model("resnet20", shortcut=option)
    units = [u for u in model.modules() if isinstance(u, ResidualUnit)]
    shortcuts = [u.downsample for u in units]
    if option == "A":
        assert n_params(model) == 269_722
        assert sum(isinstance(s, ZeroPadShortcut) for s in shortcuts) == 2
        assert sum(s is None for s in shortcuts) == 7
    elif option == "B":
        # two projections (16->32, 32->64): 1x1 conv + BN each
        assert n_params(model) == 269_722 + (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
        assert sum(isinstance(s, torch.nn.Sequential) for s in shortcuts) == 2
    else:
        assert all(isinstance(s, torch.nn.Sequential) for s in shortcuts)
    model(torch.randn(2, 3, 32, 32)).sum().backward()


def test_zero_pad_shortcut_subsamples_and_pads_with_zeros():
    x = torch.randn(2, 16, 8, 8)
    y = ZeroPadShortcut(16, 32, 2)(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 16:]) == 0


def _bn(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def _conv(x, conv):
    return F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding)


def _reference_shortcut(unit: ResidualUnit, x: torch.Tensor) -> torch.Tensor:
    """Option A written out: subsample by the unit's stride, append zero channels; or the identity."""
    if unit.downsample is None:
        return x
    assert isinstance(unit.downsample, ZeroPadShortcut)
    sub = x[:, :, :: unit.conv1.stride[0], :: unit.conv1.stride[0]]
    return F.pad(sub, (0, 0, 0, 0, 0, unit.conv2.out_channels - sub.shape[1]))


def _reference_unit(unit: ResidualUnit, x: torch.Tensor, *, first_of_stage: bool) -> torch.Tensor:
    """Figure 4 of "Identity Mappings", written out for a basic unit with an identity or option-A shortcut.

    A pre-activation unit that starts a stage activates before splitting (resnet-pre-act.lua's common
    BN-ReLU): its shortcut takes the activated input; the other units' shortcut takes the raw input."""
    c1, b1, c2, b2 = unit.conv1, unit.bn1, unit.conv2, unit.bn2
    r = F.relu

    def conv(t, c):
        return _conv(t, c)

    if unit.unit == "full_preact":
        pre = r(_bn(x, b1))
        return conv(r(_bn(conv(pre, c1), b2)), c2) + _reference_shortcut(unit, pre if first_of_stage else x)
    if unit.unit == "relu_only_preact":
        pre = r(x)
        return _bn(conv(r(_bn(conv(pre, c1), b1)), c2), b2) + _reference_shortcut(unit, pre if first_of_stage else x)
    h = _reference_shortcut(unit, x)
    f = conv(r(_bn(conv(x, c1), b1)), c2)
    return {
        "original": lambda: r(_bn(f, b2) + h),
        "bn_after_add": lambda: r(_bn(f + h, b2)),
        "relu_before_add": lambda: r(_bn(f, b2)) + h,
    }[unit.unit]()


UNIT_CLASS_NAMES = {
    "original": "OriginalUnit",
    "bn_after_add": "BnAfterAddUnit",
    "relu_before_add": "ReluBeforeAddUnit",
    "relu_only_preact": "ReluOnlyPreactUnit",
    "full_preact": "FullPreactUnit",
}


@pytest.mark.parametrize("unit", FIGURE4_UNITS)
def test_residual_unit_variants_follow_figure_4(unit):
    torch.manual_seed(0)
    model = reslab.create_model("resnet20", unit=unit).eval()
    for m in model.modules():  # non-trivial BN statistics, so each order gives a different function
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    # the first unit of every stage (identity, then option A twice) and a later unit
    checks = [(model.layer1[0], 16, True), (model.layer2[0], 16, True), (model.layer3[0], 32, True)]
    checks.append((model.layer1[1], 16, False))
    for block, chs, first in checks:
        assert type(block).__name__ == UNIT_CLASS_NAMES[unit] and isinstance(block, ResidualUnit)
        x = torch.randn(2, chs, 8, 8)
        with torch.no_grad():
            assert torch.allclose(block(x.clone()), _reference_unit(block, x, first_of_stage=first), atol=1e-5)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_unit_orders_keep_their_parameter_names():
    # every order (and the plain stack) has the same names, so checkpoints of one layout load strictly
    keys = {unit: list(reslab.create_model("resnet20", unit=unit).state_dict()) for unit in UNITS}
    assert keys["original"] == list(reslab.create_model("plain20").state_dict())
    assert keys["original"] == keys["bn_after_add"] == keys["relu_before_add"] == keys["relu_only_preact"]
    assert [k for k in keys["original"] if k.startswith("layer1.0.")] == [
        f"layer1.0.{m}.{p}"
        for m, ps in (("conv1", ["weight"]), ("bn1", BN_KEYS), ("conv2", ["weight"]), ("bn2", BN_KEYS))
        for p in ps
    ]
    assert set(keys["full_preact"]) == set(keys["original"]) - {f"bn1.{p}" for p in BN_KEYS} | {
        f"post_bn.{p}" for p in BN_KEYS
    }


BN_KEYS = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


def test_plain_network_is_the_plain_stack():
    from reslab.models.residual_units import PlainUnit

    model = reslab.create_model("plain20").eval()
    units = [u for u in model.modules() if isinstance(u, ResidualUnit)]
    assert len(units) == 9 and all(type(u) is PlainUnit and u.downsample is None for u in units)
    unit = model.layer2[0]
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        f = _conv(F.relu(_bn(_conv(x, unit.conv1), unit.bn1)), unit.conv2)
        assert torch.allclose(unit(x), F.relu(_bn(f, unit.bn2)), atol=1e-5)


@pytest.mark.parametrize("unit", ["bn_after_add", "full_preact"])
def test_plain_network_has_no_unit_order(unit):
    with pytest.raises(ConfigError, match=f"shortcut='none' builds the plain network .* got unit='{unit}'"):
        reslab.create_model("plain20", unit=unit)


def test_zero_init_last_is_refused_for_the_plain_network():
    # with no shortcut, a zeroed branch would make every unit output a constant
    with pytest.raises(ConfigError, match="zero_init_last has no meaning for a plain network"):
        reslab.create_model("plain20", zero_init_last=True)


def test_unit_variants_differ_in_the_stem_and_head():
    full = reslab.create_model("resnet110", unit="full_preact")
    assert not hasattr(full, "bn1") and hasattr(full, "post_bn")
    assert n_params(full) == n_params(reslab.create_model("preact_resnet110"))


def test_preact_bottleneck_projection_sees_the_preactivation():
    model = reslab.create_model("preact_resnet164").eval()
    first = model.layer1[0]
    assert isinstance(first.downsample, torch.nn.Sequential) and first.shortcut_sees_preactivation
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        pre = F.relu(_bn(x, first.bn1))
        expected = first.downsample(pre) + first.conv3(
            F.relu(_bn(first.conv2(F.relu(_bn(first.conv1(pre), first.bn2))), first.bn3))
        )
        assert torch.allclose(first(x), expected, atol=1e-5)


def test_stride_placement_v1_versus_v15():
    v15 = reslab.create_model("resnet50")
    v1 = reslab.create_model("resnet50", stride_in="first_1x1")
    assert v15.layer2[0].conv2.stride == (2, 2) and v15.layer2[0].conv1.stride == (1, 1)
    assert v1.layer2[0].conv1.stride == (2, 2) and v1.layer2[0].conv2.stride == (1, 1)
    assert n_params(v1) == n_params(v15)


def test_keras_v2_layout_strides_the_last_unit_with_a_pool_shortcut():
    model = reslab.create_model("resnet50v2")
    assert [u.conv2.stride[0] for u in model.layer1] == [1, 1, 2]
    assert isinstance(model.layer1[2].downsample, torch.nn.MaxPool2d)
    assert [f["reduction"] for f in model.feature_info] == [8, 16, 32, 32]
    assert model.layer1[0].conv3.bias is not None and model.layer1[0].conv1.bias is None


def test_zero_init_last_starts_units_as_their_shortcut():
    model = reslab.create_model("resnet18", zero_init_last=True)
    assert all(float(u.bn2.weight.detach().abs().sum()) == 0 for u in model.modules() if isinstance(u, ResidualUnit))
    unit = reslab.create_model("resnet20", zero_init_last=True).eval().layer1[0]
    x = torch.randn(1, 16, 8, 8).relu()
    with torch.no_grad():
        assert torch.allclose(unit(x), x)
    with pytest.raises(ConfigError, match="bn_after_add"):
        reslab.create_model("resnet20", unit="bn_after_add", zero_init_last=True)


def test_he_initialisation():
    model = reslab.create_model("resnet56")
    w = model.layer3[0].conv2.weight  # fan_out = 64 * 9
    assert abs(float(w.std()) - (2 / (64 * 9)) ** 0.5) < 0.1 * (2 / (64 * 9)) ** 0.5


def test_common_interface():
    model = reslab.create_model("resnet50", num_classes=5, in_chans=1).eval()
    x = torch.randn(2, 1, 64, 64)
    feats = model.forward_features(x)
    assert feats.shape == (2, 2048, 2, 2)
    assert model.forward_head(feats, pre_logits=True).shape == (2, 2048)
    assert model.forward_head(feats).shape == (2, 5)
    assert model.feature_info == [
        {"num_chs": 256, "reduction": 4, "module": "layer1"},
        {"num_chs": 512, "reduction": 8, "module": "layer2"},
        {"num_chs": 1024, "reduction": 16, "module": "layer3"},
        {"num_chs": 2048, "reduction": 32, "module": "layer4"},
    ]
    model.reset_classifier(3)
    assert model(x).shape == (2, 3) and model.num_classes == 3
    model.reset_classifier(0)
    assert model(x).shape == (2, 2048)
    assert reslab.create_model("resnet20", num_classes=0)(torch.randn(2, 3, 32, 32)).shape == (2, 64)


def test_models_pickle():
    model = reslab.create_model("resnet20").eval()
    clone = pickle.loads(pickle.dumps(model))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), clone(x))


@pytest.mark.parametrize("unit", UNITS)
def test_torch_export(unit):
    model = reslab.create_model("resnet20", unit=unit).eval()
    x = torch.randn(2, 3, 32, 32)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        assert torch.allclose(exported.module()(x), model(x), atol=1e-5)


def test_torch_export_imagenet_and_keras_layouts():
    for name in ("resnet18", "resnet50v2"):
        model = reslab.create_model(name).eval()
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            assert torch.allclose(torch.export.export(model, (x,)).module()(x), model(x), atol=1e-5)


def test_torch_compile_smoke():
    model = reslab.create_model("resnet20").eval()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(compiled(x), model(x), atol=1e-5)


# ----------------------------------------------------------------------------------------- errors


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownModelError, match="resnet50") as e:
        reslab.create_model("resnt50")
    assert "did you mean" in str(e.value)


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"shortcutt": "A"}, "shortcutt"),
        ({"depth": 21}, "depth"),
        ({"depth": 0}, "depth"),
        ({"shortcut": "D"}, "shortcut"),
        ({"unit": "preact"}, "unit"),
        ({"widths": (16, 0, 64)}, "widths"),
        ({"widths": (16, 32)}, "widths"),
        ({"block": "bottleneck", "depth": 32}, "9n\\+2"),
    ],
)
def test_bad_overrides_name_the_argument(overrides, match):
    with pytest.raises(ConfigError, match=match):
        reslab.create_model("resnet20", **overrides)


def test_bad_imagenet_depth_and_class_count():
    with pytest.raises(ConfigError, match="depth must be one of 18, 34, 50, 101, 152"):
        reslab.create_model("resnet50", depth=42)
    with pytest.raises(ConfigError, match="num_classes"):
        reslab.create_model("resnet50", num_classes=-1)
    with pytest.raises(ConfigError, match="in_chans"):
        reslab.create_model("resnet50", in_chans=0)


def test_depth_override_builds_the_other_depth():
    assert n_params(reslab.create_model("resnet20", depth=56)) == 853_018


def test_too_small_input_names_the_minimum():
    with pytest.raises(InputShapeError, match="at least 32x32"):
        reslab.create_model("resnet18")(torch.randn(1, 3, 16, 16))
    with pytest.raises(InputShapeError, match="in_chans=3"):
        reslab.create_model("resnet20")(torch.randn(1, 1, 32, 32))
    with pytest.raises(InputShapeError, match="N, C, H, W"):
        reslab.create_model("resnet20")(torch.randn(3, 32, 32))


def test_shortcut_pad_split_puts_half_the_zeros_before():
    x = torch.randn(2, 16, 8, 8)
    split = ZeroPadShortcut(16, 32, 2, pad="split")(x)
    sub = x[:, :, ::2, ::2]
    assert torch.equal(split[:, 8:24], sub)
    assert not split[:, :8].any() and not split[:, 24:].any()
    appended = ZeroPadShortcut(16, 32, 2)(x)
    assert torch.equal(appended[:, :16], sub) and not appended[:, 16:].any()


def test_shortcut_pad_is_a_validated_constructor_argument():
    model = reslab.create_model("resnet20", shortcut_pad="split")
    pads = {m.pad for m in model.modules() if isinstance(m, ZeroPadShortcut)}
    assert pads == {"split"}
    assert {m.pad for m in reslab.create_model("resnet20").modules() if isinstance(m, ZeroPadShortcut)} == {"append"}
    with pytest.raises(ConfigError, match="shortcut_pad must be one of 'append', 'split', got 'middle'"):
        reslab.create_model("resnet20", shortcut_pad="middle")


def test_shortcut_pad_from_the_cli_is_refused_in_one_line(capsys, tmp_path, monkeypatch):
    from reslab.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(["train", "--model", "resnet20", "--model-arg", "shortcut_pad=middle", "--data", "synthetic"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "reslab: error: resnet20: shortcut_pad must be one of 'append', 'split', got 'middle'"
    assert not any(tmp_path.iterdir())  # nothing was started
