"""``amp: auto`` and ``channels_last: auto``: the fast precision for the machine a run is on, chosen once.

The choice (:func:`choose_precision`), where the configuration says ``auto`` (the default):

- **CUDA**: bf16 autocast where the GPU supports bfloat16 (Ampere and later), else fp16 with the gradient
  scaler; channels-last on.
- **CPU**: a short probe -- a few training steps (forward passes for inference) of the run's own network
  on a small batch of random inputs -- times fp32 in the default (NCHW) layout, fp32 channels-last and,
  only where the processor has native bf16 instructions, bf16 + channels-last. The native-bf16 test reads
  the ``avx512_bf16`` / ``amx_bf16`` flag of ``/proc/cpuinfo`` rather than guessing from the torch build:
  elsewhere bf16 is emulated and many times slower, so it is not even timed.

  - channels-last in fp32 where the probe measures it at least :data:`PROBE_MIN_CL_SPEEDUP` times faster
    than NCHW (oneDNN's NHWC convolutions win on many x86 CPUs; not on every one);
  - bf16 (with channels-last) where it is at least :data:`PROBE_MIN_SPEEDUP` times faster than the
    faster fp32 layout: it changes the arithmetic, so it must pay for itself; else fp32.

An explicit value (``--amp bf16|fp16|none``, ``--channels-last`` / ``--no-channels-last``) is never
changed; with ``--amp none`` and ``--channels-last auto`` the probe chooses the fp32 layout alone. The run's
log says what was chosen and why, and ``config.yaml`` records the chosen values (a resumed run keeps
them). ``RESLAB_CPU_FLAGS`` (space-separated flags), where set, replaces what ``/proc/cpuinfo`` says: to
rule bf16 out on a machine (``RESLAB_CPU_FLAGS=""``), or to test each branch. ``RESLAB_PROBE=0`` skips the
probe: ``auto`` on the CPU is then fp32 NCHW, the same on every machine (the test suite runs so).
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

#: the CPU flags that mean native bfloat16 arithmetic (AVX512-BF16; AMX's tiles)
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
#: bf16 must beat the faster fp32 layout by this factor in the probe to be chosen on the CPU
PROBE_MIN_SPEEDUP = 1.2
#: fp32 channels-last must beat fp32 NCHW by this factor in the probe (the arithmetic is the same, so a
#: smaller margin than bf16's; still above the probe's timing noise)
PROBE_MIN_CL_SPEEDUP = 1.1
#: the probe's batch (at most the run's): 32 up to 64x64 inputs (smaller batches understate what bf16 and
#: channels-last gain on the run's batch), 16 above (a step at ImageNet sizes costs some 50x more)
PROBE_BATCH = 32
PROBE_BATCH_LARGE = 16
#: the probe's timed rounds (after one untimed step per arm): each round times one step of every arm in
#: turn, so that a change in the machine's load falls on all arms alike
PROBE_STEPS = 3

_probe_cache: dict[tuple, dict[str, float]] = {}


@dataclass
class Precision:
    """What a run executes with: ``amp`` (None: fp32, ``"bf16"``, ``"fp16"``), ``channels_last``, and why
    (one line for the log; empty when nothing was ``auto``)."""

    amp: str | None
    channels_last: bool
    reason: str = ""


def cpu_flags() -> frozenset[str]:
    """The processor's feature flags: ``$RESLAB_CPU_FLAGS`` where set, else ``/proc/cpuinfo``'s first
    ``flags`` line (empty where there is none: other systems, where bf16 is then not chosen)."""
    given = os.environ.get("RESLAB_CPU_FLAGS")
    if given is not None:
        return frozenset(given.split())
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def native_bf16_flag() -> str | None:
    """The first native-bf16 flag this CPU has (``avx512_bf16`` / ``amx_bf16``), or None."""
    flags = cpu_flags()
    return next((f for f in NATIVE_BF16_FLAGS if f in flags), None)


def choose_precision(
    amp: str | None,
    channels_last: bool | str,
    device: torch.device,
    *,
    model: nn.Module | None = None,
    input_shape: tuple[int, ...] | None = None,
    batch_size: int = PROBE_BATCH,
    train: bool = True,
) -> Precision:
    """Resolve ``amp`` / ``channels_last`` (either may be ``"auto"``) for ``device`` (module docstring).

    Args:
        amp: ``"auto"``, None (fp32), ``"bf16"`` or ``"fp16"``.
        channels_last: ``"auto"``, True or False.
        device: where the run executes.
        model, input_shape: the network and one input's (C, H, W), for the CPU probe (without them the
            CPU's choice is fp32 NCHW).
        batch_size: the run's batch (the probe uses at most :data:`PROBE_BATCH` of it, above 64x64 inputs
            :data:`PROBE_BATCH_LARGE`).
        train: probe training steps (forward and backward) or inference (forward only).
    """
    auto_amp, auto_cl = amp == "auto", channels_last == "auto"
    if not (auto_amp or auto_cl):
        return Precision(amp, bool(channels_last))
    if torch.device(device).type == "cuda":
        if auto_amp:
            amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        cl = True if auto_cl else bool(channels_last)
        why = "bf16: the GPU supports bfloat16" if amp == "bf16" else "fp16: the GPU has no bfloat16"
        return Precision(amp, cl, f"auto on CUDA: {why if auto_amp else f'--amp {amp} given'}; channels-last {cl}")
    if not auto_amp and amp is not None:  # bf16 given: channels-last goes with it on the CPU
        cl = True if auto_cl else bool(channels_last)
        return Precision(amp, cl, f"auto on the CPU: channels-last {'on with' if cl else 'off, given, with'} {amp}")
    return _cpu_choice(auto_amp, channels_last, model, input_shape, _probe_batch(batch_size, input_shape), train)


def _probe_batch(batch_size: int, input_shape) -> int:
    pixels = 1
    for side in tuple(input_shape or ())[1:]:
        pixels *= int(side)
    return min(int(batch_size), PROBE_BATCH if pixels <= 64 * 64 else PROBE_BATCH_LARGE)


_ARM_NAMES = {"fp32": "fp32", "fp32_cl": "fp32 + channels-last", "bf16": "bf16", "bf16_cl": "bf16 + channels-last"}


def _cpu_choice(auto_amp: bool, channels_last, model, input_shape, batch: int, train: bool) -> Precision:
    """The CPU's choice where ``amp`` is ``auto`` or None (fp32) and something is ``auto``."""
    images = input_shape is None or len(input_shape) == 3
    if not images:
        channels_last = False  # not images: no memory format to choose
    auto_cl = channels_last == "auto"
    flag = native_bf16_flag() if auto_amp else None
    why = []
    if auto_amp and not flag:
        why.append("no native bf16: neither avx512_bf16 nor amx_bf16 in the CPU flags")
    if not auto_cl and images:
        why.append(f"channels-last {bool(channels_last)} given")
    layout = "_cl" if channels_last is True else ""
    unprobed = model is None or input_shape is None or os.environ.get("RESLAB_PROBE") == "0"
    if not (flag or auto_cl) or unprobed:  # nothing left to choose, or no probe: fp32 in the given layout
        if flag or auto_cl:
            why.append("nothing to probe" if model is None or input_shape is None else "RESLAB_PROBE=0: not probed")
        name = _ARM_NAMES["fp32" + layout]
        return Precision(None, channels_last is True, f"auto on the CPU: {name} ({'; '.join(why)})")
    arms = ("fp32", "fp32_cl") if auto_cl else ("fp32" + layout,)
    if flag:
        arms += ("bf16_cl" if auto_cl else "bf16" + layout,)
    times = probe_times(model, input_shape, batch, arms, train=train)
    found = []
    chosen = arms[0]
    if auto_cl:
        ratio = times["fp32"] / times["fp32_cl"]
        found.append(f"fp32 channels-last {ratio:.2f}x NCHW (needs {PROBE_MIN_CL_SPEEDUP}x)")
        chosen = "fp32_cl" if ratio >= PROBE_MIN_CL_SPEEDUP else "fp32"
    if flag:
        ratio = times[chosen] / times[arms[-1]]
        found.append(f"{_ARM_NAMES[arms[-1]]} {ratio:.2f}x {_ARM_NAMES[chosen]} (needs {PROBE_MIN_SPEEDUP}x; {flag})")
        chosen = arms[-1] if ratio >= PROBE_MIN_SPEEDUP else chosen
    what = "training steps" if train else "forward passes"
    why.append(f"probe of {what}: {', '.join(found)}")
    amp = "bf16" if chosen.startswith("bf16") else None
    return Precision(amp, chosen.endswith("_cl"), f"auto on the CPU: {_ARM_NAMES[chosen]} ({'; '.join(why)})")


def probe_times(
    model: nn.Module, input_shape: tuple[int, ...], batch: int, arms: tuple[str, ...], *, train: bool = True
) -> dict[str, float]:
    """The time of a step of a copy of ``model`` on random inputs (CPU) for each arm: ``"fp32"`` (NCHW),
    ``"fp32_cl"``, ``"bf16"`` (NCHW), ``"bf16_cl"`` (channels-last). Each arm's fastest of
    :data:`PROBE_STEPS` steps, the arms taking turns. The run's model, its BatchNorm statistics and every
    random generator are left as they were; one result per network shape, batch and arms is kept for the
    process."""
    params = sum(p.numel() for p in model.parameters())
    key = (type(model).__name__, params, tuple(input_shape), int(batch), bool(train), torch.get_num_threads(), arms)
    if key not in _probe_cache:
        with torch.random.fork_rng(devices=[]):
            gen = torch.Generator().manual_seed(0)
            x = torch.randn(int(batch), *input_shape, generator=gen)
            nets: dict[bool, nn.Module] = {}
            steps = {}
            for arm in arms:
                cl = arm.endswith("_cl")
                fmt = torch.channels_last if cl else torch.contiguous_format
                if cl not in nets:
                    nets[cl] = copy.deepcopy(model).cpu().train(train).to(memory_format=fmt)
                dtype = torch.bfloat16 if arm.startswith("bf16") else None
                steps[arm] = _step(nets[cl], x.contiguous(memory_format=fmt), dtype, train)
                steps[arm]()  # untimed: the first call's allocations and kernel choices
            best = dict.fromkeys(arms, float("inf"))
            for _ in range(PROBE_STEPS):  # the fastest: other work on a busy machine only ever adds time
                for arm in arms:
                    start = time.perf_counter()
                    steps[arm]()
                    best[arm] = min(best[arm], max(time.perf_counter() - start, 1e-9))
        _probe_cache[key] = best
    return dict(_probe_cache[key])


def _step(net: nn.Module, x: torch.Tensor, dtype: torch.dtype | None, train: bool):
    """One training step (forward, backward; no update) or forward pass of ``net`` on ``x``, as a function."""

    def step() -> None:
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None), torch.set_grad_enabled(train):
            out = net(x)
            out = out[0] if isinstance(out, (tuple, list)) else out
            if train:
                out.float().sum().backward()
        if train:
            net.zero_grad(set_to_none=True)

    return step


def inference_precision(
    amp: str | None, device: torch.device, *, checkpoint: dict | None, model: nn.Module, input_shape
) -> Precision:
    """The precision of an evaluation or prediction: ``amp`` as given, its layout by the rule above (forward
    passes); for ``"auto"`` the precision and layout a checkpoint's run trained with (so that its figures
    repeat), else (published weights) the rule above for forward passes."""
    if amp != "auto":
        return choose_precision(amp, "auto", device, model=model, input_shape=tuple(input_shape), train=False)
    if checkpoint is not None:
        config = checkpoint.get("config") or {}
        trained, cl = config.get("amp"), config.get("channels_last")
        return Precision(None if trained == "auto" else trained, cl is True)
    return choose_precision("auto", "auto", device, model=model, input_shape=tuple(input_shape), train=False)
