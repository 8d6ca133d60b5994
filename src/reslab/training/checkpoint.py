"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)``, self-describing.

A checkpoint holds the model (and EMA) weights, optimiser, scheduler and gradient-scaler states, the
random-number-generator states (torch, numpy, python, CUDA), the progress (epoch, step within the
epoch), the resolved configuration, the model name and constructor overrides, the class names and
the data ``info`` and the directory the run was started from (``cwd``: what a relative ``data_dir`` is
relative to) -- so evaluation, prediction and resuming need the file alone. Only tensors and plain Python
types are stored, which is what ``weights_only=True`` accepts.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError
from ..weights.layouts import describe_mismatch, strip_prefixes
from ..weights.layouts.reslab import FORMAT  # one marker for the writer and the readers
from .config import FIELDS, TrainConfig

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
    disk, then ``os.replace`` -- a crash or a second Ctrl-C never leaves a half-written checkpoint.

    Raises:
        CheckpointError: the file could not be written (a full disk, say): one line saying why and
            that the previous ``path`` is intact (the temporary file is removed).
    """
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, "torch_version": str(torch.__version__), "cwd": _cwd(), **state}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        if (
            isinstance(e, RuntimeError)
            and _os_error(e) is None
            and "inline_container" not in str(e)
            and "write" not in str(e)
        ):
            raise  # not a write failure
        raise CheckpointError(f"could not write {path}: {write_failure(e, path.parent)}; {_previous(path)}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _cwd() -> str | None:
    """The working directory (what the run's relative paths are relative to), None where it is gone."""
    try:
        return os.getcwd()
    except OSError:
        return None


def _os_error(e: BaseException | None) -> OSError | None:
    """The OSError behind ``e`` (torch wraps a failed ``file.write`` in a RuntimeError)."""
    seen = 0
    while e is not None and seen < 5:
        if isinstance(e, OSError):
            return e
        e, seen = e.__cause__ or e.__context__, seen + 1
    return None


def write_failure(e: BaseException, folder: Path) -> str:
    """Why a write failed, in a few words: the OS's reason ("no space left on device"), else a guess from
    the free space (torch's "[enforce fail at inline_container.cc...] file write failed" has no errno)."""
    os_error = _os_error(e)
    if os_error is not None and os_error.errno is not None:
        return os.strerror(os_error.errno).lower()
    try:
        if shutil.disk_usage(folder).free < 16 * 2**20:
            return os.strerror(errno.ENOSPC).lower()
    except OSError:
        pass
    first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
    return f"the write failed ({first[:120]})"


def _previous(path: Path) -> str:
    if not path.exists():
        return "nothing was replaced"
    epoch = (peek_checkpoint(path) or {}).get("epoch")
    return f"the previous {path} is intact" + (f" (epoch {epoch})" if epoch is not None else "")


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
    other = other_format(path)
    if other is not None:
        what, use = OTHER_FORMATS[other]
        raise CheckpointError(
            f"{path} is {what}, not a reslab checkpoint: {use.format(path=path)}; --checkpoint takes the .pt "
            "files reslab train writes (RUN_DIR/best.pt)"
        )
    check_integrity(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, zip errors...
        if not _looks_like_torch_file(path):
            raise CheckpointError(f"{path} is not a reslab checkpoint (nor any PyTorch file)") from None
        lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
        reason = next((ln for ln in lines if "Unpickler error" in ln), lines[0] if lines else "")
        reason = f"{type(e).__name__}: {reason}" if reason else type(e).__name__
        raise CheckpointError(f"{path} is corrupt or truncated (not a readable checkpoint): {reason[:200]}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a reslab checkpoint (no '{FORMAT}' marker)")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer reslab (checkpoint version {state['version']})")
    for key in ("model", "model_name", "config", "num_classes"):
        if key not in state:
            raise CheckpointError(f"{path} lacks {key!r}; it is incomplete")
    state["path"] = str(path)
    return state


#: the files ``reslab export`` writes (and a weights file): what each is, and what takes it
OTHER_FORMATS = {
    "torchscript": (
        "a TorchScript file (reslab export --format torchscript)",
        "load it with torch.jit.load('{path}')",
    ),
    "export": (
        "a torch.export program (.pt2, reslab export --format export)",
        "load it with torch.export.load('{path}').module()",
    ),
    "onnx": (
        "an ONNX file (reslab export --format onnx)",
        "classify images with it: reslab predict --onnx {path} IMAGE",
    ),
    "safetensors": (
        "a safetensors weights file (reslab export --format safetensors)",
        "use it as weights: --model MODEL --pretrained {path}",
    ),
}


def other_format(path: str | Path) -> str | None:
    """Which of :data:`OTHER_FORMATS` a file is, by its contents (ONNX: by its ``.onnx`` name), or None:
    a TorchScript or torch.export zip (their members), a safetensors file (its JSON header)."""
    import json
    import zipfile

    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(9)
        if head.startswith(b"PK\x03\x04"):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
            if any("/code/__torch__" in n or n.endswith("/constants.pkl") for n in names):
                return "torchscript"
            if any(n.endswith(("/archive_format", "/models/model.json")) for n in names):
                return "export"
            return None
        if len(head) == 9 and head[8:9] == b"{":
            size = int.from_bytes(head[:8], "little")
            with open(path, "rb") as f:
                f.seek(8)
                header = json.loads(f.read(min(size, 1 << 24)))
            return "safetensors" if isinstance(header, dict) else None
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
    return "onnx" if path.suffix.lower() == ".onnx" else None


def check_integrity(path: str | Path) -> None:
    """Check that a checkpoint's bytes are the ones written: the CRC-32 of every member of torch's zip file
    (the weights, the pickled fields) -- ``torch.load`` does not, and a flipped byte inside a tensor loads as a
    wrong weight (NaN outputs, or quietly wrong scores).

    Raises:
        CheckpointError: one line, ``corrupt checkpoint FILE: ...`` naming the damaged member.
    """
    from ..checksum import zip_crc_failure

    failure = zip_crc_failure(path)
    if failure is not None:
        raise CheckpointError(
            f"corrupt checkpoint {path}: {failure} -- its bytes changed since reslab wrote it (a damaged disk "
            "or copy); restore it from a copy or train again"
        )


def _looks_like_torch_file(path: Path) -> bool:
    """Whether ``path`` starts as torch.save's files do: a zip archive, or the legacy pickle format."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") or head.startswith(b"\x80\x02\x8a")  # legacy: the pickled magic number


def peek_checkpoint(path: str | Path) -> dict[str, Any] | None:
    """A reslab checkpoint's contents, memory-mapped (no tensor is read until used: cheap for its
    plain fields such as ``epoch``), or None where ``path`` is missing, unreadable or not one."""
    path = Path(path)
    if not path.is_file() or not _looks_like_torch_file(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    return state if isinstance(state, dict) and state.get("format") == FORMAT else None


def is_reslab_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a file holding reslab's checkpoint marker."""
    return peek_checkpoint(path) is not None


def checkpoint_config(ckpt: dict[str, Any]) -> TrainConfig:
    """The validated training configuration stored in a checkpoint.

    Raises:
        CheckpointError: a stored configuration this reslab cannot take (an unknown key, a bad value),
            naming the file and the key.
    """
    path = ckpt.get("path", "the checkpoint")
    stored = ckpt.get("config")
    if not isinstance(stored, dict):
        raise CheckpointError(f"{path}: its stored configuration is not a mapping ({type(stored).__name__})")
    unknown = [k for k in stored if k not in FIELDS]
    if unknown:
        raise CheckpointError(
            f"{path}: its stored configuration has an unknown configuration key {unknown[0]!r} "
            "(written by another reslab version?)"
        )
    try:
        return TrainConfig(**stored).validate()
    except (ConfigError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: its stored configuration does not fit this reslab: {e}") from None


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
    from ..models import build_model, get_model_entry

    path = ckpt.get("path", "the checkpoint")
    saved = ckpt["model_name"]
    if model_name is not None and get_model_entry(model_name).name != saved:
        raise CheckpointError(f"{path} holds a {saved} model, not {model_name}; drop --model or pass its checkpoint")
    model = build_model(
        saved, num_classes=ckpt["num_classes"], in_chans=ckpt.get("in_chans"), **ckpt.get("model_args", {})
    )
    if hasattr(model, "check_weights_revision"):
        model.check_weights_revision(ckpt.get("arch_revision"), str(path))
    if ema:
        if not ckpt.get("ema"):
            raise CheckpointError(f"{path} holds no EMA weights (the run was trained without --ema)")
        weights = ckpt["ema"]["module"]
    else:
        weights = ckpt["model"]
    weights = strip_prefixes(weights, ("_orig_mod.",))
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        detail = describe_mismatch(model, weights) or str(e).strip().splitlines()[0][:200]
        raise CheckpointError(f"{path}: the weights do not fit {saved}: {detail}") from None
    return model.eval()
