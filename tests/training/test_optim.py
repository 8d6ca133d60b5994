"""Optimisers and learning-rate schedules: constructed, stepped, and the LR curve at given iterations."""

from __future__ import annotations

import math

import pytest
import torch

from reslab.errors import ConfigError
from reslab.training.config import TrainConfig
from reslab.training.optim import LRSchedule, build_optimizer, build_scheduler, parameter_groups

from .conftest import TinyNet


def _lrs(config: TrainConfig, steps_per_epoch: int) -> list[float]:
    """The learning rate used at every iteration of the run (stepping a real optimiser)."""
    model = TinyNet()
    opt = build_optimizer(model, config)
    sched = build_scheduler(opt, config, steps_per_epoch)
    lrs = []
    for _ in range(config.epochs * steps_per_epoch):
        lrs.append(opt.param_groups[0]["lr"])
        model(torch.randn(2, 3, 4, 4)).sum().backward()
        opt.step()
        opt.zero_grad()
        sched.step()
    return lrs


@pytest.mark.parametrize(
    "name, cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)]
)
def test_optimisers_step(name, cls):
    model = TinyNet()
    config = TrainConfig(optimizer=name, lr=0.01, nesterov=name == "sgd", weight_decay=1e-3).validate()
    opt = build_optimizer(model, config)
    assert isinstance(opt, cls)
    before = model.fc.weight.detach().clone()
    model(torch.randn(4, 3, 4, 4)).sum().backward()
    opt.step()
    assert not torch.equal(before, model.fc.weight)
    if name == "sgd":
        assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9


def test_weight_decay_exemption_of_norm_and_bias():
    model = TinyNet()
    groups = parameter_groups(model, 5e-4, decay_norm_and_bias=False)
    decayed = {id(p) for p in groups[0]["params"]}
    exempt = {id(p) for p in groups[1]["params"]}
    assert groups[0]["weight_decay"] == 5e-4 and groups[1]["weight_decay"] == 0.0
    assert decayed == {id(model.conv.weight), id(model.fc.weight)}
    assert exempt == {id(model.bn.weight), id(model.bn.bias), id(model.fc.bias)}
    assert len(parameter_groups(model, 5e-4, decay_norm_and_bias=True)) == 1


def test_nesterov_needs_sgd():
    with pytest.raises(ConfigError, match="nesterov"):
        TrainConfig(optimizer="adam", nesterov=True).validate()


def test_multistep_default_divides_by_ten_at_half_and_three_quarters():
    lrs = _lrs(TrainConfig(epochs=4, lr=0.1, schedule="multistep").validate(), steps_per_epoch=5)
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(0.1)  # epochs 1-2
    assert lrs[10] == pytest.approx(0.01) and lrs[14] == pytest.approx(0.01)  # epoch 3
    assert lrs[15] == pytest.approx(0.001) and lrs[19] == pytest.approx(0.001)  # epoch 4


def test_multistep_explicit_milestones_in_epochs():
    """The ResNet recipe: /10 at epochs 82 and 123 of 164 (iterations = epochs x steps per epoch)."""
    s = LRSchedule("multistep", 164 * 391, milestones=[82 * 391, 123 * 391], gamma=0.1)
    assert s(82 * 391 - 1) == 1.0 and s(82 * 391) == pytest.approx(0.1)
    assert s(123 * 391 - 1) == pytest.approx(0.1) and s(123 * 391) == pytest.approx(0.01)
    config = TrainConfig(epochs=10, lr=0.1, schedule="multistep", milestones=[3, 7.5]).validate()
    lrs = _lrs(config, steps_per_epoch=2)
    assert lrs[5] == pytest.approx(0.1) and lrs[6] == pytest.approx(0.01)
    assert lrs[14] == pytest.approx(0.01) and lrs[15] == pytest.approx(0.001)


def test_cosine_curve():
    lrs = _lrs(TrainConfig(epochs=2, lr=0.2, schedule="cosine").validate(), steps_per_epoch=10)
    assert lrs[0] == pytest.approx(0.2)
    assert lrs[10] == pytest.approx(0.1)  # half way
    assert lrs[5] == pytest.approx(0.1 * (1 + math.cos(math.pi * 0.25)))
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_linear_warmup_ramps_then_hands_over():
    config = TrainConfig(epochs=4, lr=0.4, schedule="constant", warmup_epochs=1).validate()
    lrs = _lrs(config, steps_per_epoch=4)
    assert lrs[:4] == pytest.approx([0.1, 0.2, 0.3, 0.4])  # (it + 1) / warm-up iterations
    assert lrs[4:] == pytest.approx([0.4] * 12)
    combined = LRSchedule("multistep", 100, milestones=[50], warmup=10)
    assert combined(4) == pytest.approx(0.5) and combined(20) == 1.0 and combined(60) == pytest.approx(0.1)


def test_constant_warmup_trains_at_warmup_lr_then_jumps_to_lr():
    # the ResNet paper's ResNet-110: 0.01 for ~400 iterations, then 0.1 and the multistep schedule
    config = TrainConfig(
        epochs=4, lr=0.1, schedule="multistep", milestones=[3], warmup_epochs=1, warmup_lr=0.01
    ).validate()
    lrs = _lrs(config, steps_per_epoch=4)
    assert lrs[:4] == pytest.approx([0.01] * 4)
    assert lrs[4:12] == pytest.approx([0.1] * 8)
    assert lrs[12:] == pytest.approx([0.01] * 4)


@pytest.mark.parametrize(
    ("values", "message"),
    [({"warmup_lr": 0.01}, "needs warmup_epochs > 0"), ({"warmup_lr": -1, "warmup_epochs": 1}, "warmup_lr must be")],
)
def test_constant_warmup_refuses_bad_values(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(epochs=4, **values).validate()


def test_onecycle_rises_linearly_then_anneals():
    config = TrainConfig(epochs=4, lr=1.0, schedule="onecycle", onecycle_pct=0.25, onecycle_div=25).validate()
    lrs = _lrs(config, steps_per_epoch=10)  # 40 iterations, 10 rising
    assert lrs[0] == pytest.approx(1 / 25)
    assert lrs[5] == pytest.approx(1 / 25 + (1 - 1 / 25) * 0.5)
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[25] == pytest.approx(0.5)  # half way through the cosine decay
    assert lrs[-1] < 0.01


def test_scheduler_state_round_trips_with_weights_only(tmp_path):
    config = TrainConfig(epochs=2, schedule="multistep", warmup_epochs=0.5).validate()
    opt = build_optimizer(TinyNet(), config)
    sched = build_scheduler(opt, config, 10)
    for _ in range(7):
        opt.step()
        sched.step()
    torch.save(sched.state_dict(), tmp_path / "s.pt")
    state = torch.load(tmp_path / "s.pt", weights_only=True)
    opt2 = build_optimizer(TinyNet(), config)
    sched2 = build_scheduler(opt2, config, 10)
    sched2.load_state_dict(state)
    assert sched2.last_epoch == 7 and sched2.get_last_lr() == sched.get_last_lr()
