"""A checkpoint whose bytes changed since reslab wrote it is refused on load (the CRC-32 of every zip member),
and a network whose outputs are not finite gives an error, never a NaN score or probability."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reslab.errors import CheckpointError
from reslab.training import evaluate, predict
from reslab.training.checkpoint import load_checkpoint, save_checkpoint
from tests.tiny_runs import train_tiny

DATA = dict(data="synthetic", image_size=8, data_args={"num_classes": 4, "num_samples": 64}, batch_size=32)
NAN32 = np.array([np.nan], dtype=np.float32).tobytes()


def damage(path: Path, tensor: torch.Tensor, new: bytes | None = None) -> None:
    """Overwrite the first bytes of ``tensor``'s data where the file stores it (the file keeps its length):
    with ``new``, else each byte flipped."""
    data = bytearray(path.read_bytes())
    raw = tensor.detach().contiguous().numpy().tobytes()
    at = data.find(raw)
    assert at > 0 and data.find(raw, at + 1) == -1, "the tensor's bytes are not found once in the file"
    new = new if new is not None else bytes(b ^ 0x5A for b in raw[:8])
    data[at : at + len(new)] = new
    size = path.stat().st_size
    path.write_bytes(bytes(data))
    assert path.stat().st_size == size


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("integrity") / "run", ema=True, **DATA)


def test_zip_crc_failure_names_the_damaged_member(tmp_path):
    from reslab.checksum import zip_crc_failure

    buffer = io.BytesIO()
    weights = torch.arange(64, dtype=torch.float32)
    torch.save({"w": weights}, buffer)
    path = tmp_path / "w.pt"
    path.write_bytes(buffer.getvalue())
    assert zip_crc_failure(path) is None
    damage(path, weights)
    assert "archive/data/0" in zip_crc_failure(path) and "CRC" in zip_crc_failure(path)
    (tmp_path / "plain.bin").write_bytes(b"not a zip")
    assert zip_crc_failure(tmp_path / "plain.bin") is None  # not judged here: the reader says what it is


def test_flipped_bytes_in_the_ema_weights_are_refused(run, tmp_path):
    ckpt = tmp_path / "best.pt"
    shutil.copy(run / "best.pt", ckpt)
    damage(ckpt, load_checkpoint(ckpt)["ema"]["module"]["fc.weight"])
    with pytest.raises(CheckpointError, match=rf"^corrupt checkpoint {ckpt}: archive/data/\d+ .*CRC"):
        load_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match="corrupt checkpoint"):
        evaluate(ckpt, ema=True, out=tmp_path / "eval")
    assert not (tmp_path / "eval").exists()


def test_nan_weights_give_an_error_not_a_nan_result(run, tmp_path):
    """Non-finite weights saved as such (the file is intact): eval and predict name the checkpoint."""
    state = load_checkpoint(run / "best.pt")
    state["model"]["fc.weight"][0, 0] = float("nan")
    for key in ("path", "format", "version", "torch_version"):
        state.pop(key)
    ckpt = save_checkpoint(state, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match=rf"{ckpt}: the network's outputs on synthetic test are not finite"):
        evaluate(ckpt, out=tmp_path / "eval")
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(image)
    with pytest.raises(CheckpointError, match=rf"{ckpt}: the network's output for {image} is not finite"):
        predict(ckpt, [image])


def test_flipped_bytes_in_a_weights_file_are_refused(run, tmp_path):
    """--pretrained FILE reads a PyTorch file through the weights layouts: the same check."""
    from reslab.weights.layouts import read_weights

    weights = tmp_path / "w.pt"
    shutil.copy(run / "best.pt", weights)
    damage(weights, load_checkpoint(weights)["model"]["fc.weight"])
    with pytest.raises(CheckpointError, match=rf"^corrupt weights file {weights}: archive/data/\d+ .*CRC"):
        read_weights(weights)
