"""The frozen-backbone feature cache: the backbone runs once per image, and the head it trains is the plain
frozen loop's (same seed, within float rounding); where it cannot apply, the plain loop runs and the log says why."""

from __future__ import annotations

import logging

import pytest
import torch

from reslab.training import api, trainer
from reslab.training.checkpoint import load_checkpoint

RUN = dict(
    model="resnet20",
    model_args={"widths": [4, 8, 8]},
    data="synthetic",
    data_args={"num_samples": 96},
    image_size=8,
    freeze="backbone",
    augment=False,
    ema=False,
    epochs=3,
    batch_size=16,
    optimizer="adam",
    lr=0.01,
    schedule="constant",
    device="cpu",
    threads=1,
)


def _train(tmp_path, name: str, monkeypatch=None, plain: bool = False, **overrides):
    calls = {"n": 0}
    real_build = api._build_model

    def build(*args, **kwargs):
        model = real_build(*args, **kwargs)
        model.conv1.register_forward_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
        return model

    monkeypatch.setattr(api, "_build_model", build)
    if plain:
        monkeypatch.setattr(trainer, "cache_decision", lambda *a, **k: (False, ""))
    result = api.train(**{**RUN, **overrides}, out=str(tmp_path / name), progress="none")
    return result, calls["n"], load_checkpoint(tmp_path / name / "last.pt")


def test_cached_features_train_the_same_head_as_the_plain_frozen_loop(tmp_path, monkeypatch, caplog):
    with caplog.at_level(logging.INFO, logger="reslab"):
        cached, cached_calls, ckpt_cached = _train(tmp_path, "cached", monkeypatch)
    assert "frozen-backbone feature cache: the backbone ran once over" in caplog.text
    with monkeypatch.context() as m:
        plain, plain_calls, ckpt_plain = _train(tmp_path, "plain", m, plain=True)
    # one pass over the training split and the evaluation split(s), against one per epoch plus evaluations
    train_batches, val_batches = 96 // 16, 2  # synthetic's test split: 24 images (no validation split held out)
    assert cached_calls == train_batches + val_batches  # per-epoch and final evaluations use the stored features
    assert plain_calls == 3 * (train_batches + val_batches) + val_batches
    for key in ("fc.weight", "fc.bias"):
        torch.testing.assert_close(ckpt_cached["model"][key], ckpt_plain["model"][key], rtol=1e-5, atol=1e-6)
    for key, value in ckpt_plain["model"].items():  # the frozen backbone untouched in both
        if not key.startswith("fc."):
            assert torch.equal(ckpt_cached["model"][key], value), key
    for a, b in zip(cached.history, plain.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["test_top1"] == pytest.approx(b["test_top1"])


def test_the_plain_loop_runs_where_the_cache_cannot_and_the_log_says_why(tmp_path, monkeypatch, caplog):
    with caplog.at_level(logging.INFO, logger="reslab"):
        _train(tmp_path, "aug", monkeypatch, augment=True, epochs=1)
    assert "frozen-backbone feature cache off: augmentation is on" in caplog.text
    assert "the backbone ran once" not in caplog.text


def test_the_feature_loader_merges_a_last_batch_of_one_as_the_device_loader_does():
    """The cache's batches are the device loader's, also where a last batch of one image joins the one before."""
    from reslab.data.loader import MIN_TRAIN_BATCH, DeviceLoader
    from reslab.training.feature_cache import FeatureLoader

    n = 33
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    kwargs = dict(batch_size=16, shuffle=True, seed=5, min_last_batch=MIN_TRAIN_BATCH)
    device = DeviceLoader(images, torch.arange(n), mean=[0.0], std=[1.0], **kwargs)
    features = FeatureLoader(torch.arange(n, dtype=torch.float32)[:, None], torch.arange(n), **kwargs)
    assert len(features) == len(device) == 2
    for epoch in range(2):
        device.set_epoch(epoch)
        features.set_epoch(epoch)
        got = [y for _, y in features]
        assert [y.numel() for y in got] == [16, 17]
        for a, (_, b) in zip(got, device, strict=True):
            assert torch.equal(a, b)
