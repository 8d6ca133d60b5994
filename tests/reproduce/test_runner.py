"""The grid runner on synthetic data (no shared data needed): runs, skip, resume, restart, refusal, report."""

from __future__ import annotations

import csv
import json
import signal

import pytest
from PIL import Image

from reslab.errors import ConfigError
from reslab.reproduce import run_experiment
from reslab.training import trainer as trainer_module

from .conftest import SYNTHETIC

TWO = "plain20,resnet20"


def run(out, **kw):
    kw.setdefault("only", TWO)
    kw.setdefault("seeds", 2)
    kw.setdefault("epochs", 1)
    return run_experiment("degradation", out=out, overrides=SYNTHETIC, progress="none", **kw)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro") / "degradation"
    return run(out), out


def test_grid_makes_one_ordinary_run_per_arm_and_seed(finished):
    result, out = finished
    names = sorted(p.name for p in (out / "runs").iterdir())
    assert names == ["plain20-seed0", "plain20-seed1", "resnet20-seed0", "resnet20-seed1"]
    assert result.trained == 4 and result.skipped == 0 and result.interrupted is None
    for name in names:
        assert (out / "runs" / name / "summary.json").is_file()
    seeds = {json.loads((out / "runs" / n / "summary.json").read_text())["run_dir"] for n in names}
    assert len(seeds) == 4


def test_results_csv_rows(finished):
    _, out = finished
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 4
    for key in (
        "experiment",
        "model",
        "variant",
        "seed",
        "epochs",
        "final_train_error",
        "final_test_error",
        "best_test_error",
        "paper_error",
        "paper_source",
        "test_split",
    ):
        assert key in rows[0]
    by = {(r["label"], r["seed"]): r for r in rows}
    res = by[("resnet20", "0")]
    assert res["experiment"] == "degradation" and res["model"] == "resnet20" and res["epochs"] == "1"
    assert res["paper_error"] == "0.0875" and "Table 6, ResNet-20" in res["paper_source"]
    assert by[("plain20", "1")]["paper_error"] == "" and "no table" in by[("plain20", "1")]["paper_note"]
    for r in rows:
        for key in ("final_train_error", "final_test_error", "best_test_error"):
            assert 0.0 <= float(r[key]) <= 1.0
        assert float(r["best_test_error"]) <= float(r["final_test_error"]) + 1e-9  # one epoch: the same model
        metrics = list(csv.DictReader(open(out / "runs" / f"{r['label']}-seed{r['seed']}" / "metrics.csv")))
        assert float(r["final_train_error"]) == pytest.approx(1 - float(metrics[-1]["train_top1"]), abs=1e-4)


def test_report_md_table_and_verdicts(finished):
    _, out = finished
    text = (out / "report.md").read_text()
    assert "| resnet20 | resnet20 | residual (option A) |" in text and "8.75%" in text
    assert "± " in text and "Seeds**: 2 (0, 1)" in text and "Hardware**: CPU" in text and "Wall time" in text
    assert "- ResNet-20 beats plain-20 (test error): " in text
    verdicts = [line for line in text.splitlines() if line.startswith("- ") and ": " in line and " (" in line]
    assert any(": holds (" in v or ": does not hold (" in v for v in verdicts)
    # plain-56 and resnet56 are not in this --only subset
    assert "- plain-56 trains worse than plain-20 (degradation): not measured (arm plain56 missing from" in text


def test_figures_are_real_pngs(finished):
    _, out = finished
    for name in ("degradation.png", "final_errors.png"):
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.size[0] > 300
        assert f"]({name})" in (out / "report.md").read_text()


def test_complete_runs_are_skipped(finished):
    _, out = finished
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/last.pt")}
    again = run(out)
    assert again.skipped == 4 and again.trained == 0 and again.resumed == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/last.pt")} == before


def test_another_configuration_is_refused_naming_run_and_keys(finished):
    _, out = finished
    with pytest.raises(ConfigError) as e:
        run(out, epochs=2)
    msg = str(e.value)
    assert "plain20-seed0" in msg and "epochs: run has 1, grid asks 2" in msg and "\n" not in msg
    assert json.loads((out / "runs" / "plain20-seed0" / "summary.json").read_text())["epochs"] == 1


def test_interrupted_reproduction_resumes_where_it_stopped(tmp_path, monkeypatch):
    """A SIGINT after the first epoch of the first run stops the grid (last.pt kept, report of what is
    finished); the same call again resumes that run and trains the others."""
    out = tmp_path / "r"
    original = trainer_module.Trainer._end_epoch
    fired = []

    def end_epoch_then_interrupt(self, *a, **k):
        original(self, *a, **k)
        if not fired:
            fired.append(True)
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(trainer_module.Trainer, "_end_epoch", end_epoch_then_interrupt)
    first = run(out, epochs=2, seeds=1)
    monkeypatch.undo()
    assert first.interrupted == "SIGINT" and first.trained == 1
    stopped = out / "runs" / "plain20-seed0"
    assert (stopped / "last.pt").is_file() and not (stopped / "summary.json").exists()
    assert not (out / "runs" / "resnet20-seed0").exists()
    assert "## Not finished" in (out / "report.md").read_text()
    second = run(out, epochs=2, seeds=1)
    assert second.resumed == 1 and second.trained == 1 and second.interrupted is None
    epochs = [r["epoch"] for r in csv.DictReader(open(stopped / "metrics.csv"))]
    assert epochs == ["1", "2"] and "resuming" in (stopped / "train.log").read_text()
    assert len(list(csv.DictReader(open(out / "results.csv")))) == 2


def test_run_killed_before_its_first_checkpoint_is_restarted(tmp_path):
    out = tmp_path / "r"
    killed = out / "runs" / "plain20-seed0"
    killed.mkdir(parents=True)
    (killed / ".reslab-run").write_text('{"reslab_run": 1}\n')
    (killed / "config.yaml").write_text("model: plain20\n")
    result = run(out, seeds=1, only="plain20")
    assert result.trained == 1 and (killed / "summary.json").is_file()


def test_a_damaged_run_is_left_out_of_the_report_with_a_reason(tmp_path):
    out = tmp_path / "r"
    run(out, seeds=1)
    (out / "runs" / "plain20-seed0" / "metrics.csv").write_text("epoch\n1\n")
    again = run(out, seeds=1)
    assert again.skipped == 2
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["label"] for r in rows] == ["resnet20"]
    text = (out / "report.md").read_text()
    assert "## Left out (records unreadable)" in text and "cannot read the records of" in text
    assert "plain20-seed0 (KeyError: 'train_top1')" in text


def test_a_users_folder_in_the_way_is_refused_and_kept(tmp_path):
    out = tmp_path / "r"
    mine = out / "runs" / "plain20-seed0"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a reslab run directory"):
        run(out, seeds=1, only="plain20")
    assert (mine / "notes.txt").read_text() == "mine" and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"only": "plain20,nope"}, "--only 'nope' is not an arm of this grid; arms: plain20, plain56, resnet20"),
        ({"seeds": 0}, "--seeds must be a whole number >= 1, got 0"),
        ({"budget": "huge"}, "unknown budget 'huge'; budgets: quick, standard, paper"),
        ({"epochs": 0}, "--epochs must be a whole number >= 1"),
    ],
)
def test_bad_arguments_fail_before_anything_trains(tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match.replace("(", r"\(").replace(")", r"\)")):
        run(tmp_path / "r", **kwargs)
    assert not (tmp_path / "r").exists()


def test_unknown_experiment_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown experiment 'degredation'; experiments: degradation, shortcuts"):
        run_experiment("degredation")


def test_a_run_of_a_network_changed_since_is_not_reused(tmp_path):
    # a complete preact run written before issue 9's fix has the same config but another network
    import torch

    from reslab.errors import CheckpointError

    out = tmp_path / "units"
    kw = dict(out=out, overrides=SYNTHETIC, progress="none", epochs=1, seeds=1, only="resnet20-e")
    run_experiment("preact-units", **kw)
    last = out / "runs" / "resnet20-e-seed0" / "last.pt"
    ckpt = torch.load(last, weights_only=True)
    del ckpt["arch_revision"]
    torch.save(ckpt, last)
    with pytest.raises(CheckpointError, match="resnet20-e-seed0 was written by an older reslab"):
        run_experiment("preact-units", **kw)
