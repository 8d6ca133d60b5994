"""Configuration on the command line: shipped recipes by name, the same merge as reslab.train, ~ in
paths, and one-line errors (exit 2) for bad --data-arg / --model-arg keys and bad files or values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import reslab
from reslab.cli import main

from .test_train_cli import TINY, _error


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cfgcli") / "run"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out), "-q"]) == 0
    return out


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--data-arg", "foo=1"], "unknown data_args key 'foo' (--data-arg foo=...) (accepted: "),
        (["--data-arg", "batch_size=4"], "batch_size=...) is a configuration key of its own: use --batch-size"),
        (["--model-arg", "num_classes=5"], "(--model-arg num_classes=...) cannot be overridden: it is set by the data"),
        (["--model-arg", "fo=1"], "resnet20: unknown model_args key 'fo' (--model-arg fo=...)"),
        (["--model-arg", "zero_init_last=maybe"], "zero_init_last=...) must be true or false, got 'maybe'"),
        (["--data-arg", "strict=maybe"], "'strict' (--data-arg strict=...) must be true or false, got 'maybe'"),
    ],
)
def test_bad_model_and_data_args_are_one_line_errors(tmp_path, capsys, extra, match):
    out = tmp_path / "run"
    _error(capsys, ["train", *TINY, *extra, "--out", str(out)], match)
    assert not out.exists()  # refused before anything was written or loaded


def test_maybe_for_a_boolean_in_a_recipe(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("ema: maybe\n")
    _error(capsys, ["train", "--config", str(recipe), *TINY], "ema must be true or false, got 'maybe'")
    recipe.write_text("data_args: {strict: maybe}\n")
    _error(capsys, ["train", "--config", str(recipe), *TINY], "'strict' (--data-arg strict=...) must be true or false")


def test_non_utf8_config_is_a_one_line_error(tmp_path, capsys):
    recipe = tmp_path / "latin1.yaml"
    recipe.write_bytes("# r\xe9glages\nepochs: 2\n".encode("latin-1"))
    _error(capsys, ["train", "--config", str(recipe)], f"configuration file {recipe} is not UTF-8 text")


def test_unknown_recipe_name_lists_the_shipped_ones(capsys):
    _error(capsys, ["train", "--config", "resnet_cifar"], "no shipped recipe of that name; shipped: demo_digits,")


def test_eval_and_show_data_outputs_and_batch_size(run_dir, tmp_path, capsys):
    ckpt = str(run_dir / "best.pt")
    a_file = tmp_path / "taken.txt"
    a_file.write_text("mine")
    _error(capsys, ["eval", "--checkpoint", ckpt, "--out", str(a_file)], f"--out {a_file} is an existing file")
    assert a_file.read_text() == "mine"
    _error(capsys, ["show-data", "--data", "digits", "--out", str(tmp_path)], f"--out {tmp_path} is a directory")
    _error(
        capsys,
        ["show-data", "--data", "digits", "--data-arg", "foo=1", "--out", str(tmp_path / "g.png")],
        "unknown data_args key 'foo'",
    )
    show = ["show-data", "--data", "digits", "-n", "0", "--out", str(tmp_path / "g.png")]
    for argv in (["eval", "--checkpoint", ckpt, "--batch-size", "0"], show):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "expected a whole number >= 1, got '0'" in err[0], err


def test_paper_recipe_by_name_with_one_epoch(tmp_path, capsys):
    """`--config resnet_cifar10 --epochs 1`: the recipe's milestones follow the run (was: an error)."""
    out = tmp_path / "run"
    assert main(["train", "--config", "resnet_cifar10", "--epochs", "1", *TINY, "--out", str(out), "-q"]) == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["schedule"] == "multistep" and config["milestone_fractions"] == [0.5, 0.75]
    assert config["lr"] == 0.1 and config["ema"] is False and config["epochs"] == 1


def test_cli_and_python_resolve_the_same_configuration(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {"epochs": 1, "model_args": {"widths": [4, 4, 8], "zero_init_last": True}, "data_args": {"num_samples": 64}}
        )
    )
    flags = ["--model-arg", "widths=[4,8,8]", "--data-arg", "num_classes=4"]
    common = ["--data", "synthetic", "--image-size", "8", "--batch-size", "32", "--device", "cpu"]
    assert main(["train", "--config", str(recipe), *flags, *common, "--out", str(tmp_path / "cli"), "-q"]) == 0
    reslab.train(
        str(recipe),
        model_args={"widths": [4, 8, 8]},
        data_args={"num_classes": 4},
        data="synthetic",
        image_size=8,
        batch_size=32,
        device="cpu",
        out=str(tmp_path / "py"),
        progress="none",
    )
    cli = yaml.safe_load((tmp_path / "cli" / "config.yaml").read_text())
    py = yaml.safe_load((tmp_path / "py" / "config.yaml").read_text())
    assert cli["model_args"] == {"widths": [4, 8, 8], "zero_init_last": True}
    assert cli["data_args"] == {"num_samples": 64, "num_classes": 4}
    assert {**cli, "out": None} == {**py, "out": None}


def test_tilde_in_data_dir_and_out(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    for cls in ("a", "b"):  # a tiny image-folder data set in ~/pics
        folder = tmp_path / "pics" / cls
        folder.mkdir(parents=True)
        for i in range(6):
            pixels = (np.random.default_rng(i).random((8, 8, 3)) * 255).astype("uint8")
            Image.fromarray(pixels).save(folder / f"{i}.png")
    argv = [
        "train",
        "--model",
        "resnet20",
        "--model-arg",
        "widths=[4,8,8]",
        "--data",
        "folder",
        "--data-dir",
        "~/pics",
        "--image-size",
        "8",
        "--val-split",
        "0.34",
        "--batch-size",
        "4",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--out",
        "~/runs/one",
        "-q",
    ]
    assert main(argv) == 0
    config = yaml.safe_load((tmp_path / "runs" / "one" / "config.yaml").read_text())
    assert config["data_dir"] == str(tmp_path / "pics") and config["out"] == str(tmp_path / "runs" / "one")
    assert main(["eval", "--checkpoint", str(tmp_path / "runs" / "one" / "best.pt"), "--out", "~/evals"]) == 0
    assert list((tmp_path / "evals").glob("eval_*_confusion.csv"))  # not in a directory named "~"


def test_python_evaluate_refuses_a_file_as_its_output_folder(run_dir, tmp_path):
    from reslab import evaluate
    from reslab.errors import ConfigError

    a_file = tmp_path / "taken.txt"
    a_file.write_text("mine")
    with pytest.raises(ConfigError, match=f"out {a_file} is an existing file; it takes a directory"):
        evaluate(run_dir / "best.pt", out=a_file)
    assert a_file.read_text() == "mine"
