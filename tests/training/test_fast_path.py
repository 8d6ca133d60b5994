"""The CUDA fast path, proved on the CPU: how often the training loop reads device tensors on the host
(each read would make the host wait for the GPU), fused optimisers chosen for CUDA, BatchNorm kept in
fp32 under bf16 autocast, and bf16 + channels-last + torch.compile together."""

from __future__ import annotations

import contextlib
import sys

import pytest
import torch
from torch import nn

from reslab.training import optim, runtime, train
from reslab.training import trainer as trainer_module
from reslab.training.checkpoint import load_checkpoint
from reslab.training.config import TrainConfig
from reslab.training.evaluation import evaluate_model
from reslab.training.optim import build_optimizer, load_optimizer_state, optimizer_implementation

from .conftest import HookNet, TinyNet, fast_config, tiny_bundle

#: the Tensor methods through which Python code reads a tensor's values on the host: on CUDA each one
#: waits for the GPU to finish the work queued so far (printing a tensor goes through them too)
HOST_READS = (
    "item",
    "tolist",
    "cpu",
    "numpy",
    "__bool__",
    "__float__",
    "__int__",
    "__index__",
    "__repr__",
    "__format__",
)


class HostReads:
    """Records ``(method, trainer step)`` for every host read; with ``in_training_loop`` only those made
    inside ``Trainer._train_epoch``."""

    def __init__(self, in_training_loop: bool = True):
        self.calls: list[tuple[str, int]] = []
        self.in_training_loop = in_training_loop
        self.trainer = None
        self.depth = 0  # a read made from inside another (``__format__`` calls ``item``) counts once

    def steps(self) -> list[int]:
        """The distinct steps (after how many batches of the epoch) at which the host waited."""
        return sorted({step for _, step in self.calls})

    def counting(self, name: str):
        original = getattr(torch.Tensor, name)

        def counted(tensor, *args, **kwargs):
            if self.depth == 0 and (self.trainer is not None or not self.in_training_loop):
                self.calls.append((name, self.trainer.step if self.trainer is not None else 0))
            self.depth += 1
            try:
                return original(tensor, *args, **kwargs)
            finally:
                self.depth -= 1

        return counted


@contextlib.contextmanager
def count_host_reads(monkeypatch, in_training_loop: bool = True):
    reads = HostReads(in_training_loop)
    original_epoch = trainer_module.Trainer._train_epoch

    def train_epoch(trainer, *args, **kwargs):
        reads.trainer = trainer
        try:
            return original_epoch(trainer, *args, **kwargs)
        finally:
            reads.trainer = None

    with monkeypatch.context() as m:
        for name in HOST_READS:
            m.setattr(torch.Tensor, name, reads.counting(name))
        m.setattr(trainer_module.Trainer, "_train_epoch", train_epoch)
        yield reads


# the fast-path options a CUDA run would use, plus every per-step feature of the loop
FAST = dict(
    epochs=1,
    amp="bf16",
    channels_last=True,
    ema=True,
    ema_decay=0.9,
    grad_clip=1.0,
    label_smoothing=0.1,
    optimizer="sgd",
    nesterov=True,
    schedule="onecycle",
)
STEPS = 60


def _fast_run(tmp_path, monkeypatch, device_policy: str, **overrides):
    bundle = tiny_bundle(num_samples=4 * STEPS, batch_size=4, image_size=8)
    assert len(bundle.train) == STEPS
    if device_policy == "cuda":
        # the loop as it runs on CUDA (the policy is the only device-dependent part of the step loop)
        monkeypatch.setattr(trainer_module, "host_sync_interval", lambda device: runtime.host_sync_interval("cuda"))
        monkeypatch.setattr(optim, "optimizer_implementation", lambda device: optimizer_implementation("cuda"))
    torch.manual_seed(0)
    with count_host_reads(monkeypatch) as reads:
        result = train(fast_config(tmp_path, **{**FAST, **overrides}), bundle=bundle, network=TinyNet(), progress="bar")
    assert result.finished
    return reads, result


def test_host_sync_policy():
    assert runtime.host_sync_interval(torch.device("cpu")) == 1
    assert runtime.host_sync_interval(torch.device("cuda")) == runtime.ACCELERATOR_SYNC_EVERY == 20
    assert runtime.host_sync_interval("cuda:1") == 20


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_cuda_loop_reads_the_device_once_per_20_steps(tmp_path, monkeypatch, optimizer):
    """60 steps (bf16, channels-last, EMA, gradient clipping, label smoothing, one-cycle, the progress bar,
    the fused optimiser CUDA gets): the host waits at steps 20, 40 and 60 only, not at every step. (With
    torch's unfused Adam the count is one ``step.item()`` per parameter per step: on CUDA those counters are
    CPU tensors, but the fused kernels keep them on the device and read none.)"""
    extra = {} if optimizer == "sgd" else {"nesterov": False}
    reads, result = _fast_run(tmp_path, monkeypatch, "cuda", optimizer=optimizer, **extra)
    every = runtime.ACCELERATOR_SYNC_EVERY
    assert reads.steps() == list(range(every, STEPS + 1, every)), reads.calls
    assert len(reads.steps()) <= STEPS / every + 1
    # per sync point: the finiteness flag and the bar's two figures; the epoch's totals once at the end
    assert len(reads.calls) <= 3 * len(reads.steps()) + 2, reads.calls
    assert result.history[0]["train_loss"] > 0


def test_cpu_loop_reads_every_step_and_the_count_sees_it(tmp_path, monkeypatch):
    """The counter works: on the CPU (where a read costs nothing) the loop checks the loss at every step."""
    reads, _ = _fast_run(tmp_path, monkeypatch, "cpu")
    assert reads.steps() == list(range(1, STEPS + 1))


def test_evaluation_reads_the_device_a_fixed_number_of_times(monkeypatch):
    """The metrics stay on the device over the whole split: 10 batches or 40, the same few reads."""
    torch.manual_seed(0)
    model = TinyNet()
    counts = []
    for batches in (10, 40):
        loader = [(torch.randn(4, 3, 8, 8), torch.arange(4) % 4) for _ in range(batches)]
        with count_host_reads(monkeypatch, in_training_loop=False) as reads:
            metrics = evaluate_model(model, loader, 4, amp_dtype=torch.bfloat16, channels_last=True)
        counts.append(len(reads.calls))
        assert metrics.n == 4 * batches
    assert counts[0] == counts[1] <= 4, counts


# -- fused optimisers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_cuda_gets_fused_optimisers_and_the_cpu_foreach(name):
    """The choice follows the device (inspected, not run: no CUDA here)."""
    config = TrainConfig(optimizer=name, lr=0.01, weight_decay=1e-3).validate()
    cuda = build_optimizer(TinyNet(), config, device=torch.device("cuda"))
    assert cuda.defaults["fused"] is True and not cuda.defaults["foreach"]
    assert all(g["fused"] is True for g in cuda.param_groups)
    cpu = build_optimizer(TinyNet(), config)  # the parameters' device: the CPU
    assert cpu.defaults["foreach"] is True and not cpu.defaults["fused"]
    assert optimizer_implementation("cuda:1") == {"fused": True}
    assert optimizer_implementation(torch.device("cpu")) == {"foreach": True}


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_cpu_results_unchanged(name):
    """foreach on the CPU gives torch's default per-parameter loop's weights bit for bit."""
    config = TrainConfig(optimizer=name, lr=0.05, weight_decay=1e-3, decay_norm_and_bias=False).validate()
    weights = []
    for ours in (True, False):
        torch.manual_seed(0)
        model = TinyNet()
        if ours:
            opt = build_optimizer(model, config)
        else:
            kind = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
            extra = {"momentum": config.momentum, "nesterov": config.nesterov} if name == "sgd" else {}
            opt = kind(optim.parameter_groups(model, 1e-3, False), lr=0.05, **extra)
        g = torch.Generator().manual_seed(1)
        for _ in range(5):
            opt.zero_grad()
            model(torch.randn(8, 3, 6, 6, generator=g)).logsumexp(1).mean().backward()
            opt.step()
        weights.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_a_checkpoint_from_another_device_resumes_with_this_devices_implementation(name):
    """A CUDA run's optimiser state (fused) loads into a CPU optimiser (foreach) and back, keeping the
    implementation of the device it resumes on (torch's load_state_dict would bring the saved one along)."""
    config = TrainConfig(optimizer=name, lr=0.05).validate()
    torch.manual_seed(0)
    model = TinyNet()
    fused = build_optimizer(model, config, device="cuda")  # fused kernels run on the CPU too
    model(torch.randn(4, 3, 6, 6)).sum().backward()
    fused.step()
    cpu = build_optimizer(model, config)
    load_optimizer_state(cpu, fused.state_dict())
    assert cpu.param_groups[0]["foreach"] is True and not cpu.param_groups[0]["fused"]
    cpu.step()
    back = build_optimizer(model, config, device="cuda")
    load_optimizer_state(back, cpu.state_dict())
    assert back.param_groups[0]["fused"] is True and not back.param_groups[0]["foreach"]
    if name == "adamw":  # the fused kernels read the step count on the parameters' device, as float32
        step = back.state[next(iter(model.parameters()))]["step"]
        assert step.dtype == torch.float32 and float(step) == 2
    back.step()


def test_trainer_uses_the_devices_implementation(tmp_path):
    train(fast_config(tmp_path, epochs=1), bundle=tiny_bundle(num_samples=16), network=TinyNet(), progress="none")
    groups = load_checkpoint(tmp_path / "run" / "last.pt")["optimizer"]["param_groups"]
    assert all(g["foreach"] is True and not g["fused"] for g in groups)


def test_a_cuda_runs_checkpoint_resumes_on_the_cpu_with_foreach(tmp_path, monkeypatch):
    """A run started with the fused optimiser (as on CUDA), stopped after its first epoch, resumes here
    with the CPU's implementation and finishes."""
    bundle = tiny_bundle(num_samples=32, batch_size=16)
    with monkeypatch.context() as m:
        m.setattr(optim, "optimizer_implementation", lambda device: optimizer_implementation("cuda"))
        torch.manual_seed(0)
        stopper = HookNet(at_step=len(bundle.train), action="SIGINT")
        part = train(
            fast_config(tmp_path, epochs=2, optimizer="adamw"), bundle=bundle, network=stopper, progress="none"
        )
    assert part.interrupted == "SIGINT" and part.epochs_done == 1
    assert load_checkpoint(tmp_path / "run" / "last.pt")["optimizer"]["param_groups"][0]["fused"] is True
    resumed = train(
        resume=tmp_path / "run", bundle=tiny_bundle(num_samples=32, batch_size=16), network=TinyNet(), progress="none"
    )
    assert resumed.finished
    groups = load_checkpoint(tmp_path / "run" / "last.pt")["optimizer"]["param_groups"]
    assert all(g["foreach"] is True and not g["fused"] for g in groups)


# -- bf16 autocast keeps BatchNorm in fp32 -----------------------------------------------------------------


class OffsetNet(nn.Module):
    """conv (its bias at 40) - BN - linear: BatchNorm's inputs sit near 40, where bfloat16's spacing is 0.25,
    so statistics computed in bf16 would be off by ~1e-1 and those computed in fp32 by ~1e-5."""

    model_name = "offset"

    def __init__(self, num_classes: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        nn.init.constant_(self.conv.bias, 40.0)
        self.bn = nn.BatchNorm2d(8, momentum=0.5)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def test_bf16_autocast_keeps_batchnorm_parameters_and_statistics_in_fp32(tmp_path):
    torch.manual_seed(0)
    net = OffsetNet()
    seen = []
    net.bn.register_forward_hook(lambda m, i, o: seen.append((i[0].detach().clone(), o.dtype)) if m.training else None)
    bundle = tiny_bundle(num_samples=64, batch_size=16)
    result = train(
        fast_config(tmp_path, epochs=1, amp="bf16", channels_last=True, weight_decay=0.0),
        bundle=bundle,
        network=net,
        progress="none",
    )
    assert result.finished and len(seen) == 4
    assert all(x.dtype == torch.bfloat16 and out == torch.bfloat16 for x, out in seen)  # autocast: conv in bf16
    state = load_checkpoint(tmp_path / "run" / "last.pt")["model"]
    for key in ("bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"):
        assert state[key].dtype == torch.float32, key
    assert not torch.equal(state["bn.weight"], torch.ones(8))  # trained
    # the running statistics follow the bf16 inputs at fp32 accuracy (a reference in float64)
    mean, var = torch.zeros(8, dtype=torch.float64), torch.ones(8, dtype=torch.float64)
    for x, _ in seen:
        x = x.double()
        mean = 0.5 * mean + 0.5 * x.mean((0, 2, 3))
        var = 0.5 * var + 0.5 * x.var((0, 2, 3), unbiased=True)
    assert mean.abs().min() > 20  # the offset the test relies on
    torch.testing.assert_close(state["bn.running_mean"].double(), mean, rtol=1e-5, atol=0)
    torch.testing.assert_close(state["bn.running_var"].double(), var, rtol=1e-4, atol=1e-6)


# -- torch.compile + channels-last + bf16 ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="torch.compile is not supported there in this project's CI")
def test_compile_channels_last_and_bf16_combine(tmp_path, monkeypatch):
    """The three together trace as one graph (``fullgraph=True``: no graph break in the network) and train
    like the eager network. Dynamo + AOT autograd (``aot_eager``) stand in for inductor, whose CPU code
    generation takes ~20 s here; tests/training/test_trainer.py::test_compile_smoke runs inductor itself."""
    compiled = []

    def compile_model(model):
        compiled.append(model)
        return torch.compile(model, backend="aot_eager", fullgraph=True)

    options = dict(epochs=1, amp="bf16", channels_last=True, ema=True)
    bundle = tiny_bundle(num_samples=32, batch_size=16)
    torch.manual_seed(0)
    eager = train(fast_config(tmp_path / "eager", **options), bundle=bundle, network=TinyNet(), progress="none")
    monkeypatch.setattr(trainer_module, "compile_model", compile_model)
    torch.manual_seed(0)
    fast = train(
        fast_config(tmp_path / "compiled", compile=True, **options),
        bundle=tiny_bundle(num_samples=32, batch_size=16),
        network=TinyNet(),
        progress="none",
    )
    assert len(compiled) == 1 and fast.finished
    assert fast.history[0]["train_loss"] == pytest.approx(eager.history[0]["train_loss"], rel=1e-2)
    state = load_checkpoint(tmp_path / "compiled" / "run" / "last.pt")["model"]
    assert not any(k.startswith("_orig_mod.") for k in state)  # the plain module's keys
    assert state["bn.running_var"].dtype == state["bn.weight"].dtype == torch.float32
    assert compiled[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
