"""The experiments and budgets as data: every grid, every quoted figure, the papers' recipes in numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from reslab.errors import ConfigError
from reslab.reproduce import BUDGETS, EXPERIMENTS, get_experiment
from reslab.reproduce.budgets import DataChoice, budget_config, detect_data
from reslab.reproduce.papers import FIGURES
from reslab.reproduce.runner import plan_runs

from .conftest import CIFAR10_MINI, needs_mini

FULL = DataChoice("folder", "train.zip", 50_000, "CIFAR-10 images in class folders")


def test_six_experiments_with_a_grid_per_budget():
    assert list(EXPERIMENTS) == ["degradation", "shortcuts", "preact-units", "identity-shortcuts", "depth", "densenet"]
    for exp in EXPERIMENTS.values():
        for budget in BUDGETS:
            grid = exp.grid(budget)
            labels = grid.labels()
            assert len(labels) == len(set(labels)) >= 2, (exp.name, budget)
            for arm in grid.arms:
                assert arm.paper in FIGURES, (exp.name, arm.label)
            assert grid.claims, exp.name


def test_issue_model_lists():
    assert get_experiment("degradation").grid("standard").labels() == [
        "plain20",
        "plain32",
        "plain44",
        "plain56",
        "resnet20",
        "resnet32",
        "resnet44",
        "resnet56",
    ]
    assert "resnet110" in get_experiment("degradation").grid("paper").labels()
    assert [a.model for a in get_experiment("depth").grid("paper").arms][-1] == "resnet1202"
    assert "resnet1202" not in get_experiment("depth").grid("standard").labels()
    units = get_experiment("preact-units").grid("paper").arms
    assert [a.model_args["unit"] for a in units[:5]] == [
        "original",
        "bn_after_add",
        "relu_before_add",
        "relu_only_preact",
        "full_preact",
    ]
    assert {a.model for a in units[5:]} == {"preact_resnet164"}


def test_published_figures():
    assert [FIGURES[f"resnet{d}"].percent for d in (20, 32, 44, 56, 110, 1202)] == [8.75, 7.51, 7.17, 6.97, 6.43, 7.93]
    assert [FIGURES[f"unit110-{x}"].percent for x in "abcde"] == [6.61, 8.17, 7.84, 6.71, 6.37]
    assert [FIGURES[f"unit164-{x}"].percent for x in "abcde"] == [5.93, 6.50, 6.14, 5.91, 5.46]
    assert FIGURES["t1-dropout"].percent is None and FIGURES["t1-dropout"].shown() == "fail (>20%)"
    assert FIGURES["t1-shortcut-gating-6"].error == pytest.approx(0.0691)
    assert "another data set" in FIGURES["imagenet34-b"].dataset and FIGURES["imagenet34-b"].percent == 24.52
    assert FIGURES["densenet_bc100"].percent == 4.51 and FIGURES["densenet-resnet110"].percent == 6.41
    assert FIGURES["plain56"].percent is None and "no table" in FIGURES["plain56"].note


def test_paper_recipe_in_iterations():
    cfg, notes = budget_config("paper", "resnet-warmup", FULL)
    assert cfg["epochs"] == 182 and cfg["milestones"] == [
        pytest.approx(32000 / 352, abs=1e-3),
        pytest.approx(48000 / 352, abs=1e-3),
    ]
    assert cfg["warmup_lr"] == 0.01 and cfg["warmup_epochs"] == pytest.approx(400 / 352, abs=1e-3)
    assert cfg["nesterov"] is False and cfg["weight_decay"] == 1e-4 and cfg["batch_size"] == 128
    assert cfg["val_split"] == 0.1 and cfg["label_smoothing"] == 0 and cfg["ema"] is False
    assert "352 steps per epoch" in notes[0]
    assert "warmup_lr" not in budget_config("paper", "resnet", FULL)[0]
    dense, _ = budget_config("paper", "densenet", FULL)
    assert (dense["batch_size"], dense["epochs"], dense["nesterov"], dense["milestone_fractions"]) == (
        64,
        300,
        True,
        [0.5, 0.75],
    )


def test_paper_recipe_follows_limit_and_epochs_overrides():
    cfg, _ = budget_config("paper", "resnet", FULL, limit=1280)
    assert cfg["epochs"] == 6400 and cfg["data_args"] == {"limit": 1280}  # 10 steps per epoch
    cfg, notes = budget_config("paper", "resnet-warmup", FULL, epochs=1, limit=300)
    assert cfg["epochs"] == 1 and cfg["milestone_fractions"] == [0.5, 0.75] and cfg["milestones"] is None
    assert "warmup_lr" not in cfg and any("warm-up is dropped" in n for n in notes)


def test_quick_and_standard_recipes():
    quick, _ = budget_config("quick", "resnet", DataChoice("cifar10", "d", 4065, "mini", 1020, True))
    assert quick["val_split"] == 0 and quick["epochs"] == 4 and quick["nesterov"] and quick["schedule"] == "onecycle"
    standard, _ = budget_config("standard", "densenet", FULL, on_gpu=True)
    assert standard["val_split"] == 0.1 and standard["epochs"] == 30 and standard["amp"] == "bf16"
    assert "amp" not in budget_config("standard", "resnet", FULL)[0]


def test_detect_data_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        detect_data(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="not an archive"):
        detect_data(tmp_path / "notes.txt")
    with pytest.raises(ConfigError, match="holds neither"):
        detect_data(tmp_path)


class _Boom:
    def __reduce__(self):  # unpickling this would run code
        import os

        return (os.system, ("touch pwned",))


def test_detect_data_never_unpickles_code(tmp_path, monkeypatch):
    import pickle

    from reslab.errors import DataError

    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    (batches / "data_batch_1").write_bytes(pickle.dumps({"labels": [0, 1], "x": _Boom()}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="not allowed"):
        detect_data(tmp_path)
    assert not (tmp_path / "pwned").exists()


@needs_mini
def test_detect_cifar10_mini_and_what_its_test_is():
    data = detect_data(CIFAR10_MINI)
    assert (data.data, data.images, data.test_images, data.mini) == ("cifar10", 4065, 1020, True)
    curve, test = data.splits("quick")
    assert "held-out CIFAR-10 *training* images" in test and curve == test
    curve, test = data.splits("standard")
    assert "validation split" in curve and "test_batch" in test


def test_identity_shortcuts_grid_builds_its_configs(tmp_path):
    """Every arm's configuration resolves. The shortcut variants are the units helper's model arguments:
    until they are merged, the grid stops before training with one line naming the key."""
    exp = get_experiment("identity-shortcuts")
    for budget in BUDGETS:
        grid = exp.grid(budget)
        try:
            plans = plan_runs(exp, budget, grid.arms, 1, Path(tmp_path), FULL)
        except ConfigError as e:
            assert "shortcut_variant" in str(e) and "\n" not in str(e)
            pytest.skip(f"model_args shortcut_variant not in this checkout's ResNet yet: {e}")
        assert {p.config["model_args"].get("shortcut_variant") for p in plans} >= {"conv1x1", "dropout"}
