"""The library's evaluate() and predict(): rebuilt from the checkpoint alone."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reslab.errors import CheckpointError, ConfigError
from reslab.training import evaluate, predict, train

DATA = dict(data="synthetic", image_size=8, data_args={"num_classes": 4, "num_samples": 128}, batch_size=32)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "run"
    train(model="resnet20", model_args={"widths": [4, 8, 8]}, epochs=1, ema=True, device="cpu", out=str(out),
          progress="none", **DATA)  # fmt: skip
    return out


def test_evaluate_from_checkpoint_alone(run, tmp_path):
    result = evaluate(run / "best.pt", out=tmp_path)
    assert result.n == 32 and result.split == "test" and result.data == "synthetic"
    assert result.metrics.confusion.sum() == 32 and len(result.per_class()) == 4
    assert set(result.files) == {"confusion_csv", "confusion_png", "per_class_csv"}
    ema = evaluate(run, split="val", ema=True, out=tmp_path)  # a run directory: its best.pt
    assert ema.n == 32 and 0 <= ema.top1 <= 1
    train_split = evaluate(run / "last.pt", split="train", out=tmp_path)
    assert train_split.n == 128
    with pytest.raises(ConfigError, match="split"):
        evaluate(run / "last.pt", split="holdout")


def test_evaluate_ema_needs_ema_weights(tmp_path):
    out = tmp_path / "run"
    train(model="resnet20", model_args={"widths": [4, 8, 8]}, epochs=1, device="cpu", out=str(out), ema=False,
          progress="none", **DATA)  # fmt: skip
    with pytest.raises(CheckpointError, match="no EMA weights"):
        evaluate(out / "last.pt", ema=True, out=tmp_path)


def test_predict_paths_and_pil_images(run, tmp_path):
    img = Image.fromarray((np.random.default_rng(0).random((8, 8, 3)) * 255).astype("uint8"))
    path = tmp_path / "x.png"
    img.save(path)
    results = predict(run / "best.pt", [path, img], topk=2)
    assert len(results) == 2 and all(len(r) == 2 for r in results)
    # the same image, as a file and as a PIL image
    assert [c for c, _ in results[0]] == [c for c, _ in results[1]]
    assert [p for _, p in results[0]] == pytest.approx([p for _, p in results[1]])
    assert {name for name, _ in results[0]} <= {f"class_{i}" for i in range(4)}
    with pytest.raises(ConfigError, match="topk"):
        predict(run / "best.pt", [path], topk=0)
