"""`reslab predict --batch-size N` and `reslab predict --onnx`: the same answers as one image at a time in
PyTorch, on real image files; one-line errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reslab.cli import main
from reslab.errors import DataError
from reslab.training import predict
from reslab.training.checkpoint import load_checkpoint, model_from_checkpoint

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'reslab[export]')")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'reslab[export]')")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install 'reslab[export]')")

from reslab.export import ExportOptions, export_onnx, preprocessing_dict  # noqa: E402
from reslab.export.onnx_predict import predict_onnx  # noqa: E402

CIFAR = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10-mini" / "cifar-10-batches-py"
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
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reslab: error: ") and match in err[0], err
    return err[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained checkpoint, its ONNX export, and image files: CIFAR-10 test images (PNG and JPEG) where
    the data is here, plus photos of other sizes and aspect ratios (the resize and crop matter)."""
    root = tmp_path_factory.mktemp("predict")
    assert main(["train", *TINY, "--epochs", "1", "--out", str(root / "run"), "-q"]) == 0
    ckpt_path = root / "run" / "best.pt"
    ckpt = load_checkpoint(ckpt_path)
    net = model_from_checkpoint(ckpt).eval()
    info = ckpt["data_info"]
    onnx_path, _ = export_onnx(
        net,
        root / "tiny.onnx",
        ExportOptions(
            input_size=tuple(info["input_size"]),
            class_names=list(ckpt["class_names"]),
            preprocessing=preprocessing_dict(info),
            model_name="resnet20",
            model_args={"widths": [4, 8, 8]},
        ),
    )
    images = []
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(12, 10), (40, 64), (9, 9)]):
        path = root / f"photo{i}.png"
        Image.fromarray((rng.random((h, w, 3)) * 255).astype("uint8")).save(path)
        images.append(str(path))
    if (CIFAR / "test_batch").is_file():
        with open(CIFAR / "test_batch", "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        for i in range(4):
            arr = batch[b"data"][i].reshape(3, 32, 32).transpose(1, 2, 0)
            path = root / f"cifar{i}.{'png' if i % 2 else 'jpg'}"
            Image.fromarray(arr).save(path)
            images.append(str(path))
    return ckpt_path, onnx_path, images


def test_real_cifar_files_present():
    if not (CIFAR / "test_batch").is_file():
        pytest.skip(f"real CIFAR-10 images not here ({CIFAR}); only generated photos are used")


def _same(a, b, tol):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert [n for n, _ in x] == [n for n, _ in y]
        assert max(abs(p - q) for (_, p), (_, q) in zip(x, y)) <= tol


def test_batched_predict_equals_one_at_a_time(trained):
    ckpt, _, images = trained
    one = predict(ckpt, images, topk=4, device="cpu")
    for batch in (2, 3, 64):
        _same(predict(ckpt, images, topk=4, device="cpu", batch_size=batch), one, 1e-6)


def test_batched_predict_keeps_unreadable_images_in_place(trained, tmp_path):
    ckpt, _, images = trained
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    mixed = [images[0], str(bad), *images[1:]]
    got = predict(ckpt, mixed, topk=2, device="cpu", on_error="skip", batch_size=2)
    assert isinstance(got[1], DataError) and "bad.png" in str(got[1])
    _same([got[0], *got[2:]], predict(ckpt, images, topk=2, device="cpu"), 1e-6)


def test_onnx_predict_equals_pytorch(trained):
    ckpt, onnx_path, images = trained
    expected = predict(ckpt, images, topk=4, device="cpu")
    for batch in (1, 3):
        _same(predict_onnx(onnx_path, images, topk=4, batch_size=batch), expected, 1e-4)


def _json_lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]


def test_cli_onnx_and_batch_size_equal_checkpoint(trained, capsys):
    ckpt, onnx_path, images = trained
    assert main(["predict", "--checkpoint", str(ckpt), *images, "--topk", "3", "--json"]) == 0
    expected = _json_lines(capsys)
    assert main(["predict", "--checkpoint", str(ckpt), *images, "--topk", "3", "--json", "--batch-size", "4"]) == 0
    batched = _json_lines(capsys)
    assert main(["predict", "--onnx", str(onnx_path), *images, "--topk", "3", "--json", "--batch-size", "2"]) == 0
    from_onnx = _json_lines(capsys)
    assert len(expected) == len(images)
    for e, b, o in zip(expected, batched, from_onnx):
        assert e["image"] == b["image"] == o["image"]
        assert [t["class"] for t in e["top"]] == [t["class"] for t in b["top"]] == [t["class"] for t in o["top"]]
        for te, tb, to in zip(e["top"], b["top"], o["top"]):
            assert abs(te["probability"] - tb["probability"]) <= 1e-6
            assert abs(te["probability"] - to["probability"]) <= 1e-4


def test_onnx_errors_are_one_line(trained, tmp_path, capsys):
    ckpt, onnx_path, images = trained
    _error(capsys, ["predict", "--onnx", str(tmp_path / "missing.onnx"), images[0]], "missing.onnx not found")
    text = tmp_path / "notes.onnx"
    text.write_text("hello, not a model")
    _error(capsys, ["predict", "--onnx", str(text), images[0]], "notes.onnx is not an ONNX model")
    # a valid ONNX graph that reslab did not write: no metadata to preprocess with
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["logits"])],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(foreign))
    _error(capsys, ["predict", "--onnx", str(foreign), images[0]], "foreign.onnx has no reslab metadata")
    _error(
        capsys,
        ["predict", "--onnx", str(onnx_path), "--checkpoint", str(ckpt), images[0]],
        "holds its own weights and metadata; drop --checkpoint",
    )
    _error(capsys, ["predict", "--onnx", str(onnx_path), "--device", "cuda", images[0]], "runs on the CPU")
    # an unreadable image among good ones: named on stderr, the others classified, exit status 1
    assert main(["predict", "--onnx", str(onnx_path), images[0], str(tmp_path / "nope.png")]) == 1
    captured = capsys.readouterr()
    assert "nope.png" in captured.err and captured.out.startswith(images[0])


def test_batch_size_must_be_positive(trained, capsys):
    ckpt, _, images = trained
    assert main_exit(["predict", "--checkpoint", str(ckpt), images[0], "--batch-size", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--batch-size" in err[0] and "expected a whole number >= 1, got '0'" in err[0]


def main_exit(argv: list[str]) -> int:
    """argparse's own errors exit (SystemExit) rather than return."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    return int(e.value.code)


def test_onnx_metadata_matches_the_checkpoint(trained):
    """The ONNX file carries the class names and preprocessing predict used (read back, not re-derived)."""
    from reslab.export import read_onnx_metadata

    ckpt, onnx_path, _ = trained
    meta = read_onnx_metadata(onnx_path)
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert meta["class_names"] == list(saved["class_names"])
    assert meta["preprocessing"]["input_size"] == list(saved["data_info"]["input_size"])
