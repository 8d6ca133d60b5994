"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)``, self-describing.

A checkpoint holds the model (and EMA) weights, optimiser, scheduler and gradient-scaler states, the
random-number-generator states (torch, numpy, python, CUDA), the progress (epoch, step within the
epoch), the resolved configuration, the model name and constructor overrides, the class names and
the data ``info`` -- so evaluation, prediction and resuming need the file alone. Only tensors and
plain Python types are stored, which is what ``weights_only=True`` accepts.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError

FORMAT = "reslab-checkpoint"
VERSION = 1


def rng_state() -> dict[str, Any]:
    """The states of every random-number generator a run draws from, as tensors and plain types."""
    np_name, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64).copy()),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_cached),
        },
        "python": _nested_lists(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generator states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state(
        (npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached_gaussian"])
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def _nested_lists(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_nested_lists(v) for v in value]
    return value


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same directory, flushed to
    disk, then ``os.replace`` -- a crash or a second Ctrl-C never leaves a half-written checkpoint."""
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, "torch_version": str(torch.__version__), **state}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a reslab checkpoint (``weights_only=True``: no code runs while loading), onto the CPU.

    ``path`` may be a checkpoint file or a run directory (its ``last.pt``).

    Raises:
        CheckpointError: the file is missing, unreadable, corrupt, or not a reslab checkpoint
            (the message names the file).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, zip errors...
        lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
        reason = next((ln for ln in lines if "Unpickler error" in ln), lines[0] if lines else "")
        reason = f"{type(e).__name__}: {reason}" if reason else type(e).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt or truncated?): {reason[:200]}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a reslab checkpoint (no '{FORMAT}' marker)")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer reslab (checkpoint version {state['version']})")
    for key in ("model", "model_name", "config", "num_classes"):
        if key not in state:
            raise CheckpointError(f"{path} lacks {key!r}; it is incomplete")
    state["path"] = str(path)
    return state


def strip_compile_prefix(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove ``torch.compile``'s ``_orig_mod.`` prefix so checkpoints load into plain modules."""
    prefix = "_orig_mod."
    if any(k.startswith(prefix) for k in state_dict):
        return {k.removeprefix(prefix): v for k, v in state_dict.items()}
    return state_dict


def model_from_checkpoint(ckpt: dict[str, Any], *, model_name: str | None = None, ema: bool = False) -> torch.nn.Module:
    """Rebuild the checkpoint's model (registry name + constructor overrides) with its weights, in
    eval mode on the CPU.

    Args:
        ckpt: a checkpoint from :func:`load_checkpoint`.
        model_name: when given, the model the caller expects; a checkpoint of another model is refused.
        ema: load the exponential-moving-average weights instead of the trained ones.

    Raises:
        CheckpointError: another model than ``model_name``, no EMA weights although ``ema``, or
            weights that do not fit the rebuilt network.
    """
    from ..models import create_model, get_model_entry

    path = ckpt.get("path", "the checkpoint")
    saved = ckpt["model_name"]
    if model_name is not None and get_model_entry(model_name).name != saved:
        raise CheckpointError(f"{path} holds a {saved} model, not {model_name}; drop --model or pass its checkpoint")
    model = create_model(saved, num_classes=ckpt["num_classes"], in_chans=ckpt.get("in_chans"),
                         **ckpt.get("model_args", {}))  # fmt: skip
    if ema:
        if not ckpt.get("ema"):
            raise CheckpointError(f"{path} holds no EMA weights (the run was trained without --ema)")
        weights = ckpt["ema"]["module"]
    else:
        weights = ckpt["model"]
    try:
        model.load_state_dict(strip_compile_prefix(weights))
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(f"{path}: the weights do not fit {saved}: {first[:200]}") from None
    return model.eval()
