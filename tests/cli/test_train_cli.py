"""`reslab train` / `eval` / `predict` / `show-data`: outputs, signals, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from reslab.cli import main
from reslab.errors import ConfigError
from reslab.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
#: a ResNet-20 narrowed to 4-8-8 channels on 8x8 synthetic images: a few hundred ms per epoch
TINY = [
    "--model",
    "resnet20",
    "--model-arg",
    "widths=[4,8,8]",
    "--data",
    "synthetic",
    "--data-arg",
    "num_classes=4",
    "--data-arg",
    "num_samples=128",
    "--image-size",
    "8",
    "--batch-size",
    "32",
    "--device",
    "cpu",
    "--progress",
    "plain",
]


def _error(capsys, argv: list[str], match: str) -> str:
    """Run the CLI expecting a one-line error with exit status 2 and no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "no error message"
    line = err[-1]
    assert line.startswith("reslab: error: ") and match in line, line
    assert not any("Traceback" in e for e in err)
    return line


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """One tiny finished run shared by the eval / predict / error tests."""
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out), "-q"]) == 0
    return out


def test_train_prints_summary_and_writes_run_dir(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "2", "--lr", "0.05", "--ema", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    last = captured.out.strip().splitlines()[-1]
    assert last.startswith("test accuracy: ") and f"(n=32) — run directory: {out}" in last
    assert "epoch 2/2" in captured.err  # one plain line per epoch (stderr is not a terminal here)
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["lr"] == 0.05 and config["ema"] is True and config["model_args"] == {"widths": [4, 8, 8]}
    for name in ("metrics.csv", "curves.png", "last.pt", "best.pt"):
        assert (out / name).is_file()


def test_flags_override_only_what_was_given(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"epochs": 1, "lr": 0.3, "momentum": 0.8, "model_args": {"widths": [4, 4, 8]}}))
    out = tmp_path / "run"
    assert main(["train", "--config", str(recipe), *TINY, "--lr", "0.01", "--out", str(out), "-q"]) == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["lr"] == 0.01  # the flag
    assert config["momentum"] == 0.8 and config["epochs"] == 1  # the file (no flag given)
    assert config["model_args"] == {"widths": [4, 8, 8]}  # --model-arg overrides the file's key


def test_eval_last_line_is_json(run_dir, tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(run_dir / "best.pt"), "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert set(result) == {"top1", "top4", "loss", "n"} and result["n"] == 32  # 4 classes: top-4
    assert 0 <= result["top1"] <= result["top4"] <= 1
    assert any(line.startswith("per-class accuracy") for line in lines)
    conf = (tmp_path / "eval_test_confusion.csv").read_text().splitlines()
    assert len(conf) == 5 and sum(int(v) for row in conf[1:] for v in row.split(",")[1:]) == 32
    assert (tmp_path / "eval_test_confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["eval", "--checkpoint", str(run_dir / "best.pt"), "--split", "train", "--out", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 128


def test_predict_prints_classes_and_probabilities(run_dir, tmp_path, capsys):
    images = []
    for i in range(2):
        path = tmp_path / f"img{i}.png"
        Image.fromarray((np.random.default_rng(i).random((12, 10, 3)) * 255).astype("uint8")).save(path)
        images.append(str(path))
    assert main(["predict", "--checkpoint", str(run_dir / "best.pt"), *images, "--topk", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for image, line in zip(images, lines):
        name, _, rest = line.partition(": ")
        assert name == image
        pairs = [p.rsplit(" ", 1) for p in rest.split(", ")]
        probs = [float(p) for _, p in pairs]
        assert len(pairs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-6
        assert all(c in {"class_0", "class_1", "class_2", "class_3"} for c, _ in pairs)
    assert main(["predict", "--checkpoint", str(run_dir), images[0], "--json", "--topk", "9"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert len(record["top"]) == 4  # at most the class count


def test_show_data_writes_a_grid(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["show-data", "--data", "digits", "--out", str(out), "-n", "16"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert str(out) in capsys.readouterr().out


def test_show_data_val_split_holds_out_a_val_split_as_train_does(tmp_path, capsys):
    """show-data had no --val-split, and --data-arg val_split=0.1 was refused with "use --val-split"."""
    out = tmp_path / "grid.png"
    argv = ["show-data", "--data", "digits", "--split", "val", "-n", "8", "--out", str(out)]
    assert main([*argv, "--val-split", "0.1"]) == 0
    captured = capsys.readouterr()
    assert "8 digits val images" in captured.out and "no val split" not in captured.err
    assert main([*argv, "--overwrite"]) == 0  # without it: digits has no val split, says so
    assert "has no val split (its splits: train, test): showing its test split" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--val-split", "1.5"]) == 2
    assert capsys.readouterr().err.strip() == "reslab: error: val_split must be in [0, 1), got 1.5"


def test_show_data_keeps_an_existing_file_and_never_writes_over_its_input(tmp_path, capsys):
    import zipfile

    import numpy as np
    from PIL import Image

    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for c in ("cat", "dog"):
            for i in range(10):
                img = tmp_path / f"{c}{i}.png"
                Image.fromarray(np.full((8, 8, 3), 25 * i, np.uint8)).save(img)
                zf.write(img, f"{c}/{i}.png")
    out = tmp_path / "grid.png"
    out.write_bytes(b"the user's picture")
    argv = ["show-data", "--data", "folder", "--data-dir", str(archive), "-n", "4"]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--out {out} exists; it is left as it is: choose another --out or pass --overwrite" in err
    assert out.read_bytes() == b"the user's picture"
    before = archive.read_bytes()
    assert main([*argv, "--out", str(archive), "--overwrite"]) == 2
    assert f"is the input {archive}" in capsys.readouterr().err and archive.read_bytes() == before
    assert main([*argv, "--out", str(out), "--overwrite"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_bad_arguments_are_one_line_errors(run_dir, tmp_path, capsys):
    ckpt = str(run_dir / "best.pt")
    _error(capsys, ["train", *TINY, "--model", "resnet21", "--out", str(tmp_path / "a")], "unknown model 'resnet21'")
    _error(capsys, ["train", "--data", "cifar11", "--out", str(tmp_path / "b")], "unknown data set 'cifar11'")
    _error(capsys, ["train", *TINY, "--amp", "fp16", "--out", str(tmp_path / "c")], "fp16 needs a CUDA device")
    if not torch.cuda.is_available():
        _error(capsys, ["train", *TINY, "--device", "cuda", "--out", str(tmp_path / "d")], "CUDA is not available")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("epochs: 2\nlearning_rate: 0.1\n")
    _error(capsys, ["train", "--config", str(bad_yaml)], f"unknown configuration key 'learning_rate' in {bad_yaml}")
    _error(capsys, ["eval", "--checkpoint", ckpt, "--model", "resnet56"], "holds a resnet20 model, not resnet56")
    _error(capsys, ["eval", "--checkpoint", ckpt, "--data", "digits"], "trained for 4 classes, but digits has 10")
    _error(capsys, ["eval", "--checkpoint", str(tmp_path / "nope.pt")], "nope.pt not found")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00" * 100)
    _error(capsys, ["eval", "--checkpoint", str(corrupt)], "corrupt.pt is not a reslab checkpoint")
    _error(capsys, ["predict", "--checkpoint", str(corrupt), "x.png"], "corrupt.pt")
    bad_image = tmp_path / "bad.png"
    bad_image.write_text("not an image")
    _error(capsys, ["predict", "--checkpoint", ckpt, str(bad_image)], "bad.png")
    _error(capsys, ["predict", "--checkpoint", ckpt, str(tmp_path / "missing.png")], "missing.png")
    _error(capsys, ["train", "--resume", str(run_dir), "--model", "resnet56"], "model: run has 'resnet20'")
    _error(capsys, ["train", "--resume", str(run_dir)], "already finished all 2 epochs")
    _error(capsys, ["train", *TINY, "--out", str(run_dir)], "already holds a run")


def test_bad_flags_are_one_line_errors(capsys):
    for argv, match in (
        (["train", "--optimizer", "lion"], "invalid choice: 'lion'"),
        (["train", "--lr", "abc"], "invalid float value: 'abc'"),
        (["train", "--model-arg", "widths"], "expected KEY=VALUE"),
    ):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], err
    # eval and predict take --checkpoint or --model with --pretrained: main() reports the missing one
    assert main(["eval"]) == 2
    assert capsys.readouterr().err.strip() == (
        "reslab: error: give --checkpoint CKPT, or --model MODEL --pretrained WEIGHTS (published weights)"
    )


def test_compile_without_a_compiler_is_refused(tmp_path, capsys, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    _error(capsys, ["train", *TINY, "--compile", "--out", str(tmp_path / "a")], "needs a C++ compiler")


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_saves_checkpoint_and_run_resumes(tmp_path, sig):
    """A real `python -m reslab train` process: the signal finishes the step, saves last.pt, says how to
    resume and exits 130 / 143; `--resume` then completes the run."""
    out = tmp_path / "run"
    args = [*TINY, "--data-arg", "num_samples=4096", "--epochs", "3", "--out", str(out), "--threads", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reslab", "train", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "metrics.csv").exists():  # epoch 1 is done: the run is in epoch 2
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.05)
        epoch_time = float((out / "metrics.csv").read_text().splitlines()[1].split(",")[-2])
        time.sleep(epoch_time / 3)  # most likely mid-epoch 2 (an epoch boundary is handled too)
        proc.send_signal(getattr(signal, sig))
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == (130 if sig == "SIGINT" else 143), stderr
    assert f"reslab train --resume {out}" in stderr
    assert "Traceback" not in stderr
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["epoch"] >= 1 and not ckpt["finished"]
    assert ckpt["interrupted"] == sig or ckpt["step"] == 0

    done = subprocess.run(
        [sys.executable, "-m", "reslab", "train", "--resume", str(out), "--progress", "plain"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("test accuracy: ")
    assert "resuming" in done.stderr
    final = load_checkpoint(out / "last.pt")
    assert final["finished"] and final["epoch"] == 3
    assert len((out / "metrics.csv").read_text().strip().splitlines()) == 4


def test_show_data_names_the_split_it_shows(tmp_path, capsys):
    """CIFAR-10 without a held-out validation split has train and test: --split val showed the test images
    labelled "val"."""
    data = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-mini"
    out = tmp_path / "grid.png"
    argv = ["show-data", "--data", "cifar10", "--data-dir", str(data), "-n", "4", "--out", str(out)]
    assert main([*argv, "--split", "val"]) == 0
    captured = capsys.readouterr()
    assert "the cifar10 data set has no val split (its splits: train, test): showing its test split" in captured.err
    assert f"wrote {out} (4 cifar10 test images)" in captured.out
    assert main([*argv, "--split", "test", "--overwrite"]) == 0
    captured = capsys.readouterr()
    assert "no test split" not in captured.err and "(4 cifar10 test images)" in captured.out


@pytest.mark.parametrize(
    ("flags", "match"),
    [
        (["--schedule", "cosine", "--gamma", "0.5"], "--gamma 0.5 applies to --schedule multistep only"),
        (["--schedule", "constant", "--milestones", "1"], "--milestones [1.0] applies to --schedule multistep"),
        (["--schedule", "cosine", "--onecycle-div", "10"], "--onecycle-div 10.0 applies to --schedule onecycle"),
        (["--optimizer", "adam", "--momentum", "0.5"], "--momentum 0.5 applies to --optimizer sgd only"),
        (["--no-ema", "--ema-decay", "0.9"], "--ema-decay 0.9 applies to --ema only"),
    ],
)
def test_a_flag_the_run_would_not_use_is_a_one_line_error(tmp_path, capsys, flags, match):
    _error(capsys, ["train", *TINY, *flags, "--out", str(tmp_path / "run")], match)
    assert not (tmp_path / "run").exists()


def test_freezing_a_random_backbone_is_a_warning_in_the_log(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "1", "--freeze", "backbone", "--no-augment", "-q", "--out", str(out)]) == 0
    warning = "--freeze backbone without --pretrained: the frozen layers keep their random initial weights"
    assert warning in capsys.readouterr().err and warning in (out / "train.log").read_text()


def test_settings_that_the_data_or_the_network_leave_unused_are_warnings_in_the_log(tmp_path, capsys):
    """--aux-weight on a network without auxiliary classifiers and --workers on an in-memory data set ran
    silently and were recorded in config.yaml as if they applied."""
    out = tmp_path / "run"
    assert (
        main(["train", *TINY, "--epochs", "1", "--aux-weight", "0.5", "--workers", "2", "-q", "--out", str(out)]) == 0
    )
    err, log = capsys.readouterr().err, (out / "train.log").read_text()
    for line in (
        "--aux-weight 0.5 is not used: resnet20 has no auxiliary classifiers",
        "--workers 2 is not used: synthetic is held in memory and batched on the device",
    ):
        assert line in err and line in log
    assert main(["train", *TINY, "--epochs", "1", "-q", "--out", str(tmp_path / "plain")]) == 0
    assert "is not used" not in capsys.readouterr().err


def test_an_unknown_recipe_key_is_one_line_with_a_did_you_mean(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("learning_rate: 0.1\n")
    _error(capsys, ["train", *TINY, "--config", str(recipe), "--out", str(tmp_path / "run")], "did you mean lr?")
    from reslab import train

    with pytest.raises(
        ConfigError, match="unknown configuration key 'learning_rate' in the overrides; did you mean lr"
    ):
        train(learning_rate=0.1, out=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_a_replaced_classifier_is_said_in_train_log_and_kept_by_quiet(tmp_path, capsys):
    """Fine-tuning weights of 3 classes on 4: the 'classifier 3 -> 4 classes' line reaches train.log and -q."""
    from reslab.models import build_model

    weights = tmp_path / "three.pth"
    torch.save(build_model("resnet20", 3, 3, widths=[4, 8, 8]).state_dict(), weights)
    out = tmp_path / "run"
    assert main(["train", *TINY, "--pretrained", str(weights), "--epochs", "1", "-q", "--out", str(out)]) == 0
    line = "classifier 3 -> 4 classes"
    err = capsys.readouterr().err
    assert err.count(line) == 1, err
    assert (out / "train.log").read_text().count(line) == 1
