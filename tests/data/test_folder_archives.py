"""Image folders read from .zip / .tar / .tar.gz archives, the array cache, and degenerate folders."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reslab.cli import main
from reslab.data import build_data
from reslab.data.sources.files import open_tree
from reslab.data.sources.folder import resolve_layout
from reslab.errors import ConfigError, DataError

from .fakes import FOLDER_COLOURS, make_image_folder, write_image

CIFAR10_JPEG = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cifar10-jpeg" / "train.zip"


def _epoch(loader):
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


def _zip_dir(source: Path, path: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for file in sorted(source.rglob("*")):
            if file.is_file():
                zf.write(file, prefix + file.relative_to(source).as_posix())
    return path


def _tar_dir(source: Path, path: Path, mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        for file in sorted(source.rglob("*")):
            if file.is_file():
                tar.add(file, file.relative_to(source).as_posix())
    return path


@pytest.fixture
def split_tree(tmp_path):
    """A directory with train/ and val/ (3 colour classes, 20x16 images)."""
    root = tmp_path / "photos"
    make_image_folder(root, "train", per_class=4)
    make_image_folder(root, "val", per_class=2)
    return root


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz", "zip-wrapped"])
@pytest.mark.parametrize("cache", [False, True])
def test_archives_give_the_directory_s_data(split_tree, tmp_path, kind, cache):
    if kind == "zip":
        archive = _zip_dir(split_tree, tmp_path / "photos.zip")
    elif kind == "zip-wrapped":  # `zip -r photos.zip photos/`: one folder at the top
        archive = _zip_dir(split_tree, tmp_path / "photos.zip", prefix="photos/")
    elif kind == "tar":
        archive = _tar_dir(split_tree, tmp_path / "photos.tar")
    else:
        archive = _tar_dir(split_tree, tmp_path / "photos.tar.gz", "w:gz")
    kw = dict(image_size=12, batch_size=5, augment=False)
    want = build_data("folder", split_tree, cache=False, **kw)
    if kind == "tar.gz" and not cache:
        with pytest.raises(DataError, match="compressed tar.*cache=true"):
            build_data("folder", archive, cache=False, **kw)
        return
    got = build_data("folder", archive, cache=cache, **kw)
    assert got.class_names == sorted(FOLDER_COLOURS) and got.train.num_samples == 12 and got.val.num_samples == 6
    for split in ("train", "val"):
        (wx, wy), (gx, gy) = _epoch(want.loader(split)), _epoch(got.loader(split))
        assert torch.equal(wy, gy) and torch.allclose(wx, gx, atol=1e-6)
    assert any(("array cache" if cache else "per-sample") in note for note in got.notes)


def test_classes_at_the_top_of_a_zip_and_workers(tmp_path):
    make_image_folder(tmp_path / "flat", None, per_class=5)
    archive = _zip_dir(tmp_path / "flat", tmp_path / "flat.zip")
    b = build_data("folder", archive, image_size=8, batch_size=4, cache=False, workers=2, seed=3)
    assert b.train.num_samples == 12 and b.val.num_samples == 3
    one = build_data("folder", archive, image_size=8, batch_size=4, cache=False, workers=0, seed=3)
    # each worker process opens its own handle of the archive and decodes the same bytes
    assert torch.equal(_epoch(b.train)[0], _epoch(one.train)[0])
    tar = build_data("folder", _tar_dir(tmp_path / "flat", tmp_path / "flat.tar"), image_size=8, cache=False)
    assert tar.class_names == one.class_names and torch.equal(_epoch(tar.val)[0], _epoch(one.val)[0])


def _evil_zip(path: Path, name: str, *, symlink: bool = False) -> Path:
    good = io.BytesIO()
    Image.new("RGB", (4, 4)).save(good, format="PNG")
    with zipfile.ZipFile(path, "w") as zf:
        for cls in ("a", "b"):
            zf.writestr(f"{cls}/0.png", good.getvalue())
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = 0o120777 << 16  # a symbolic link
        zf.writestr(info, good.getvalue() if not symlink else "/etc/passwd")
    return path


def _evil_tar(path: Path, member: tarfile.TarInfo) -> Path:
    good = io.BytesIO()
    Image.new("RGB", (4, 4)).save(good, format="PNG")
    with tarfile.open(path, "w") as tar:
        for cls in ("a", "b"):
            info = tarfile.TarInfo(f"{cls}/0.png")
            info.size = len(good.getvalue())
            tar.addfile(info, io.BytesIO(good.getvalue()))
        tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return path


def _link(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return info


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 1
    return info


@pytest.mark.parametrize(
    "make, member",
    [
        (lambda p: _evil_zip(p / "e.zip", "../escape.png"), "../escape.png"),
        (lambda p: _evil_zip(p / "e.zip", "/abs/x.png"), "/abs/x.png"),
        (lambda p: _evil_zip(p / "e.zip", "a/link.png", symlink=True), "a/link.png"),
        (lambda p: _evil_tar(p / "e.tar", _file("a/../../escape.png")), "a/../../escape.png"),
        (lambda p: _evil_tar(p / "e.tar", _link("b/link.png")), "b/link.png"),
    ],
)
def test_unsafe_members_refuse_the_archive(tmp_path, capsys, make, member):
    archive = make(tmp_path)
    with pytest.raises(DataError, match="refusing to read") as err:
        build_data("folder", archive, image_size=4)
    assert repr(member) in str(err.value) and "\n" not in str(err.value)
    argv = ["show-data", "--data", "folder", "--data-dir", str(archive), "--out", str(tmp_path / "g.png")]
    assert main(argv) == 2
    assert repr(member) in capsys.readouterr().err


def _notes(bundle) -> str:
    return " | ".join(bundle.notes)


def test_array_cache_miss_hit_and_rebuild_on_change(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("RESLAB_CACHE_DIR", str(cache))
    make_image_folder(tmp_path / "d", None, per_class=4)
    first = build_data("folder", tmp_path / "d", image_size=8)
    assert "array cache built, 12 images" in _notes(first)
    entries = sorted(p.name for p in cache.iterdir())
    assert len(entries) == 2 and entries[0].endswith(".json") and entries[1].endswith(".npy")
    again = build_data("folder", tmp_path / "d", image_size=8)
    assert "array cache hit, 12 images" in _notes(again)
    assert torch.equal(_epoch(first.loader("train"))[0], _epoch(again.loader("train"))[0])
    # a changed image: rebuilt, and the stale entry of this folder is replaced, not kept
    path = tmp_path / "d" / "cat" / "0.png"
    write_image(path, (0, 0, 0))
    os.utime(path, ns=(1, 1))
    changed = build_data("folder", tmp_path / "d", image_size=8)
    assert "array cache built" in _notes(changed) and len(list(cache.iterdir())) == 2
    assert not torch.equal(_epoch(first.loader("train"))[0], _epoch(changed.loader("train"))[0])
    # other decoding options: another entry
    grey = build_data("folder", tmp_path / "d", image_size=8, channels=1)
    assert "array cache built" in _notes(grey) and grey.input_size == (1, 8, 8)
    # an unreadable entry is rebuilt, not trusted
    for npy in cache.glob("*.npy"):
        npy.write_bytes(b"garbage")
    assert "array cache built" in _notes(build_data("folder", tmp_path / "d", image_size=8, channels=1))


def test_cached_training_uses_array_augmentation(tmp_path):
    make_image_folder(tmp_path / "d", None, per_class=4)
    b = build_data("folder", tmp_path / "d", image_size=16, batch_size=4, seed=1)
    assert type(b.train).__name__ == "DeviceLoader" and b.train.augment.crop_padding == 2 and b.train.augment.flip
    b.train.set_epoch(1)
    a = _epoch(b.train)
    b.train.set_epoch(1)
    assert torch.equal(a[0], _epoch(b.train)[0])
    photos = build_data("folder", tmp_path / "d", image_size=96, batch_size=4)
    assert type(photos.train).__name__ == "FolderLoader" and "per-sample" in _notes(photos)
    assert photos.info["resize"] == 110  # larger images: the ImageNet 0.875 centre crop
    with pytest.raises(ConfigError, match="cache"):
        build_data("folder", tmp_path / "d", cache="maybe")


# -- degenerate folders (issue 7 item 12) ---------------------------------------------------------------
def test_empty_validation_folder_and_empty_held_out_split(tmp_path, capsys):
    make_image_folder(tmp_path / "a", "train", per_class=3)
    (tmp_path / "a" / "val").mkdir()
    with pytest.raises(DataError, match=r"val split .*val is empty"):
        build_data("folder", tmp_path / "a")
    (tmp_path / "a" / "val" / "cat").mkdir()  # class folders, but no images
    with pytest.raises(DataError, match="is empty"):
        build_data("folder", tmp_path / "a")
    make_image_folder(tmp_path / "b", None, per_class=1)
    with pytest.raises(DataError, match="held-out validation split .* is empty: every class has fewer than 2"):
        build_data("folder", tmp_path / "b")
    argv = [
        "train",
        "--model",
        "resnet20",
        "--data",
        "folder",
        "--data-dir",
        str(tmp_path / "b"),
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "run"),
        "--device",
        "cpu",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("reslab: error: ") and "empty" in err[-1] and "Traceback" not in "".join(err)


def test_one_class_is_refused(tmp_path, capsys):
    make_image_folder(tmp_path / "d", "train", per_class=3)
    for name in ("dog", "emu"):
        for f in (tmp_path / "d" / "train" / name).iterdir():
            f.unlink()
        (tmp_path / "d" / "train" / name).rmdir()
    with pytest.raises(DataError, match=r"one class folder \(cat\): a classifier needs at least two"):
        build_data("folder", tmp_path / "d")
    argv = [
        "train",
        "--model",
        "resnet20",
        "--data",
        "folder",
        "--data-dir",
        str(tmp_path / "d"),
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "run"),
        "--device",
        "cpu",
    ]
    assert main(argv) == 2
    assert "at least two classes" in capsys.readouterr().err


# -- the image size follows the model, else the images (issue 7 item 13) -------------------------------
def _cifar_like(root: Path, size: int = 32, per_class: int = 6) -> None:
    for c, (name, colour) in enumerate(FOLDER_COLOURS.items()):
        for i in range(per_class):
            write_image(root / name / f"{i}.png", colour, size=(size, size), noise_seed=10 * c + i)


def test_train_on_32px_pngs_trains_at_the_model_s_32(tmp_path):
    from reslab.training.api import _build_data
    from reslab.training.checkpoint import load_checkpoint
    from reslab.training.config import resolve_config

    _cifar_like(tmp_path / "d")
    out = tmp_path / "run"
    argv = [
        "train",
        "--model",
        "resnet20",
        "--model-arg",
        "widths=[4,8,8]",
        "--data",
        "folder",
        "--data-dir",
        str(tmp_path / "d"),
        "--epochs",
        "1",
        "--batch-size",
        "6",
        "--out",
        str(out),
        "--device",
        "cpu",
        "-q",
    ]
    assert main(argv) == 0
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["data_info"]["input_size"] == [3, 32, 32]
    bundle = _build_data(resolve_config(model="resnet20", data="folder", data_dir=str(tmp_path / "d")), "cpu")
    assert bundle.input_size == (3, 32, 32)
    assert "image size 32x32: the input size registered for model resnet20" in _notes(bundle)
    assert "array cache" in _notes(bundle)
    big = _build_data(resolve_config(model="resnet50", data="folder", data_dir=str(tmp_path / "d")), "cpu")
    assert big.input_size == (3, 224, 224) and "registered for model resnet50" in _notes(big)
    # eval rebuilds the data at the size the run trained at
    assert main(["eval", "--checkpoint", str(out / "last.pt"), "--out", str(tmp_path)]) == 0


def test_without_a_model_the_images_decide(tmp_path):
    _cifar_like(tmp_path / "same", size=24)
    b = build_data("folder", tmp_path / "same")
    assert b.input_size == (3, 24, 24) and "every image is 24x24" in _notes(b)
    _cifar_like(tmp_path / "mixed", size=24)
    write_image(tmp_path / "mixed" / "cat" / "big.png", (1, 2, 3), size=(50, 40))
    m = build_data("folder", tmp_path / "mixed")
    assert m.input_size == (3, 224, 224) and "differ in size" in _notes(m)
    grid = tmp_path / "grid.png"
    assert (
        main(
            [
                "show-data",
                "--data",
                "folder",
                "--data-dir",
                str(tmp_path / "same"),
                "--out",
                str(grid),
                "-n",
                "4",
                "--no-augment",
            ]
        )
        == 0
    )
    assert Image.open(grid).size[0] == 4 * (72 + 2) + 2  # 24 px tiles, enlarged 3x


def test_cli_trains_on_a_zip(tmp_path):
    _cifar_like(tmp_path / "d", size=16, per_class=5)
    archive = _zip_dir(tmp_path / "d", tmp_path / "d.zip")
    out = tmp_path / "run"
    argv = [
        "train",
        "--model",
        "resnet20",
        "--model-arg",
        "widths=[4,8,8]",
        "--data",
        "folder",
        "--data-dir",
        str(archive),
        "--image-size",
        "16",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--out",
        str(out),
        "--device",
        "cpu",
        "-q",
    ]
    assert main(argv) == 0 and (out / "last.pt").exists()


def test_real_cifar10_jpeg_archive_listing():
    """Only the zip's directory is read (no image is decoded): fast."""
    if not CIFAR10_JPEG.is_file():
        pytest.skip(f"real CIFAR-10 JPEG archive not found at {CIFAR10_JPEG.resolve()}")
    tree = open_tree(CIFAR10_JPEG)
    layout = resolve_layout(tree)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert tree.kind == "zip" and layout.class_names == names
    assert list(layout.splits) == ["train"] and len(layout.splits["train"]) == 50_000
    counts = np.bincount([label for _, label in layout.splits["train"]])
    assert counts.tolist() == [5000] * 10
    first = layout.splits["train"][0][0]
    assert first == "airplane/0000.jpg" and Image.open(tree.open(first)).size == (32, 32)


def test_show_data_prints_the_chosen_size_and_loading_path(tmp_path, capsys):
    make_image_folder(tmp_path / "d", None, per_class=4)  # the fakes' images share one small size
    argv = [
        "show-data",
        "--data",
        "folder",
        "--data-dir",
        str(tmp_path / "d"),
        "--out",
        str(tmp_path / "g.png"),
        "-n",
        "4",
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "image size 16x16: every image is 20x16" in err
    assert "array cache built" in err
