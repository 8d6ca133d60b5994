"""The shortcut variants of "Identity Mappings" Figure 2 / Table 1, as options of the one ResNet.

Each variant is checked on one unit against its figure's formula written out by hand, for the
original unit (a) the paper used: ``out = relu(combine(x, BN(F(x))))``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import reslab
from reslab.errors import ConfigError
from reslab.models.resnet import ResidualUnit
from reslab.models.shortcut_variants import (
    Add,
    DropoutShortcut,
    ExclusiveGate,
    ScaledAdd,
    ShortcutGate,
)
from reslab.models.shortcuts import ZeroPadShortcut

from .conftest import randomise_bn


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _bn(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def _model(**variant) -> torch.nn.Module:
    torch.manual_seed(0)
    return randomise_bn(reslab.create_model("resnet20", **variant).eval())


def _branch(unit, x):
    """BN(F(x)) of an original basic unit: conv-BN-ReLU-conv-BN."""
    out = F.conv2d(x, unit.conv1.weight, None, 1, 1)
    out = F.conv2d(F.relu(_bn(out, unit.bn1)), unit.conv2.weight, None, 1, 1)
    return _bn(out, unit.bn2)


def _gate(unit, x):
    """g(x) = sigmoid(W_g x + b_g): a 1x1 convolution with a bias."""
    conv = unit.combine.gate
    return torch.sigmoid(F.conv2d(x, conv.weight, conv.bias))


FORMULAS = {
    "identity": lambda u, x: F.relu(x + _branch(u, x)),  # Fig. 2(a)
    "scaling": lambda u, x: F.relu(0.3 * x + 0.7 * _branch(u, x)),  # 2(b), shortcut_scale=0.3, branch_scale=0.7
    "exclusive_gating": lambda u, x: F.relu((1 - _gate(u, x)) * x + _gate(u, x) * _branch(u, x)),  # 2(c)
    "shortcut_gating": lambda u, x: F.relu((1 - _gate(u, x)) * x + _branch(u, x)),  # 2(d)
    "conv1x1": lambda u, x: F.relu(_bn(F.conv2d(x, u.downsample[0].weight), u.downsample[1]) + _branch(u, x)),  # 2(e)
    "dropout": lambda u, x: F.relu(x + _branch(u, x)),  # 2(f), evaluation mode: dropout is the identity
}
EXTRA = {
    "scaling": {"shortcut_scale": 0.3, "branch_scale": 0.7},
    "exclusive_gating": {"gate_bias": -1.0},
    "shortcut_gating": {"gate_bias": -1.0},
}
MODULES = {
    "identity": Add,
    "scaling": ScaledAdd,
    "exclusive_gating": ExclusiveGate,
    "shortcut_gating": ShortcutGate,
    "conv1x1": Add,
    "dropout": DropoutShortcut,
}


@pytest.mark.parametrize("variant", list(FORMULAS))
def test_each_variant_is_its_figures_formula(variant):
    model = _model(shortcut_variant=variant, **EXTRA.get(variant, {}))
    unit = model.layer2[1]  # an identity unit of 32 channels
    assert isinstance(unit.combine, MODULES[variant])
    if variant in ("exclusive_gating", "shortcut_gating"):
        torch.nn.init.normal_(unit.combine.gate.weight, 0, 0.3)  # a gate that varies across positions
    x = torch.randn(2, 32, 8, 8)
    with torch.no_grad():
        expected = FORMULAS[variant](unit, x)
        assert torch.allclose(unit(x.clone()), expected, atol=1e-5)
        if variant not in ("identity", "dropout"):  # dropout: see the training-mode test below
            assert not torch.allclose(expected, FORMULAS["identity"](unit, x), atol=1e-3)  # it is another function
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("variant", list(FORMULAS))
def test_variants_replace_only_identity_shortcuts(variant):
    # the units that change shape (16->32, 32->64) keep option A and a plain addition
    model = reslab.create_model("resnet20", shortcut_variant=variant)
    units = [u for u in model.modules() if isinstance(u, ResidualUnit)]
    changing = [model.layer2[0], model.layer3[0]]
    for unit in units:
        if unit in changing:
            assert isinstance(unit.downsample, ZeroPadShortcut) and type(unit.combine) is Add
        else:
            assert isinstance(unit.combine, MODULES[variant])
            assert (unit.downsample is not None) == (variant == "conv1x1")
    assert model.shortcut_variant == variant


def test_dropout_shortcut_is_identity_in_eval_and_drops_in_training():
    model = _model(shortcut_variant="dropout", shortcut_dropout=0.5)
    unit = model.layer1[1]
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        assert torch.allclose(unit(x.clone()), F.relu(x + _branch(unit, x)), atol=1e-5)  # eval: identity
        unit.train()
        for m in unit.modules():  # keep BN in evaluation, so only the dropout differs
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()
        torch.manual_seed(1)
        trained = unit(x.clone())
        torch.manual_seed(1)
        expected = F.relu(F.dropout(x, 0.5, training=True) + _branch(unit, x))
        assert torch.allclose(trained, expected, atol=1e-5)
        assert not torch.allclose(trained, F.relu(x + _branch(unit, x)), atol=1e-3)
    # the module itself: about half the shortcut zeroed, the rest scaled by 1 / (1 - 0.5)
    drop = DropoutShortcut(0.5).train()
    torch.manual_seed(0)
    out = drop(torch.ones(10_000), torch.zeros(10_000))
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert 0.45 < float((out == 0).float().mean()) < 0.55
    assert torch.equal(drop.eval()(torch.ones(5), torch.zeros(5)), torch.ones(5))


@pytest.mark.parametrize("variant", ["exclusive_gating", "shortcut_gating"])
def test_gate_bias_initialisation(variant):
    model = reslab.create_model("resnet20", shortcut_variant=variant)
    gates = [m.combine for m in model.modules() if isinstance(m, ResidualUnit) and hasattr(m.combine, "gate")]
    assert len(gates) == 7  # 9 units, 2 of which change shape
    for g in gates:
        assert torch.equal(g.gate.bias.detach(), torch.full_like(g.gate.bias, -6.0))  # the paper's b_g
        assert g.gate.weight.abs().sum() > 0  # W_g has the network's He init, not zeros
        assert g.gate.kernel_size == (1, 1) and g.gate.in_channels == g.gate.out_channels
    custom = reslab.create_model("resnet20", shortcut_variant=variant, gate_bias=-2.5)
    assert all(
        float(m.combine.gate.bias.min()) == float(m.combine.gate.bias.max()) == -2.5
        for m in custom.modules()
        if isinstance(m, ResidualUnit) and hasattr(m.combine, "gate")
    )


# ResNet-110 (CIFAR, option A): 3 stages of 18 units at 16, 32, 64 channels; the first units of stages
# 2 and 3 change shape, so 18, 17 and 17 units keep an identity shortcut.
RESNET110 = 1_727_962
IDENTITY_UNITS = {16: 18, 32: 17, 64: 17}


def test_resnet110_parameters_with_a_1x1_convolution_shortcut():
    # each identity unit gains a 1x1 conv (C*C weights) and its BN (2C): 16: 256+32 = 288,
    # 32: 1024+64 = 1088, 64: 4096+128 = 4224; 18*288 + 17*1088 + 17*4224 = 5184 + 18496 + 71808 = 95488
    extra = sum(n * (c * c + 2 * c) for c, n in IDENTITY_UNITS.items())
    assert extra == 95_488
    assert n_params(reslab.create_model("resnet110", shortcut_variant="conv1x1")) == RESNET110 + 95_488


@pytest.mark.parametrize("variant", ["exclusive_gating", "shortcut_gating"])
def test_resnet110_parameters_with_gating(variant):
    # each identity unit gains a 1x1 gate conv with a bias: C*C + C; 16: 256+16 = 272, 32: 1024+32 = 1056,
    # 64: 4096+64 = 4160; 18*272 + 17*1056 + 17*4160 = 4896 + 17952 + 70720 = 93568
    extra = sum(n * (c * c + c) for c, n in IDENTITY_UNITS.items())
    assert extra == 93_568
    assert n_params(reslab.create_model("resnet110", shortcut_variant=variant)) == RESNET110 + 93_568


@pytest.mark.parametrize("variant", ["scaling", "dropout"])
def test_resnet110_parameter_free_variants(variant):
    assert n_params(reslab.create_model("resnet110", shortcut_variant=variant)) == RESNET110


def test_variant_on_a_preactivation_unit_replaces_its_addition():
    # the paper measured them with (a); on (e) the variant takes the place of the addition
    model = _model(unit="full_preact", shortcut_variant="scaling", shortcut_scale=0.3, branch_scale=0.7)
    unit = model.layer1[2]
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        f = F.conv2d(F.relu(_bn(x, unit.bn1)), unit.conv1.weight, None, 1, 1)
        f = F.conv2d(F.relu(_bn(f, unit.bn2)), unit.conv2.weight, None, 1, 1)
        assert torch.allclose(unit(x.clone()), 0.3 * x + 0.7 * f, atol=1e-5)


def test_variants_keep_the_existing_state_dict_keys_for_identity():
    # the default adds no parameters and no keys: every existing checkpoint still loads strictly
    plain_keys = list(reslab.create_model("resnet20").state_dict())
    assert list(reslab.create_model("resnet20", shortcut_variant="identity").state_dict()) == plain_keys
    gated = reslab.create_model("resnet20", shortcut_variant="exclusive_gating").state_dict()
    assert "layer1.0.combine.gate.weight" in gated and "layer1.0.combine.gate.bias" in gated
    conv = reslab.create_model("resnet20", shortcut_variant="conv1x1").state_dict()
    assert "layer1.0.downsample.0.weight" in conv and "layer1.0.downsample.1.running_var" in conv


@pytest.mark.parametrize("variant", list(FORMULAS))
def test_variants_export(variant):
    model = reslab.create_model("resnet20", shortcut_variant=variant).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(torch.export.export(model, (x,)).module()(x), model(x), atol=1e-5)


# ----------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            {"shortcut_variant": "gated"},
            "shortcut_variant must be one of 'identity', 'scaling', 'exclusive_gating', "
            "'shortcut_gating', 'conv1x1', 'dropout', got 'gated'",
        ),
        ({"shortcut_variant": "scaling", "shortcut_scale": 0}, "shortcut_scale must be > 0, got 0"),
        ({"shortcut_variant": "scaling", "branch_scale": -0.5}, "branch_scale must be > 0, got -0.5"),
        ({"shortcut_variant": "scaling", "shortcut_scale": float("nan")}, "shortcut_scale must be a finite number"),
        ({"shortcut_variant": "exclusive_gating", "gate_bias": float("inf")}, "gate_bias must be a finite number"),
        ({"shortcut_variant": "dropout", "shortcut_dropout": 1.0}, "shortcut_dropout must be in [0, 1), got 1.0"),
        ({"shortcut_variant": "dropout", "shortcut_dropout": -0.1}, "shortcut_dropout must be in [0, 1), got -0.1"),
        (
            {"shortcut_scale": 0.3},
            "shortcut_scale=0.3 has no effect with shortcut_variant='identity' (it is for 'scaling')",
        ),
        (
            {"shortcut_variant": "dropout", "gate_bias": -3.0},
            "gate_bias=-3.0 has no effect with "
            "shortcut_variant='dropout' (it is for 'exclusive_gating' or 'shortcut_gating')",
        ),
        (
            {"shortcut_variant": "scaling", "shortcut": "C"},
            "shortcut_variant='scaling' replaces identity shortcuts, "
            "but shortcut='C' projects every shortcut; use shortcut='A' or 'B'",
        ),
        ({"shortcut_variant": "dropout", "shortcut": "none"}, "shortcut='none' has no shortcuts"),
    ],
)
def test_bad_variant_arguments_are_refused_in_one_line(overrides, message):
    with pytest.raises(ConfigError) as e:
        reslab.create_model("resnet110", **overrides)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "arg,expected",
    [
        ("shortcut_variant=gated", "shortcut_variant must be one of 'identity', 'scaling'"),
        ("shortcut_dropout=1.5", "shortcut_dropout must be in [0, 1), got 1.5"),
        ("shortcut_scale=half", "shortcut_scale"),
    ],
)
def test_bad_variant_from_the_cli_is_refused_in_one_line(capsys, tmp_path, monkeypatch, arg, expected):
    from reslab.cli import main

    monkeypatch.chdir(tmp_path)
    argv = ["train", "--model", "resnet110", "--model-arg", arg, "--data", "synthetic"]
    if arg.startswith("shortcut_dropout"):
        argv += ["--model-arg", "shortcut_variant=dropout"]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("reslab: error: ") and "\n" not in err and expected in err, err
    assert "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing was started


def test_train_a_gated_resnet_from_the_cli(tmp_path):
    # what a user runs: `reslab train --model resnet20 --model-arg shortcut_variant=exclusive_gating`;
    # the checkpoint rebuilds the gated network with its trained gates
    from reslab.cli import main
    from reslab.training.checkpoint import load_checkpoint, model_from_checkpoint

    out = tmp_path / "run"
    argv = [
        "train",
        "--model",
        "resnet20",
        "--model-arg",
        "widths=[4,8,8]",
        "--model-arg",
        "shortcut_variant=exclusive_gating",
        "--model-arg",
        "gate_bias=-2",
        "--data",
        "synthetic",
        "--data-arg",
        "num_classes=4",
        "--data-arg",
        "num_samples=64",
        "--image-size",
        "8",
        "--batch-size",
        "32",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--out",
        str(out),
        "-q",
    ]
    assert main(argv) == 0
    model = model_from_checkpoint(load_checkpoint(out))
    assert model.shortcut_variant == "exclusive_gating"
    gate = model.layer1[1].combine.gate
    assert isinstance(model.layer1[1].combine, ExclusiveGate)
    assert not torch.allclose(gate.bias, torch.full_like(gate.bias, -2.0))  # trained away from b_g
