"""A tiny version of every experiment on real CIFAR-10 images (cifar10-mini): two arms, one epoch, 200
training images; each budget's code path once (quick, standard with its 10% split, paper's recipe)."""

from __future__ import annotations

import csv

import pytest
from PIL import Image

from reslab.errors import ConfigError
from reslab.reproduce import get_experiment, run_experiment

from .conftest import CIFAR10_MINI, needs_mini

pytestmark = [needs_mini, pytest.mark.slow]

TINY = [
    # experiment, budget, two arms, further model arguments (the DenseNets narrowed to k=4: a minute less)
    ("degradation", "quick", "plain20,resnet20", None),
    ("shortcuts", "standard", "option-a,option-b", None),
    ("preact-units", "quick", "resnet20-a,resnet20-e", None),
    ("identity-shortcuts", "quick", "identity,conv1x1", None),
    ("depth", "paper", "resnet20,resnet32", None),
    ("densenet", "quick", "densenet40,densenet-bc100", {"model_args": {"growth_rate": 4}}),
]


@pytest.mark.parametrize(("name", "budget", "only", "overrides"), TINY, ids=[t[0] for t in TINY])
def test_tiny_experiment_on_cifar10_mini(tmp_path, name, budget, only, overrides):
    out = tmp_path / name
    try:
        result = run_experiment(
            name,
            budget=budget,
            only=only,
            seeds=1,
            epochs=1,
            limit=200,
            out=out,
            data_dir=CIFAR10_MINI,
            device="cpu",
            progress="none",
            overrides=overrides,
        )
    except ConfigError as e:
        if name == "identity-shortcuts" and "shortcut_variant" in str(e):
            pytest.skip(f"the shortcut variants are not in this checkout's ResNet yet: {e}")
        raise
    labels = only.split(",")
    assert result.trained == 2 and sorted(p.name for p in (out / "runs").iterdir()) == [
        f"{x}-seed0" for x in sorted(labels)
    ]
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert sorted(r["label"] for r in rows) == sorted(labels)
    for r in rows:
        assert r["budget"] == budget and r["epochs"] == "1" and 0 <= float(r["final_test_error"]) <= 1
        assert "cifar10-mini" in r["test_split"] and int(r["params"]) > 0
        if budget != "quick":  # a held-out 10% split: curves on it, the test figure on test_batch
            assert r["curve_split"].startswith("the held-out 10% validation split")
    text = (out / "report.md").read_text()
    verdicts = [
        line
        for line in text.splitlines()
        if line.startswith("- ") and any(f": {v} (" in line for v in ("holds", "does not hold", "not measured"))
    ]
    assert len(verdicts) == len(get_experiment(name).grid(budget).claims)
    pngs = sorted(out.glob("*.png"))
    assert pngs
    for png in pngs:
        with Image.open(png) as im:
            assert im.format == "PNG"
    if budget == "paper":
        config = (out / "runs" / f"{labels[0]}-seed0" / "config.yaml").read_text()
        assert "nesterov: false" in config and "weight_decay: 0.0001" in config
    again = run_experiment(
        name,
        budget=budget,
        only=only,
        seeds=1,
        epochs=1,
        limit=200,
        out=out,
        data_dir=CIFAR10_MINI,
        device="cpu",
        progress="none",
        overrides=overrides,
    )
    assert again.skipped == 2 and again.trained == 0
