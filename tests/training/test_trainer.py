"""The training loop: exact resume, signals, non-finite losses, AMP, channels-last, compile, aux losses."""

from __future__ import annotations

import csv
import math
import sys

import pytest
import torch
import torch.nn.functional as F

from reslab.errors import CheckpointError, ConfigError, TrainingError
from reslab.models.base import AuxLogits
from reslab.training import train
from reslab.training.checkpoint import load_checkpoint
from reslab.training.trainer import compute_loss

from .conftest import AuxNet, HookNet, ListBundle, TinyNet, fast_config, tiny_bundle

RESUME_CFG = dict(
    epochs=4,
    optimizer="sgd",
    nesterov=True,
    schedule="cosine",
    warmup_epochs=1,
    label_smoothing=0.1,
    ema=True,
    ema_decay=0.9,
    grad_clip=5.0,
)


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _net(**kw) -> TinyNet:
    torch.manual_seed(0)
    return TinyNet(**kw)


def test_exact_resume_four_epochs_vs_two_plus_two(tmp_path):
    """4 epochs in one go == the same run stopped by SIGINT after epoch 2, then resumed (bit for bit)."""
    steps = len(tiny_bundle().train)  # 6 steps per epoch
    full = train(fast_config(tmp_path / "a", **RESUME_CFG), bundle=tiny_bundle(), network=_net(), progress="none")
    assert full.finished and full.epochs_done == 4

    torch.manual_seed(0)
    stopper = HookNet(at_step=2 * steps, action="SIGINT")  # the last step of epoch 2
    part = train(fast_config(tmp_path / "b", **RESUME_CFG), bundle=tiny_bundle(), network=stopper, progress="none")
    assert part.interrupted == "SIGINT" and part.epochs_done == 2 and not part.finished
    ckpt = load_checkpoint(tmp_path / "b" / "run" / "last.pt")
    assert ckpt["interrupted"] is None and ckpt["epoch"] == 2 and ckpt["step"] == 0  # an epoch boundary

    resumed = train(resume=tmp_path / "b" / "run", bundle=tiny_bundle(), network=TinyNet(), progress="none")
    assert resumed.finished and resumed.epochs_done == 4

    a = load_checkpoint(tmp_path / "a" / "run" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "run" / "last.pt")
    _assert_same_state(a["model"], b["model"])
    _assert_same_state(a["ema"]["module"], b["ema"]["module"])
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for k in a["optimizer"]["state"]:
        assert torch.equal(a["optimizer"]["state"][k]["momentum_buffer"], b["optimizer"]["state"][k]["momentum_buffer"])
    # the metrics history is continuous: 4 rows, equal values apart from timings
    rows_a = list(csv.DictReader(open(tmp_path / "a" / "run" / "metrics.csv")))
    rows_b = list(csv.DictReader(open(tmp_path / "b" / "run" / "metrics.csv")))
    assert [r["epoch"] for r in rows_b] == ["1", "2", "3", "4"]
    for ra, rb in zip(rows_a, rows_b):
        for key in ("lr", "train_loss", "train_top1", "test_loss", "test_top1", "ema_test_top1"):
            assert ra[key] == rb[key], key
    assert full.final.top1 == resumed.final.top1


def test_exact_resume_mid_epoch(tmp_path):
    """SIGTERM in the middle of epoch 2: last.pt records the step; resuming skips the consumed batches."""
    steps = len(tiny_bundle().train)
    full = train(
        fast_config(tmp_path / "a", **{**RESUME_CFG, "epochs": 3}),
        bundle=tiny_bundle(),
        network=_net(),
        progress="none",
    )
    torch.manual_seed(0)
    stopper = HookNet(at_step=steps + 3, action="SIGTERM")
    part = train(
        fast_config(tmp_path / "b", **{**RESUME_CFG, "epochs": 3}),
        bundle=tiny_bundle(),
        network=stopper,
        progress="none",
    )
    assert part.interrupted == "SIGTERM" and part.epochs_done == 1
    ckpt = load_checkpoint(tmp_path / "b" / "run" / "last.pt")
    assert ckpt["interrupted"] == "SIGTERM" and ckpt["epoch"] == 1 and ckpt["step"] == 3
    resumed = train(resume=tmp_path / "b" / "run", bundle=tiny_bundle(), network=TinyNet(), progress="none")
    assert resumed.finished
    a = load_checkpoint(tmp_path / "a" / "run" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "run" / "last.pt")
    _assert_same_state(a["model"], b["model"])
    assert full.history[-1]["train_loss"] == resumed.history[-1]["train_loss"]


def test_resume_refuses_finished_and_conflicting_runs(tmp_path):
    cfg = fast_config(tmp_path, epochs=1)
    train(cfg, bundle=ListBundle(), network=TinyNet(num_classes=3), progress="none")
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match="already finished all 1 epochs"):
        train(resume=run, bundle=ListBundle(), network=TinyNet(num_classes=3))
    with pytest.raises(ConfigError, match=r"lr: run has 0.05, given 0.2"):
        train(resume=run, lr=0.2)
    with pytest.raises(ConfigError, match="model"):
        train(resume=run, model="resnet56")
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(resume=tmp_path)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(cfg, bundle=ListBundle(), network=TinyNet(num_classes=3))
    (run / "notes.txt").write_text("mine")
    again = train({**cfg, "overwrite": True}, bundle=ListBundle(), network=TinyNet(num_classes=3), progress="bar")
    assert again.finished and (run / "notes.txt").read_text() == "mine"  # only the run's own files go


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    bundle = tiny_bundle()
    steps = len(bundle.train)
    torch.manual_seed(0)
    net = HookNet(at_step=steps + 3, action="nan")  # epoch 2, step 3
    with pytest.raises(TrainingError, match=rf"non-finite loss at epoch 2 step 3/{steps}"):
        train(fast_config(tmp_path, epochs=3), bundle=bundle, network=net, progress="none")
    for name in ("last.pt", "best.pt"):
        ckpt = load_checkpoint(tmp_path / "run" / name)
        assert ckpt["epoch"] == 1
        assert all(torch.isfinite(t).all() for t in ckpt["model"].values() if t.is_floating_point())


def test_huge_learning_rate_is_a_training_error(tmp_path):
    with pytest.raises(TrainingError, match=r"non-finite loss at epoch 1 step \d+") as e:
        train(
            fast_config(tmp_path, lr=1e30, schedule="constant", weight_decay=0.0),
            bundle=tiny_bundle(),
            network=_net(),
            progress="none",
        )
    assert "(none yet)" in str(e.value)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_aux_losses_weighted_point_three():
    torch.manual_seed(0)
    labels = torch.tensor([0, 1, 2])
    main, a1, a2 = torch.randn(3, 3), torch.randn(3, 3), torch.randn(3, 3)
    loss, logits = compute_loss(AuxLogits(main, a1, a2), labels, 0.0, 0.3)
    expected = F.cross_entropy(main, labels) + 0.3 * (F.cross_entropy(a1, labels) + F.cross_entropy(a2, labels))
    assert torch.allclose(loss, expected) and logits is main
    plain, _ = compute_loss(main, labels, 0.1, 0.3)
    assert torch.allclose(plain, F.cross_entropy(main, labels, label_smoothing=0.1))


def test_trains_a_model_with_auxiliary_classifiers(tmp_path):
    torch.manual_seed(0)
    result = train(fast_config(tmp_path, epochs=1), bundle=tiny_bundle(), network=AuxNet(), progress="none")
    assert result.finished and math.isfinite(result.history[0]["train_loss"])
    assert result.final.n == tiny_bundle().val.num_samples


def test_label_smoothing_raises_the_train_loss(tmp_path):
    kw = dict(epochs=1, lr=1e-12, schedule="constant")  # nothing learnt: the loss is the function alone
    plain = train(fast_config(tmp_path / "a", **kw), bundle=tiny_bundle(), network=_net(), progress="none")
    smooth = train(
        fast_config(tmp_path / "b", label_smoothing=0.5, **kw), bundle=tiny_bundle(), network=_net(), progress="none"
    )
    assert smooth.history[0]["train_loss"] != plain.history[0]["train_loss"]
    assert smooth.history[0]["test_loss"] == pytest.approx(plain.history[0]["test_loss"])  # eval: no smoothing


def test_bf16_autocast_and_channels_last_on_cpu(tmp_path):
    result = train(
        fast_config(tmp_path, epochs=1, amp="bf16", channels_last=True),
        bundle=tiny_bundle(),
        network=_net(),
        progress="none",
    )
    assert result.finished and math.isfinite(result.history[0]["train_loss"])
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["model"]["conv.weight"].dtype == torch.float32  # autocast keeps fp32 master weights


def test_fp16_on_cpu_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        train(fast_config(tmp_path, amp="fp16"), bundle=tiny_bundle(), network=_net())


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="torch.compile's CPU backend needs a C++ toolchain")
def test_compile_smoke(tmp_path):
    """torch.compile: one epoch of one step of a tiny model (its compile time is the cost)."""
    bundle = tiny_bundle(num_samples=16, batch_size=16)
    result = train(fast_config(tmp_path, epochs=1, compile=True), bundle=bundle, network=_net(), progress="none")
    assert result.finished
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert not any(k.startswith("_orig_mod.") for k in ckpt["model"])  # the plain module's keys


def test_plain_loader_interface(tmp_path):
    """Any loader with the reslab.data interface works (here: a plain list-backed one, no test split)."""
    result = train(
        fast_config(tmp_path, epochs=2, lr=0.1), bundle=ListBundle(), network=TinyNet(num_classes=3), progress="none"
    )
    # no test split and no val_is_test: the final score is on its validation split and says so
    assert result.final_split == "val" and result.final.n == 32
    assert result.best_epoch in (1, 2)
