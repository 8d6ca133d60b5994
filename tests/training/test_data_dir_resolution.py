"""A run trained with a relative data_dir, evaluated from another directory: the data dir is taken from where the
run was trained (recorded as ``cwd``; worked out from a relative ``out`` for checkpoints written before)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reslab.errors import DataError
from reslab.training import evaluate, train
from tests.tiny_runs import tiny_options

from ..data.fakes import make_image_folder

TINY = tiny_options()


def test_training_cwd_recorded_or_worked_out_from_a_relative_out(tmp_path):
    from reslab.training.loading import training_cwd

    assert training_cwd({"cwd": "/home/u/proj"}) == Path("/home/u/proj")
    ckpt = {"config": {"out": "runs/a"}, "path": str(tmp_path / "proj" / "runs" / "a" / "best.pt")}
    assert training_cwd(ckpt) == (tmp_path / "proj").resolve()
    assert training_cwd({"config": {"out": "runs/b"}, "path": str(tmp_path / "runs" / "a" / "best.pt")}) is None
    assert training_cwd({"config": {"out": str(tmp_path / "a")}, "path": str(tmp_path / "a" / "best.pt")}) is None


def test_a_relative_data_dir_is_resolved_where_the_run_was_trained(tmp_path):
    from reslab.training.loading import training_data_dir

    (tmp_path / "proj" / "d").mkdir(parents=True)
    ckpt = {"cwd": str(tmp_path / "proj"), "config": {"data_dir": "d"}}
    assert training_data_dir(ckpt)[0] == str(tmp_path / "proj" / "d")
    gone = {"cwd": str(tmp_path / "proj"), "config": {"data_dir": "e"}}
    where = f"relative to {tmp_path / 'proj'}, where it was trained, and to the current directory"
    assert training_data_dir(gone) == ("e", f"the run's data_dir e ({where})")
    assert training_data_dir({"config": {"data_dir": "/abs/d"}})[0] == "/abs/d"


@pytest.fixture
def relative_run(tmp_path, monkeypatch) -> Path:
    """A run trained from tmp_path/proj with data_dir "d" and out "runs/a" (both relative); the cwd is then
    tmp_path/elsewhere."""
    proj = tmp_path / "proj"
    make_image_folder(proj / "d", "train", per_class=3)
    make_image_folder(proj / "d", "val", per_class=2)
    monkeypatch.chdir(proj)
    train(data="folder", data_dir="d", image_size=8, batch_size=4, out="runs/a", **TINY)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return proj / "runs" / "a"


def test_evaluate_from_another_directory_finds_the_runs_data(relative_run, tmp_path):
    assert torch.load(relative_run / "best.pt", weights_only=True)["cwd"] == str(tmp_path / "proj")
    result = evaluate(relative_run / "best.pt", out=tmp_path / "e")
    assert result.n == 6 and result.data == "folder"


def test_a_checkpoint_without_cwd_uses_its_relative_out(relative_run, tmp_path):
    """Checkpoints written before reslab recorded ``cwd``: worked out from ``runs/a`` and where the file is."""
    old = relative_run / "best.pt"
    state = torch.load(old, weights_only=True)
    state.pop("cwd", None)
    torch.save(state, old)
    assert evaluate(old, out=tmp_path / "e").n == 6


def test_data_that_moved_says_give_data_dir(relative_run, tmp_path):
    (tmp_path / "proj" / "d").rename(tmp_path / "proj" / "moved")
    with pytest.raises(
        DataError, match=r"the run's data_dir d \(relative to .*proj.*\) was not found: give --data-dir"
    ):
        evaluate(relative_run / "best.pt", out=tmp_path / "e")
