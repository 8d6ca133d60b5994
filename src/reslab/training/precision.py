"""``amp: auto`` and ``channels_last: auto``: the fast precision for the machine a run is on, chosen once.

The choice (:func:`choose_precision`), where the configuration says ``auto`` (the default):

- **CUDA**: bf16 autocast where the GPU supports bfloat16 (Ampere and later), else fp16 with the gradient
  scaler; channels-last on.
- **CPU**: bf16 only where the processor has native bf16 instructions (the ``avx512_bf16`` or ``amx_bf16``
  flag of ``/proc/cpuinfo``: read, not guessed from the torch build; elsewhere bf16 is emulated and many
  times slower) *and* a short probe -- a few training steps of the run's own network on a small batch, in
  fp32 and in bf16 + channels-last -- measures bf16 at least :data:`PROBE_MIN_SPEEDUP` times faster; else
  fp32. Channels-last goes with bf16 on the CPU (oneDNN's bf16 convolutions are fastest in NHWC; in fp32 it
  gains nothing there).

An explicit value (``--amp bf16|fp16|none``, ``--channels-last`` / ``--no-channels-last``) is never
changed. The run's log says what was chosen and why, and ``config.yaml`` records the chosen values (a
resumed run keeps them). ``RESLAB_CPU_FLAGS`` (space-separated flags), where set, replaces what
``/proc/cpuinfo`` says: to rule bf16 out on a machine (``RESLAB_CPU_FLAGS=""``), or to test each branch.
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
#: bf16 must beat fp32 by this factor in the probe to be chosen on the CPU (timing noise stays below it)
PROBE_MIN_SPEEDUP = 1.2
#: the probe's batch (at most the run's) and its timed steps (after one untimed step each)
PROBE_BATCH = 16
PROBE_STEPS = 3

_probe_cache: dict[tuple, float] = {}


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
            CPU's choice is fp32).
        batch_size: the run's batch (the probe uses at most :data:`PROBE_BATCH` of it).
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
    if not auto_amp:  # only channels_last is auto: it goes with bf16 on the CPU
        cl = amp == "bf16"
        return Precision(amp, cl, f"auto on the CPU: channels-last {'on with bf16' if cl else 'off (fp32)'}")
    amp, why = _cpu_amp(model, input_shape, batch_size, train)
    cl = amp == "bf16" if auto_cl else bool(channels_last)
    if amp == "bf16" and cl:
        why = why.replace("bf16 (", "bf16 + channels-last (", 1)
    return Precision(amp, cl, f"auto on the CPU: {why}")


def _cpu_amp(model: nn.Module | None, input_shape, batch_size: int, train: bool) -> tuple[str | None, str]:
    """``amp: auto`` on the CPU: bf16 or None (fp32), and why."""
    flag = native_bf16_flag()
    if flag is None:
        return None, (
            "fp32 (no native bf16 instructions: neither avx512_bf16 nor amx_bf16 in the CPU flags, so bf16 would "
            "be emulated)"
        )
    if model is None or input_shape is None:
        return None, "fp32 (nothing to probe)"
    speedup = probe_bf16_speedup(model, input_shape, min(int(batch_size), PROBE_BATCH), train=train)
    what = "training steps" if train else "forward passes"
    if speedup >= PROBE_MIN_SPEEDUP:
        return "bf16", f"bf16 ({flag}; probe: {speedup:.2f}x fp32's {what})"
    return (
        None,
        f"fp32 ({flag}, but the probe measured bf16 at {speedup:.2f}x fp32's {what}, below {PROBE_MIN_SPEEDUP}x)",
    )


def probe_bf16_speedup(model: nn.Module, input_shape: tuple[int, ...], batch: int, *, train: bool = True) -> float:
    """fp32 time / bf16 (+ channels-last) time of a step (the fastest of :data:`PROBE_STEPS`) of a copy
    of ``model`` on random inputs (CPU). The run's model, its BatchNorm statistics and every random
    generator are left as they were; one result per network shape and batch is kept for the process."""
    params = sum(p.numel() for p in model.parameters())
    key = (type(model).__name__, params, tuple(input_shape), int(batch), bool(train), torch.get_num_threads())
    if key not in _probe_cache:
        with torch.random.fork_rng(devices=[]):
            net = copy.deepcopy(model).cpu().train(train)
            gen = torch.Generator().manual_seed(0)
            x = torch.randn(int(batch), *input_shape, generator=gen)
            fp32 = _time_steps(net, x, None, train)
            net_cl = net.to(memory_format=torch.channels_last)
            bf16 = _time_steps(net_cl, x.contiguous(memory_format=torch.channels_last), torch.bfloat16, train)
        _probe_cache[key] = fp32 / max(bf16, 1e-9)
    return _probe_cache[key]


def _time_steps(net: nn.Module, x: torch.Tensor, dtype: torch.dtype | None, train: bool) -> float:
    def step() -> None:
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None), torch.set_grad_enabled(train):
            out = net(x)
            out = out[0] if isinstance(out, (tuple, list)) else out
            if train:
                out.float().sum().backward()
        if train:
            net.zero_grad(set_to_none=True)

    step()  # untimed: the first call's allocations and kernel choices
    best = float("inf")
    for _ in range(PROBE_STEPS):  # the fastest step: other work on a busy machine only ever adds time
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best


def inference_amp(
    amp: str | None, device: torch.device, *, checkpoint: dict | None, model: nn.Module, input_shape
) -> str | None:
    """The autocast of an evaluation or prediction: ``amp`` as given, or for ``"auto"`` the precision a
    checkpoint's run trained with (so that its figures repeat), else (published weights) the rule above
    for forward passes."""
    if amp != "auto":
        return amp
    if checkpoint is not None:
        trained = (checkpoint.get("config") or {}).get("amp")
        return None if trained == "auto" else trained
    return choose_precision("auto", False, device, model=model, input_shape=tuple(input_shape), train=False).amp
