"""A run's records: consistent whatever instant it dies, honest about which split they measure, the
learning rate an epoch trained with, signals during the final evaluation, resuming with other threads
(issue 7 items 5, 8, 9, 14, 15 and the checkpoint part of 16)."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from reslab.cli import main
from reslab.data import build_data
from reslab.errors import CheckpointError
from reslab.training import evaluate, train
from reslab.training.checkpoint import load_checkpoint, save_checkpoint

from .conftest import HookNet, TinyNet, fast_config, tiny_bundle

ROOT = Path(__file__).resolve().parents[2]


class Killed(BaseException):
    """Stands for a kill -9: not an Exception, so no `except Exception` handler swallows it."""


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _net() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet()


def _without_timings(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("time", "images_per_s")} for r in rows]


# -- item 5: the crash window around the epoch-end writes ---------------------------------------------------------
@pytest.mark.parametrize("window", ["after_last_pt", "after_best_pt"])
def test_killed_between_epoch_end_writes_resume_repairs_the_records(tmp_path, monkeypatch, window):
    """Killed right after last.pt (or best.pt) is in place but before the metrics row: a resume restores
    the row from last.pt, brings best.pt in line with last.pt's best_epoch, and the records equal an
    uninterrupted run's."""
    cfg = dict(epochs=3, lr=0.02)  # validation top-1 rises every epoch: each epoch writes best.pt
    full = train(fast_config(tmp_path / "a", **cfg), bundle=tiny_bundle(), network=_net(), progress="none")
    import reslab.training.trainer as trainer_module

    real_save, real_copy = trainer_module.save_checkpoint, trainer_module._copy_atomic

    def save(state, path):
        out = real_save(state, path)
        if window == "after_last_pt" and state["epoch"] == 2 and state["step"] == 0:
            raise Killed
        return out

    def copy(src, dst):
        real_copy(src, dst)
        if window == "after_best_pt" and load_checkpoint(src)["epoch"] == 2:
            raise Killed

    monkeypatch.setattr(trainer_module, "save_checkpoint", save)
    monkeypatch.setattr(trainer_module, "_copy_atomic", copy)
    run = tmp_path / "b" / "run"
    with pytest.raises(Killed):
        train(fast_config(tmp_path / "b", **cfg), bundle=tiny_bundle(), network=_net(), progress="none")
    monkeypatch.undo()
    last = load_checkpoint(run / "last.pt")
    assert last["epoch"] == 2 and len(_rows(run)) == 1  # the window: the row of epoch 2 is missing
    if window == "after_last_pt":
        assert last["best_epoch"] == 2 and load_checkpoint(run / "best.pt")["epoch"] == 1  # best.pt is stale

    resumed = train(resume=run, bundle=tiny_bundle(), network=TinyNet(), progress="none")
    assert resumed.finished
    assert _without_timings(_rows(run)) == _without_timings(_rows(tmp_path / "a" / "run"))
    final = load_checkpoint(run / "last.pt")
    assert load_checkpoint(run / "best.pt")["epoch"] == final["best_epoch"] == full.best_epoch
    assert resumed.final.top1 == full.final.top1


@pytest.mark.slow
def test_killed_after_the_final_last_pt_the_run_can_be_finished(tmp_path):
    """The issue's case: SIGKILL right after the final epoch's last.pt rename. `reslab train --resume` then
    finishes the run: metrics row, best.pt, evaluation and summary.json."""
    out = tmp_path / "run"
    script = (
        "import os, signal, reslab.training.trainer as t\n"
        "real = t.save_checkpoint\n"
        "def save(state, path):\n"
        "    written = real(state, path)\n"
        "    if state['finished']:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return written\n"
        "t.save_checkpoint = save\n"
        "from reslab.cli import main\n"
        "main(['train', '--model', 'resnet20', '--model-arg', 'widths=[4,8,8]', '--data', 'synthetic', '--data-arg',"
        " 'num_samples=128', '--data-arg', 'num_classes=4', '--image-size', '8', '--epochs', '2', '--device', 'cpu',"
        f" '--threads', '1', '--out', {str(out)!r}, '-q'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    last = load_checkpoint(out / "last.pt")
    assert last["finished"] and len(_rows(out)) == 1 and not (out / "summary.json").exists()
    stale = load_checkpoint(out / "best.pt")["epoch"] != last["best_epoch"]

    assert main(["train", "--resume", str(out), "-q"]) == 0
    rows = _rows(out)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert rows[1]["train_loss"] == f"{last['metrics']['train_loss']:.6g}"
    assert load_checkpoint(out / "best.pt")["epoch"] == last["best_epoch"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["n"] == 32
    assert stale or last["best_epoch"] == 1  # (either way best.pt now matches)


def test_a_finished_run_with_its_summary_has_nothing_to_resume(tmp_path):
    from reslab.errors import ConfigError

    train(fast_config(tmp_path, epochs=1), bundle=tiny_bundle(), network=_net(), progress="none")
    with pytest.raises(ConfigError, match="already finished all 1 epochs") as e:
        train(resume=tmp_path / "run", bundle=tiny_bundle(), network=TinyNet(), progress="none")
    assert "best.pt" in str(e.value) and str(e.value).endswith(".")


# -- item 8: a signal during the final evaluation ------------------------------------------------------------------
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_during_final_evaluation_stops_and_resume_finishes(tmp_path, monkeypatch, capsys, sig):
    import reslab.training.trainer as trainer_module

    real = trainer_module.evaluate_model
    calls = []

    def slow_final(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # epoch 1's validation, then the final evaluation
            os.kill(os.getpid(), getattr(signal, sig))
            time.sleep(2)  # a long evaluation: the signal must cut it short
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "evaluate_model", slow_final)
    out = tmp_path / "run"
    argv = [
        "train",
        "--model",
        "resnet20",
        "--model-arg",
        "widths=[4,8,8]",
        "--data",
        "synthetic",
        "--image-size",
        "8",
        "--data-arg",
        "num_samples=64",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--progress",
        "plain",
        "--no-ema",
    ]  # no EMA: its evaluation would be call 2
    start = time.perf_counter()
    assert main(argv) == (130 if sig == "SIGINT" else 143)
    assert time.perf_counter() - start < 30
    err = capsys.readouterr().err
    assert f"interrupted by {sig} during the final evaluation" in err and "reslab train --resume" in err
    assert not (out / "summary.json").exists()
    assert load_checkpoint(out / "last.pt")["finished"]
    monkeypatch.undo()
    assert main(["train", "--resume", str(out), "-q"]) == 0
    assert json.loads((out / "summary.json").read_text())["epochs"] == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- item 9: resuming with other threads -----------------------------------------------------------------------------
def _interrupted_run(tmp_path: Path) -> Path:
    steps = len(tiny_bundle().train)
    torch.manual_seed(0)
    train(
        fast_config(tmp_path, epochs=2),
        bundle=tiny_bundle(),
        network=HookNet(at_step=steps + 2, action="SIGINT"),
        progress="none",
    )
    return tmp_path / "run"


def test_resume_with_other_threads_warns_not_bit_exact(tmp_path, caplog):
    run = _interrupted_run(tmp_path)
    assert load_checkpoint(run / "last.pt")["num_threads"] == torch.get_num_threads() == 1
    try:
        with caplog.at_level(logging.WARNING, logger="reslab"):
            train(resume=run, threads=2, bundle=tiny_bundle(), network=TinyNet(), progress="none")
    finally:
        torch.set_num_threads(1)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("2 threads" in w and "1 thread" in w and "not bit-exact" in w for w in warnings), warnings
    assert "not bit-exact" in (run / "train.log").read_text()


def test_resume_with_the_same_threads_does_not_warn(tmp_path, caplog):
    run = _interrupted_run(tmp_path)
    with caplog.at_level(logging.WARNING, logger="reslab"):
        train(resume=run, bundle=tiny_bundle(), network=TinyNet(), progress="none")
    assert not [r for r in caplog.records if "bit-exact" in r.getMessage()]


# -- item 14: the learning rate an epoch trained with --------------------------------------------------------------
def _cosine_means(lr: float, epochs: int, steps: int) -> list[float]:
    total = epochs * steps
    rates = [lr * 0.5 * (1 + math.cos(math.pi * it / total)) for it in range(total)]
    return [sum(rates[e * steps : (e + 1) * steps]) / steps for e in range(epochs)]


def test_lr_column_is_the_mean_rate_of_the_epochs_steps(tmp_path, caplog):
    steps = len(tiny_bundle().train)
    with caplog.at_level(logging.INFO, logger="reslab"):
        result = train(
            fast_config(tmp_path, epochs=3, schedule="cosine", lr=0.1),
            bundle=tiny_bundle(),
            network=_net(),
            progress="plain",
        )
    expected = _cosine_means(0.1, 3, steps)
    assert [r["lr"] for r in result.history] == pytest.approx(expected, rel=1e-12)
    assert result.history[-1]["lr"] > 0.005  # not the rate after the last step (0)
    assert [float(r["lr"]) for r in _rows(tmp_path / "run")] == pytest.approx(expected, rel=1e-5)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 3/3")]
    assert lines and f"lr {expected[-1]:.4g} " in lines[0]


def _onecycle(lr: float, total: int, pct: float = 0.25, div: float = 25.0) -> list[float]:
    up = round(pct * total)
    rates = [lr * (1 / div + (1 - 1 / div) * it / up) for it in range(up)]
    return rates + [lr * 0.5 * (1 + math.cos(math.pi * (it - up) / (total - up))) for it in range(up, total)]


def test_lr_mean_is_exact_across_a_mid_epoch_resume(tmp_path):
    steps = len(tiny_bundle().train)
    cfg = dict(epochs=2, schedule="onecycle", lr=0.1)
    full = train(fast_config(tmp_path / "a", **cfg), bundle=tiny_bundle(), network=_net(), progress="none")
    torch.manual_seed(0)
    train(
        fast_config(tmp_path / "b", **cfg),
        bundle=tiny_bundle(),
        network=HookNet(at_step=steps + 4, action="SIGTERM"),
        progress="none",
    )
    resumed = train(resume=tmp_path / "b" / "run", bundle=tiny_bundle(), network=TinyNet(), progress="none")
    assert resumed.history[1]["lr"] == full.history[1]["lr"]  # epoch 2 was cut at step 4 and resumed
    assert full.history[1]["lr"] == pytest.approx(sum(_onecycle(0.1, 2 * steps)[steps:]) / steps, rel=1e-12)
    assert _rows(tmp_path / "a" / "run")[1]["lr"] == _rows(tmp_path / "b" / "run")[1]["lr"]


# -- item 15: honest labels when there is no validation split ---------------------------------------------------------
def test_bundle_says_whether_val_is_the_test_split():
    assert build_data("synthetic", num_samples=64, image_size=8, batch_size=16).val_is_test is True
    assert build_data("synthetic", num_samples=64, image_size=8, batch_size=16, val_split=0.25).val_is_test is False


def test_without_a_validation_split_records_say_test(tmp_path, caplog):
    bundle = tiny_bundle()
    bundle.notes = ["image size 8: the synthetic images' own size"]
    with caplog.at_level(logging.INFO, logger="reslab"):
        result = train(fast_config(tmp_path, epochs=2, ema=True), bundle=bundle, network=_net(), progress="plain")
    run = result.run_dir
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header == [
        "epoch",
        "lr",
        "train_loss",
        "train_top1",
        "test_loss",
        "test_top1",
        "test_top5",
        "ema_test_loss",
        "ema_test_top1",
        "ema_test_top5",
        "time",
        "images_per_s",
    ]
    assert "test_top1" in result.history[0] and "val_top1" not in result.history[0]
    log = (run / "train.log").read_text()
    assert "no validation split held out: per-epoch figures and best.pt use the test split" in log
    assert "--val-split 0.1" in log
    assert "image size 8: the synthetic images' own size" in log
    epoch_lines = [ln for ln in log.splitlines() if "epoch 1/2" in ln]
    assert epoch_lines and "| test loss" in epoch_lines[0] and "val" not in epoch_lines[0]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["selection_split"] == "test" and "best_test_top1" in summary and "best_val_top1" not in summary
    assert result.selection_split == "test"
    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    if events:  # tensorboard installed: the tags say test too
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(str(run / "tensorboard"))
        acc.Reload()
        tags = acc.Tags()["scalars"]
        assert "test/top1" in tags and not any(t.startswith("val/") for t in tags), tags


def test_with_a_validation_split_records_say_val_and_resume_reads_them(tmp_path):
    steps = len(tiny_bundle(val_split=0.25).train)
    torch.manual_seed(0)
    train(
        fast_config(tmp_path, epochs=2, val_split=0.25),
        bundle=tiny_bundle(val_split=0.25),
        network=HookNet(at_step=steps, action="SIGINT"),
        progress="none",
    )
    run = tmp_path / "run"
    assert "val_top1" in (run / "metrics.csv").read_text().splitlines()[0]
    resumed = train(resume=run, bundle=tiny_bundle(val_split=0.25), network=TinyNet(), progress="none")
    assert [r["epoch"] for r in resumed.history] == [1, 2] and resumed.history[0]["val_top1"] is not None
    assert "no validation split" not in (run / "train.log").read_text()
    assert json.loads((run / "summary.json").read_text())["selection_split"] == "val"


def test_resume_without_validation_split_keeps_test_columns(tmp_path):
    run = _interrupted_run(tmp_path)
    resumed = train(resume=run, bundle=tiny_bundle(), network=TinyNet(), progress="none")
    rows = _rows(run)
    assert [r["epoch"] for r in rows] == ["1", "2"] and rows[0]["test_top1"] != ""
    assert resumed.history[0]["test_top1"] is not None


# -- item 16 (part): a checkpoint whose stored configuration does not fit ------------------------------------------
def test_checkpoint_config_with_an_unknown_key_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--model",
                "resnet20",
                "--model-arg",
                "widths=[4,8,8]",
                "--data",
                "synthetic",
                "--data-arg",
                "num_samples=64",
                "--image-size",
                "8",
                "--epochs",
                "1",
                "--device",
                "cpu",
                "--out",
                str(run),
                "-q",
            ]
        )
        == 0
    )
    ckpt = load_checkpoint(run / "last.pt")
    ckpt["config"]["learning_rate"] = 0.1
    del ckpt["path"]
    save_checkpoint({k: v for k, v in ckpt.items() if k not in ("format", "version", "torch_version")}, run / "last.pt")
    with pytest.raises(CheckpointError, match=r"last\.pt.*unknown configuration key 'learning_rate'") as e:
        train(resume=run, progress="none")
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match="learning_rate"):
        evaluate(run / "last.pt", device="cpu")
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run / "last.pt"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("reslab: error: ") and "learning_rate" in err[-1] and str(run / "last.pt") in err[-1]


def test_checkpoint_config_with_a_bad_value_is_one_line(tmp_path):
    run = _interrupted_run(tmp_path)
    ckpt = load_checkpoint(run / "last.pt")
    ckpt["config"]["epochs"] = -3
    del ckpt["path"]
    save_checkpoint({k: v for k, v in ckpt.items() if k not in ("format", "version", "torch_version")}, run / "last.pt")
    with pytest.raises(CheckpointError, match=r"last\.pt.*epochs"):
        train(resume=run, bundle=tiny_bundle(), network=TinyNet(), progress="none")


def test_a_folder_without_test_split_reports_its_final_score_as_val(tmp_path, capsys):
    """A held-out validation split and no test split: the final score is on the validation images
    (the ones best.pt was chosen on) and must not be called a test score."""
    from tests.data.fakes import make_image_folder

    make_image_folder(tmp_path / "pics", None, per_class=6)
    argv = [
        "train",
        "--model",
        "resnet20",
        "--model-arg",
        "widths=[4,8,8]",
        "--data",
        "folder",
        "--data-dir",
        str(tmp_path / "pics"),
        "--val-split",
        "0.5",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "run"),
        "-q",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("val accuracy: ") and "test accuracy" not in out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["split"] == "val" and summary["selection_split"] == "val"


def _drawn_epochs(monkeypatch) -> list[int]:
    """The epoch count curves.png shows at each time it is drawn."""
    from reslab.training.run_dir import RunDir

    drawn: list[int] = []
    real = RunDir.plot_curves
    monkeypatch.setattr(RunDir, "plot_curves", lambda self: drawn.append(len(self.rows)) or real(self))
    return drawn


def test_curves_are_redrawn_at_most_every_interval_and_always_at_the_end(tmp_path, monkeypatch):
    """Drawing curves.png took 0.25-0.3 s an epoch (3% of a cifar10-mini epoch on 2 cores, most of a tiny
    one); it is drawn for the first epoch, then at most every PLOT_INTERVAL_S seconds, and for the last."""
    drawn = _drawn_epochs(monkeypatch)
    train(fast_config(tmp_path / "a", epochs=4), bundle=tiny_bundle(), network=_net(), progress="none")
    assert drawn == [1, 4]
    assert (tmp_path / "a" / "run" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    from reslab.training import run_dir

    drawn.clear()
    monkeypatch.setattr(run_dir, "PLOT_INTERVAL_S", 0.0)
    train(fast_config(tmp_path / "b", epochs=3), bundle=tiny_bundle(), network=_net(), progress="none")
    assert drawn == [1, 2, 3]


def test_a_stopped_run_draws_the_epochs_it_has(tmp_path, monkeypatch):
    drawn = _drawn_epochs(monkeypatch)
    steps = len(tiny_bundle().train)
    torch.manual_seed(0)
    result = train(
        fast_config(tmp_path, epochs=4),
        bundle=tiny_bundle(),
        network=HookNet(at_step=2 * steps + 2, action="SIGINT"),  # in epoch 3
        progress="none",
    )
    assert result.interrupted == "SIGINT" and result.epochs_done == 2
    assert drawn == [1, 2]  # the first at once; the second, pending, when the run closed
