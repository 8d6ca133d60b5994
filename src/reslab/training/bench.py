"""Throughput and peak memory of a registered network: images/s for inference (and a training step), with
the inference options (--amp, --channels-last, --compile, --fuse), and torchvision's same architecture
measured in the same run where torchvision imports.

Peak memory on CUDA is ``torch.cuda.max_memory_allocated`` during the timed phase (weights, activations,
gradients, optimiser state). On the CPU it is the process's peak resident set size during the phase: the
kernel's high-water mark (``VmHWM``) reset before each phase through ``/proc/self/clear_refs`` where Linux
allows it, else ``resource.getrusage``'s ``ru_maxrss`` (the peak since the process started). Either CPU
figure includes the Python interpreter and torch itself (a few hundred MiB); psutil is not used.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .precision import choose_precision
from .runtime import autocast, check_amp, check_compile, resolve_device


@dataclass
class Measurement:
    """One timed phase: images per second and peak memory (bytes; ``memory_how`` says what was measured)."""

    what: str
    images_per_s: float
    peak_memory: int | None
    memory_how: str


@dataclass
class BenchResult:
    model: str
    device: str
    batch_size: int
    image_size: int
    options: dict[str, Any]
    runs: list[Measurement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report, one line per measurement, then ratios and notes."""
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        out = [f"{self.model} on {self.device}, batch {self.batch_size}, {self.image_size}x{self.image_size} ({opts})"]
        for m in self.runs:
            mem = "n/a" if m.peak_memory is None else f"{m.peak_memory / 2**20:.1f} MiB"
            out.append(f"  {m.what:<28} {m.images_per_s:10.1f} images/s   peak memory {mem} ({m.memory_how})")
        by = {m.what: m for m in self.runs}
        for phase in ("inference", "train step"):
            ours, theirs = by.get(f"reslab {phase}"), by.get(f"torchvision {phase}")
            if ours and theirs:
                out.append(f"  {phase}: reslab / torchvision = {ours.images_per_s / theirs.images_per_s:.2f}x")
        out += [f"  note: {n}" for n in self.notes]
        return out


class _PeakMemory:
    """Peak memory of the code inside the context: CUDA's allocator peak, else the process's peak RSS."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak: int | None = None
        self.how = ""

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.reset = _reset_hwm()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
            self.how = "CUDA max_memory_allocated"
        elif self.reset:
            self.peak = _hwm()
            self.how = "process peak RSS in this phase"
        else:
            self.peak = _maxrss()
            self.how = "process peak RSS since start, ru_maxrss"


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no {key} in /proc/self/status")


def _rss() -> int:
    return _status_kib("VmRSS")


def _hwm() -> int:
    return _status_kib("VmHWM")


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # 5: reset the peak RSS (Linux >= 4.0)
        return _hwm() <= _rss() + 2**20
    except OSError:
        return False


def _maxrss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_phase(step, device: torch.device, batch_size: int, steps: int, warmup: int, what: str) -> Measurement:
    for _ in range(warmup):
        step()
    _sync(device)
    with _PeakMemory(device) as mem:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        elapsed = time.perf_counter() - start
    return Measurement(what, batch_size * steps / elapsed, mem.peak, mem.how)


def _measure(
    net: nn.Module,
    label: str,
    *,
    device,
    dtype,
    batch_size,
    image_size,
    in_chans,
    num_classes,
    channels_last,
    compile,
    train,
    steps,
    warmup,
) -> list[Measurement]:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(device).to(memory_format=fmt)
    x = torch.randn(batch_size, in_chans, image_size, image_size, device=device).contiguous(memory_format=fmt)
    runner = torch.compile(net) if compile else net
    out = []
    net.eval()

    def infer():
        with torch.inference_mode(), autocast(device, dtype):
            runner(x)

    out.append(_time_phase(infer, device, batch_size, steps, warmup, f"{label} inference"))
    if train:
        net.train()
        y = torch.randint(0, num_classes, (batch_size,), device=device)
        opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
        scaler = torch.amp.GradScaler(device.type) if dtype is torch.float16 else None

        def train_step():
            opt.zero_grad(set_to_none=True)
            with autocast(device, dtype):
                logits = runner(x)
                loss = nn.functional.cross_entropy(getattr(logits, "logits", logits).float(), y)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()

        out.append(_time_phase(train_step, device, batch_size, steps, warmup, f"{label} train step"))
    return out


def _torchvision_model(name: str, num_classes: int):
    """torchvision's model of the same name, or the reason there is none."""
    try:
        import torchvision.models as tvm
    except Exception as e:  # ImportError, or a torchvision built for another torch failing on import
        return None, f"torchvision not available ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})"
    builder = getattr(tvm, name, None)
    if builder is None or not callable(builder):
        return None, f"torchvision has no {name}: nothing to compare with"
    kwargs = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    return builder(weights=None, num_classes=num_classes, **kwargs), None


def bench(
    model: str,
    *,
    batch_size: int = 32,
    image_size: int | None = None,
    amp: str | None = None,
    channels_last: bool | str = False,
    compile: bool = False,
    fuse: bool = False,
    device: str = "auto",
    train: bool = False,
    steps: int = 10,
    warmup: int = 3,
    compare_torchvision: bool = True,
    threads: int | None = None,
) -> BenchResult:
    """Measure images/s and peak memory of the registered ``model`` on random inputs.

    Args:
        model: a registry name. batch_size, image_size: the input (default size: the model's own).
        amp: ``bf16`` / ``fp16`` autocast (None: fp32; ``auto``: as :mod:`reslab.training.precision` chooses for
            training, or inference without ``train``). channels_last (True, False or ``auto``), compile: as in
            training.
        fuse: fold conv-BN first (:func:`reslab.models.fuse`; inference only).
        train: also time a training step (SGD, cross-entropy) -- not with ``fuse``.
        steps, warmup: timed and untimed iterations per phase.
        compare_torchvision: also measure torchvision's network of the same name, where it imports.
        threads: CPU threads for torch during the measurement (default: torch's choice; restored after).

    Returns:
        A :class:`BenchResult` (``lines()`` for the report).

    Raises:
        ConfigError: bad sizes or counts, an unknown model, fuse with train, fp16 on the CPU, compile
            where it cannot run, an image size the model cannot take.
    """
    saved_threads = torch.get_num_threads()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"--threads must be a whole number >= 1, got {threads!r}")
        torch.set_num_threads(threads)
    try:
        return _bench(
            model,
            batch_size=batch_size,
            image_size=image_size,
            amp=amp,
            channels_last=channels_last,
            compile=compile,
            fuse=fuse,
            device=device,
            train=train,
            steps=steps,
            warmup=warmup,
            compare_torchvision=compare_torchvision,
        )
    finally:
        torch.set_num_threads(saved_threads)


def _bench(
    model,
    *,
    batch_size,
    image_size,
    amp,
    channels_last,
    compile,
    fuse,
    device,
    train,
    steps,
    warmup,
    compare_torchvision,
) -> BenchResult:
    from ..models import build_model, get_model_entry

    for name, value, low in (("batch_size", batch_size, 1), ("steps", steps, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"--{name.replace('_', '-')} must be a whole number >= {low}, got {value!r}")
    if fuse and train:
        raise ConfigError("--fuse folds BN for inference; it cannot be combined with --train")
    entry = get_model_entry(model)
    dev = resolve_device(device)
    check_amp(amp, dev)
    if compile:
        check_compile(dev)
    in_chans = int(entry.input_size[0])
    size = int(entry.input_size[1]) if image_size is None else int(image_size)
    net = build_model(model)
    # the model's own size check, as one line, before anything is timed
    net.check_input(torch.empty(1, in_chans, size, size, device="meta"))
    if fuse:
        net.eval().fuse()
    if "auto" in (amp, channels_last):  # chosen for this machine and network, as reslab train chooses
        chosen = choose_precision(
            amp,
            channels_last,
            dev,
            model=net,
            input_shape=(in_chans, size, size),
            batch_size=batch_size,
            train=train,
        )
        amp, channels_last = chosen.amp, chosen.channels_last
    dtype = check_amp(amp, dev)
    options = {
        "threads": torch.get_num_threads(),
        "amp": amp or "fp32",
        "channels_last": channels_last,
        "compile": compile,
        "fuse": fuse,
    }
    result = BenchResult(model, str(dev), batch_size, size, options)
    common = dict(
        device=dev,
        dtype=dtype,
        batch_size=batch_size,
        image_size=size,
        in_chans=in_chans,
        num_classes=net.num_classes or 1,
        channels_last=channels_last,
        compile=compile,
        train=train,
        steps=steps,
        warmup=warmup,
    )
    result.runs += _measure(net, "reslab", **common)
    if compare_torchvision:
        tv, why = _torchvision_model(model, net.num_classes or 1000)
        if tv is None:
            result.notes.append(why)
        else:
            if fuse:
                result.notes.append("torchvision's model is measured unfused (torchvision has no BN folding)")
            with contextlib.suppress(Exception):
                del net
            result.runs += _measure(tv, "torchvision", **common)
    return result
