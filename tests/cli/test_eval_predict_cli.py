"""`reslab eval` / `predict` on real files as a user meets them: runs trained here, in tmp_path, on a folder of
images the test writes (audit findings: splits, corrupt checkpoints, top-k naming, data dirs, other formats)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reslab.cli import main
from reslab.training.checkpoint import load_checkpoint, save_checkpoint

from ..data.fakes import make_image_folder
from ..training.test_checkpoint_integrity import NAN32, damage
from ..training.test_other_formats import write_exports

TINY = ["--model", "resnet20", "--model-arg", "widths=[4,8,8]", "--device", "cpu", "--progress", "none", "-q"]
FOLDER = ["--data", "folder", "--image-size", "8", "--batch-size", "4", "--epochs", "1"]


def _error(capsys, argv: list[str], *parts: str) -> str:
    """Run the CLI expecting exit status 2 and one line of error containing every part, no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reslab: error: "), err
    assert all(p in err[0] for p in parts), err[0]
    return err[0]


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory) -> tuple[Path, Path]:
    """A run on an image folder with train/ and val/ and no test/: (the data folder, the run directory)."""
    root = tmp_path_factory.mktemp("eval-cli")
    make_image_folder(root / "d", "train", per_class=3)
    make_image_folder(root / "d", "val", per_class=2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RESLAB_CACHE_DIR", str(root / "cache"))
        assert main(["train", *TINY, *FOLDER, "--data-dir", str(root / "d"), "--out", str(root / "run")]) == 0
    return root / "d", root / "run"


# -- 1. a split the data set does not have -----------------------------------------------------------------
def test_eval_split_test_of_a_folder_without_test_is_refused(folder_run, tmp_path, capsys):
    _, run = folder_run
    ckpt = str(run / "best.pt")
    _error(
        capsys,
        ["eval", "--checkpoint", ckpt, "--split", "test", "--out", str(tmp_path)],
        "has no test split",
        "its splits are train, val",
    )
    assert not list(tmp_path.iterdir())  # no eval_test_* written
    assert main(["eval", "--checkpoint", ckpt, "--out", str(tmp_path)]) == 0  # default: the split it has
    out = capsys.readouterr().out
    assert "data: folder val (n=6)" in out and (tmp_path / "eval_val_confusion.csv").is_file()


def test_eval_split_test_of_a_train_only_folder_is_refused(tmp_path, capsys):
    make_image_folder(tmp_path / "d", None, per_class=4)
    assert main(["train", *TINY, *FOLDER, "--data-dir", str(tmp_path / "d"), "--out", str(tmp_path / "run")]) == 0
    argv = ["eval", "--checkpoint", str(tmp_path / "run"), "--split", "test", "--out", str(tmp_path / "e")]
    _error(capsys, argv, "has no test split", "its splits are train, val")
    assert not (tmp_path / "e").exists()


def test_eval_split_val_of_a_run_without_validation_split_is_refused(tmp_path, capsys):
    synthetic = ["--data", "synthetic", "--data-arg", "num_classes=4", "--data-arg", "num_samples=64"]
    argv = ["train", *TINY, *synthetic, "--image-size", "8", "--batch-size", "32", "--epochs", "1"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    ckpt = str(tmp_path / "run" / "best.pt")
    _error(
        capsys,
        ["eval", "--checkpoint", ckpt, "--split", "val", "--out", str(tmp_path / "e")],
        "has no val split",
        "its splits are train, test: use --split test",
    )
    assert not (tmp_path / "e").exists()
    assert main(["eval", "--checkpoint", ckpt, "--split", "test", "--out", str(tmp_path / "e")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 16


# -- 2. a checkpoint with flipped bytes; outputs that are not finite ---------------------------------------
SYNTHETIC = ["--data", "synthetic", "--data-arg", "num_classes=4", "--data-arg", "num_samples=64", "--image-size", "8"]


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory) -> Path:
    """A run on synthetic 8x8 images, with EMA weights."""
    out = tmp_path_factory.mktemp("eval-cli-synthetic") / "run"
    argv = ["train", *TINY, *SYNTHETIC, "--batch-size", "32", "--epochs", "1", "--ema", "--out", str(out)]
    assert main(argv) == 0
    return out


@pytest.fixture
def image(tmp_path) -> str:
    path = tmp_path / "x.png"
    Image.fromarray((np.random.default_rng(0).random((8, 8, 3)) * 255).astype("uint8")).save(path)
    return str(path)


def test_eval_ema_with_flipped_bytes_in_its_weights_is_refused(synthetic_run, tmp_path, capsys):
    ckpt = tmp_path / "best.pt"
    shutil.copy(synthetic_run / "best.pt", ckpt)
    damage(ckpt, load_checkpoint(ckpt)["ema"]["module"]["fc.weight"])
    _error(
        capsys,
        ["eval", "--checkpoint", str(ckpt), "--ema", "--out", str(tmp_path / "e")],
        f"corrupt checkpoint {ckpt}:",
    )
    assert not (tmp_path / "e").exists()


def test_eval_and_predict_with_nan_bytes_in_the_weights_are_refused(synthetic_run, tmp_path, image, capsys):
    ckpt = tmp_path / "best.pt"
    shutil.copy(synthetic_run / "best.pt", ckpt)
    damage(ckpt, load_checkpoint(ckpt)["model"]["fc.weight"], NAN32)  # what printed "class_2 nan"
    _error(capsys, ["predict", "--checkpoint", str(ckpt), image], f"corrupt checkpoint {ckpt}:", "CRC-32")
    _error(capsys, ["eval", "--checkpoint", str(ckpt), "--out", str(tmp_path / "e")], f"corrupt checkpoint {ckpt}:")
    assert not (tmp_path / "e").exists()


def test_non_finite_outputs_are_an_error_not_a_result(synthetic_run, tmp_path, image, capsys):
    state = load_checkpoint(synthetic_run / "best.pt")
    state["model"]["fc.bias"][1] = float("inf")
    for key in ("path", "format", "version", "torch_version"):
        state.pop(key)
    ckpt = save_checkpoint(state, tmp_path / "inf.pt")  # an intact file holding a non-finite weight
    _error(
        capsys, ["predict", "--checkpoint", str(ckpt), image], f"{ckpt}: the network's output for {image}", "not finite"
    )
    _error(
        capsys,
        ["eval", "--checkpoint", str(ckpt), "--out", str(tmp_path / "e")],
        f"{ckpt}: the network's outputs",
        "not finite",
    )
    assert not (tmp_path / "e").exists()


# -- 3. the top-k figure under its own k ------------------------------------------------------------------
def test_eval_names_top_k_after_k_in_text_and_json(folder_run, tmp_path, capsys):
    _, run = folder_run  # three classes
    assert main(["eval", "--checkpoint", str(run / "best.pt"), "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert set(result) == {"top1", "top3", "loss", "n"} and result["top1"] <= result["top3"] == 1.0
    assert any(" top-3 " in line for line in lines) and not any("top5" in line or "top-5" in line for line in lines)


# -- 4. a run trained with a relative --data-dir, evaluated from another directory ------------------------
def test_eval_from_another_directory_finds_a_relative_data_dir(tmp_path, monkeypatch, capsys):
    proj = tmp_path / "proj"
    make_image_folder(proj / "d", "train", per_class=3)
    make_image_folder(proj / "d", "val", per_class=2)
    monkeypatch.chdir(proj)
    assert main(["train", *TINY, *FOLDER, "--data-dir", "d", "--out", "runs/a"]) == 0
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    ckpt = str(proj / "runs" / "a" / "best.pt")
    assert main(["eval", "--checkpoint", ckpt]) == 0
    assert "data: folder val (n=6)" in capsys.readouterr().out
    (proj / "d").rename(proj / "moved")
    _error(capsys, ["eval", "--checkpoint", ckpt], "the run's data_dir d (relative to", "give --data-dir")
    assert main(["eval", "--checkpoint", ckpt, "--data-dir", str(proj / "moved")]) == 0


# -- 5. --data-dir an existing file that is not an archive ------------------------------------------------
def test_a_data_dir_that_is_an_image_file_says_so(folder_run, tmp_path, capsys):
    data, run = folder_run
    image = str(next((data / "val").rglob("*.png")))
    _error(
        capsys,
        ["eval", "--checkpoint", str(run / "best.pt"), "--data-dir", image],
        f"data dir {image} is a file, not a folder or archive",
    )
    argv = ["train", *TINY, *FOLDER, "--data-dir", image, "--out", str(tmp_path / "run")]
    _error(capsys, argv, f"data dir {image} is a file, not a folder or archive")
    _error(
        capsys,
        ["show-data", "--data", "cifar10", "--data-dir", image, "--out", str(tmp_path / "g.png")],
        "is a file, not a folder",
    )


# -- 6. a file reslab export wrote, given to --checkpoint -------------------------------------------------
def test_predict_and_eval_name_an_exported_files_format(tmp_path, image, capsys):
    files = write_exports(tmp_path)
    for fmt, named, taken_by in (
        ("torchscript", "is a TorchScript file", "torch.jit.load"),
        ("export", "is a torch.export program (.pt2", "torch.export.load"),
        ("onnx", "is an ONNX file", f"reslab predict --onnx {files['onnx']} IMAGE"),
        ("safetensors", "is a safetensors weights file", "--model MODEL --pretrained"),
    ):
        path = str(files[fmt])
        line = _error(capsys, ["predict", "--checkpoint", path, image], f"{path} {named}", taken_by)
        assert "corrupt" not in line
    _error(capsys, ["eval", "--checkpoint", str(files["torchscript"])], "is a TorchScript file")


# -- 7. weights trained on 1-channel images used on RGB data ----------------------------------------------
CIFAR10_MINI = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-mini"


@pytest.mark.skipif(not CIFAR10_MINI.is_dir(), reason="needs the cifar10-mini data")
def test_grey_weights_on_cifar10_name_both_channel_counts_and_the_fix(tmp_path, capsys):
    grey = ["--data", "synthetic", "--data-arg", "num_classes=10", "--data-arg", "num_samples=64"]
    argv = ["train", *TINY, *grey, "--data-arg", "channels=1", "--image-size", "8", "--batch-size", "32"]
    assert main([*argv, "--epochs", "1", "--out", str(tmp_path / "grey")]) == 0
    ckpt = str(tmp_path / "grey" / "best.pt")
    data = ["--data", "cifar10", "--data-dir", str(CIFAR10_MINI), "--out", str(tmp_path / "e")]
    parts = (f"{ckpt} takes 1-channel images, but cifar10 has 3-channel images", f"--pretrained {ckpt} --data cifar10")
    _error(capsys, ["eval", "--model", "resnet20", "--pretrained", ckpt, *data], *parts)
    _error(capsys, ["eval", "--checkpoint", ckpt, *data], *parts)
    assert not (tmp_path / "e").exists()
