"""Where and how a run executes: device choice, mixed precision, channels-last, torch.compile.

The same training code runs on CPU and CUDA; this module turns the configuration's execution options
into the device, the autocast context and the (optionally compiled) module, refusing combinations
that cannot work with a :class:`ConfigError` instead of failing mid-run.
"""

from __future__ import annotations

import contextlib
import os

import torch
from torch import nn

from ..errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        ConfigError: an unknown device, or CUDA asked for where none is available.
    """
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for, but CUDA is not available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type != "cpu":
        raise ConfigError(f"device {name!r} is not supported (use auto, cpu, cuda or cuda:N)")
    return device


def check_amp(amp: str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``--amp`` on ``device`` (None: full precision).

    Raises:
        ConfigError: fp16 on the CPU (PyTorch's CPU autocast is meant for bf16), bf16 on a GPU
            without bf16 support, or an unknown mode.
    """
    if amp is None or amp == "auto":  # auto: chosen later, for the run's network (training/precision.py)
        return None
    if amp == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError("--amp bf16: this GPU does not support bfloat16; use --amp fp16")
        return torch.bfloat16
    if amp == "fp16":
        if device.type != "cuda":
            raise ConfigError("--amp fp16 needs a CUDA device; on the CPU use --amp bf16 (or no --amp)")
        return torch.float16
    raise ConfigError(f"--amp must be bf16 or fp16, got {amp!r}")


def autocast(device: torch.device, dtype: torch.dtype | None):
    """The autocast context for ``dtype`` (a no-op context when None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_grad_scaler(device: torch.device, dtype: torch.dtype | None):
    """A GradScaler for fp16 (whose small range needs loss scaling); None for bf16 and fp32."""
    if dtype is torch.float16:
        return torch.amp.GradScaler(device.type)
    return None


def check_compile(device: torch.device) -> None:
    """Refuse ``--compile`` where torch.compile cannot work, before any time is spent.

    Raises:
        ConfigError: no dynamo support on this Python/PyTorch, or no C++ compiler for the CPU
            backend.
    """
    try:
        import torch._dynamo as dynamo
    except Exception as e:  # pragma: no cover - torch builds without dynamo
        raise ConfigError(f"--compile: torch.compile is unavailable in this PyTorch build ({e})") from None
    supported = getattr(dynamo, "is_dynamo_supported", None) or getattr(
        getattr(dynamo, "eval_frame", None), "is_dynamo_supported", lambda: True
    )
    if not supported():
        raise ConfigError("--compile: torch.compile is not supported on this Python / PyTorch; drop --compile")
    if device.type == "cpu":
        import shutil

        if not any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "c++", "clang++") if c):
            raise ConfigError("--compile on the CPU needs a C++ compiler (g++ or clang++); install one or drop it")


#: steps between the host's looks at the running training figures on an accelerator (on the CPU: every step)
ACCELERATOR_SYNC_EVERY = 20


def host_sync_interval(device: torch.device) -> int:
    """How many training steps pass between host synchronisations (the non-finite loss check, the progress
    bar's figures): 1 on the CPU, where reading a tensor costs nothing, and :data:`ACCELERATOR_SYNC_EVERY`
    on CUDA, where each read would make the host wait for the GPU to drain its queue, leaving it idle
    while Python prepares the next step. A non-finite loss is still caught, at most that many steps late,
    and named by the step where it first appeared."""
    return 1 if torch.device(device).type == "cpu" else ACCELERATOR_SYNC_EVERY


def prepare_model(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """Move ``model`` to ``device`` (channels-last memory format when asked); returns it."""
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def as_layout(images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A batch in channels-last memory format when asked and it is 4-D (N, C, H, W); else as it is."""
    if channels_last and images.dim() == 4:
        return images.contiguous(memory_format=torch.channels_last)
    return images


def compile_model(model: nn.Module) -> nn.Module:
    """``torch.compile(model)``; the caller keeps the plain module for checkpoints and EMA."""
    return torch.compile(model)
