"""safetensors files: the tensors, plus (in files reslab writes) what is needed to rebuild and use the
model, as JSON strings in the file's metadata. Files from elsewhere (timm's ``model.safetensors``, say)
have no such metadata and are read as a torchvision-style state dict.

The metadata keys are defined here, once (:data:`METADATA_KEYS`); :func:`save_safetensors` writes them.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from ...errors import CheckpointError
from . import Loaded
from .torchvision import clean_keys

LAYOUT = "safetensors"
#: the value of the ``format`` key in the files reslab writes
FORMAT = "reslab-safetensors"
#: metadata key -> what it holds (every value a JSON string; safetensors metadata is str -> str)
METADATA_KEYS = {
    "format": f"{FORMAT!r}: a file reslab wrote",
    "reslab_version": "the reslab version that wrote it",
    "model_name": "the reslab registry name",
    "model_args": "constructor arguments beyond the registered spec (a dict)",
    "num_classes": "classifier outputs",
    "in_chans": "input channels",
    "input_size": "(C, H, W) the weights were made for (a list), or null",
    "class_names": "the classifier's class names, index = label (a list), or null",
    "preprocessing": "a Preprocessing dict, or null",
}


def sniff(path: Path, obj: Any) -> bool:
    if obj is not None:
        return False
    # an 8-byte little-endian header length, then the JSON header
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < os.path.getsize(path)


def read(path: Path, obj: Any) -> Loaded:
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path), device="cpu")
    except Exception as e:  # safetensors raises its own SafetensorError and others
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CheckpointError(f"{path} is a safetensors file that cannot be read: {reason}") from None
    if metadata.get("format") != json.dumps(FORMAT):
        return Loaded(clean_keys(tensors), LAYOUT)
    try:
        values = {k: json.loads(metadata[k]) for k in METADATA_KEYS if k in metadata}
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: reslab metadata that is not JSON ({e})") from None
    meta = {k: values.get(k) for k in METADATA_KEYS if k not in ("format", "model_args")}
    return Loaded(tensors, LAYOUT, model_args=dict(values.get("model_args") or {}), meta=meta)


def save_safetensors(
    model: nn.Module,
    path: str | Path,
    *,
    model_name: str | None = None,
    model_args: dict[str, Any] | None = None,
    class_names: list[str] | None = None,
    preprocessing: dict[str, Any] | None = None,
    input_size: tuple[int, int, int] | list[int] | None = None,
) -> Path:
    """Write ``model``'s state dict to ``path`` as safetensors, with reslab's metadata, atomically
    (a temporary file renamed into place), so ``create_model(name, pretrained=path)`` rebuilds it.

    The metadata: :data:`METADATA_KEYS`, each value JSON in the file's ``__metadata__`` (``input_size``:
    default the weights' preprocessing's, else the registry's).

    ``model_name`` / ``model_args`` default to the model's ``model_name`` / ``model_args`` attributes
    (set by ``create_model``; ``model_args`` also by the pretrained builder); ``class_names`` and
    ``preprocessing`` to its ``pretrained_cfg``'s, where it has one.

    Raises:
        CheckpointError: no model name known, or metadata that is not JSON-serialisable.
    """
    from safetensors.torch import save

    from ... import __version__

    cfg = getattr(model, "pretrained_cfg", None) or {}
    name = model_name or getattr(model, "model_name", None)
    if not name:
        raise CheckpointError("save_safetensors needs model_name= (the model has no model_name attribute)")
    if input_size is None:
        input_size = _default_input_size(name, cfg)
    values = {
        "format": FORMAT,
        "reslab_version": __version__,
        "model_name": name,
        "model_args": dict(model_args if model_args is not None else getattr(model, "model_args", {}) or {}),
        "num_classes": int(getattr(model, "num_classes", 0)),
        "in_chans": int(getattr(model, "in_chans", 3)),
        "input_size": [int(v) for v in input_size] if input_size is not None else None,
        "class_names": class_names if class_names is not None else cfg.get("class_names"),
        "preprocessing": preprocessing if preprocessing is not None else cfg.get("preprocessing"),
    }
    try:
        metadata = {k: json.dumps(v) for k, v in values.items()}
    except TypeError as e:
        raise CheckpointError(f"safetensors metadata must be JSON-serialisable: {e}") from None
    # safetensors refuses shared or non-contiguous storage: give it plain contiguous copies
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        # serialised in memory, written by Python: a failed write (a full disk) is an OSError with its errno
        data = save(tensors, metadata=metadata)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _default_input_size(name: str, cfg: dict[str, Any]) -> tuple[int, int, int] | None:
    """The input size the weights were made for: their preprocessing's, else the registry entry's."""
    size = (cfg.get("preprocessing") or {}).get("input_size") if isinstance(cfg, dict) else None
    if size:
        return tuple(int(v) for v in size)  # type: ignore[return-value]
    from ...models.registry import get_model_entry

    try:
        return tuple(get_model_entry(name).input_size)  # type: ignore[return-value]
    except Exception:  # a name the registry does not know (a user's own model)
        return None
