"""16-bit greyscale images (Pillow modes I;16, I;16B, I): scaled to 8 bits, never clipped to white."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from reslab.cli import main
from reslab.data import build_data, preprocess_image
from reslab.data.transforms import open_image
from reslab.errors import DataError
from tests.tiny_runs import train_tiny

#: what a correct 8-bit conversion of :func:`gradient16` gives: 0, 1, ..., 255 row by row
EXPECTED = np.arange(256, dtype=np.uint8).reshape(16, 16)


def gradient16() -> np.ndarray:
    """16x16 uint16 values whose top byte is 0..255 (the low byte is all ones: a shift must drop it)."""
    return EXPECTED.astype(np.uint16) * 256 + 255


def write_png16(path, array=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gradient16() if array is None else array).save(path)
    with Image.open(path) as img:
        assert img.mode == "I;16"  # a real 16-bit PNG on disk


def test_16_bit_png_decodes_to_its_top_byte(tmp_path):
    path = tmp_path / "g.png"
    write_png16(path)
    grey = np.asarray(open_image(path, "L"))
    assert grey.dtype == np.uint8 and np.array_equal(grey, EXPECTED)
    rgb = np.asarray(open_image(path, "RGB"))
    assert np.array_equal(rgb, np.repeat(EXPECTED[:, :, None], 3, axis=2))


def test_big_endian_and_int32_modes(tmp_path):
    big = Image.frombytes("I;16B", (16, 16), gradient16().astype(">u2").tobytes())
    x = preprocess_image(big, _info(1))[0, 0] * 0.5 + 0.5  # un-normalised to [0, 1]
    assert torch.equal((x * 255).round().to(torch.uint8), torch.from_numpy(EXPECTED))
    # 16-bit PGM files open as mode "I"
    pgm = tmp_path / "g.pgm"
    pgm.write_bytes(b"P5 16 16 65535\n" + gradient16().astype(">u2").tobytes())
    with Image.open(pgm) as img:
        assert img.mode == "I"
    assert np.array_equal(np.asarray(open_image(pgm, "L")), EXPECTED)
    # values beyond 16 bits have no known range: an error naming the file, not a clipped image
    wide = tmp_path / "wide.tif"
    Image.fromarray(np.full((4, 4), 1 << 20, dtype=np.int32)).save(wide)
    with pytest.raises(DataError, match="wide.tif.*65535"):
        open_image(wide, "L")


def _info(channels: int) -> dict:
    return {"input_size": [channels, 16, 16], "mean": [0.5] * channels, "std": [0.5] * channels, "resize": 16}


def test_folder_loader_and_show_data(tmp_path):
    for split, n in (("train", 2), ("val", 1)):
        for cls in ("a", "b"):
            for i in range(n):
                write_png16(tmp_path / "d" / split / cls / f"{i}.png")
    b = build_data("folder", tmp_path / "d", image_size=16, channels=1, augment=False, batch_size=4)
    x, _ = next(iter(b.val))
    pixels = (x * torch.tensor(b.std).view(1, -1, 1, 1) + torch.tensor(b.mean).view(1, -1, 1, 1)) * 255
    # small images are evaluated whole: exactly the gradient's top bytes, not all white (255)
    assert torch.equal(pixels.round().to(torch.uint8)[0, 0], torch.from_numpy(EXPECTED))
    per_sample = build_data("folder", tmp_path / "d", image_size=16, channels=1, augment=False, cache=False)
    assert torch.allclose(next(iter(per_sample.val))[0], x)

    grid = tmp_path / "grid.png"
    argv = [
        "show-data",
        "--data",
        "folder",
        "--data-dir",
        str(tmp_path / "d"),
        "--out",
        str(grid),
        "--split",
        "val",
        "--image-size",
        "16",
        "--data-arg",
        "channels=1",
        "-n",
        "2",
    ]
    assert main(argv) == 0
    tile = np.asarray(Image.open(grid).convert("L"))[2 : 2 + 64, 2 : 2 + 64]  # the first image, 4x enlarged
    assert tile.min() < 20 and tile.max() > 235 and tile.std() > 50


def test_predict_sees_the_16_bit_image_as_its_8_bit_equivalent(tmp_path):
    from reslab.training import predict

    for split, n in (("train", 3), ("val", 1)):
        for c, cls in enumerate(("dark", "light")):
            for i in range(n):
                Image.fromarray(np.full((16, 16), 40 + 170 * c + i, dtype=np.uint8)).save(
                    _mk(tmp_path / "d" / split / cls / f"{i}.png")
                )
    run = train_tiny(
        tmp_path / "run",
        data="folder",
        data_dir=str(tmp_path / "d"),
        data_args={"channels": 1},
        image_size=16,
        batch_size=4,
    )
    write_png16(tmp_path / "g16.png")
    Image.fromarray(EXPECTED).save(tmp_path / "g8.png")
    p16, p8 = predict(run, [tmp_path / "g16.png", tmp_path / "g8.png"], topk=2)
    assert [c for c, _ in p16] == [c for c, _ in p8]
    assert [p for _, p in p16] == pytest.approx([p for _, p in p8], abs=1e-6)


def _mk(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
