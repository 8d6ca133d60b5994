"""Loading what to look at: checkpoints and registry models, with predict's preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reslab.errors import CheckpointError, ConfigError, DataError
from reslab.training import predict
from reslab.visualize import display_image, gradcam, load_model


def test_checkpoint_model_and_image_as_predict_sees_them(tiny_run, png):
    loaded = load_model(tiny_run)  # a run directory: its best.pt, as predict
    assert loaded.model_name == "resnet20" and loaded.source.endswith("best.pt")
    assert loaded.class_names == [f"class_{i}" for i in range(4)] and not loaded.net.training
    x = loaded.image(png)
    assert x.shape == (1, 3, 8, 8)
    with torch.no_grad():
        probs = torch.softmax(loaded.net(x), 1)[0]
    (name, p), *_ = predict(tiny_run / "best.pt", [png], topk=1)[0]
    assert loaded.class_names[int(probs.argmax())] == name and float(probs.max()) == pytest.approx(p, rel=1e-5)
    # the normalisation undone gives back the PNG's pixels
    pixels = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(png), dtype=np.float32) / 255
    np.testing.assert_allclose(display_image(x, loaded.info), pixels, atol=1e-5)
    assert gradcam(loaded.net, x, target=loaded.class_index("class_2")).shape == (8, 8)


def test_untrained_registry_model():
    loaded = load_model(model="lenet5")
    assert loaded.info["input_size"] == [1, 32, 32] and "untrained" in loaded.source
    assert loaded.class_names == [str(i) for i in range(10)]


def test_loading_errors(tiny_run, tmp_path):
    with pytest.raises(ConfigError, match="--checkpoint CKPT, or --model M"):
        load_model()
    with pytest.raises(ConfigError, match="not both"):
        load_model(tiny_run, pretrained="tv_in1k")
    with pytest.raises(CheckpointError, match="holds a resnet20 model, not vgg11"):
        load_model(tiny_run, model="vgg11")
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "none.pt")
    loaded = load_model(tiny_run)
    with pytest.raises(ConfigError, match=r"unknown class 'cat'.*index 0-3 \(class_0, class_1, class_2, class_3\)"):
        loaded.class_index("cat")
    assert loaded.class_index("2") == 2 and loaded.class_index(3) == 3
    with pytest.raises(DataError, match="missing.png not found"):
        loaded.image(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(DataError, match="bad.png"):
        loaded.image(bad)


def test_published_style_weights_from_a_file_use_their_preprocessing(tiny_run, png):
    from_ckpt = load_model(tiny_run)
    as_weights = load_model(model="resnet20", pretrained=str(tiny_run / "best.pt"))
    assert as_weights.class_names == from_ckpt.class_names and as_weights.checkpoint is None
    assert as_weights.info["mean"] == pytest.approx(from_ckpt.info["mean"])
    x = as_weights.image(png)
    torch.testing.assert_close(x, from_ckpt.image(png))
    with torch.no_grad():
        torch.testing.assert_close(as_weights.net(x), from_ckpt.net(x))
