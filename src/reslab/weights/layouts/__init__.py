"""Readers of weight files, one module per source layout, recognised from the file's content.

Each layout module defines ``LAYOUT`` (its name), ``sniff(path, obj) -> bool`` (whether a file is in
this layout; ``obj`` is what ``torch.load(weights_only=True)`` gave, or None for a file torch cannot
read, such as HDF5) and ``read(path, obj) -> Loaded``. :func:`read_weights` tries them in
:data:`reslab.weights.registry.LAYOUTS`' order, most specific first.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...errors import CheckpointError
from ..registry import LAYOUTS as ORDER  # the layout modules, in the order they are tried


@dataclass
class Loaded:
    """Weights read from a file, in reslab's key names.

    Attributes:
        state_dict: the weights under reslab's module names, or None for a layout that needs the model to
            convert (``convert``).
        layout: the layout's name.
        model_args: constructor arguments the file implies (e.g. akamaster's ``shortcut_pad="split"``).
        meta: what the file says about itself, where it does: ``model_name``, ``num_classes``,
            ``class_names``, ``preprocessing`` (a :class:`~reslab.weights.Preprocessing` dict).
        convert: for layouts keyed by another library's layer names (Keras): ``convert(model)`` copies
            the weights into ``model`` in place.
    """

    state_dict: dict[str, torch.Tensor] | None
    layout: str
    model_args: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    convert: Callable[[nn.Module], None] | None = None


def _layout_module(name: str):
    return importlib.import_module(f"{__name__}.{name}")


def torch_load(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU, or None where ``path`` is not a file torch
    reads (an HDF5 or safetensors file, say); a corrupt PyTorch file (one whose zip members fail their CRC-32
    check included) raises :class:`CheckpointError`."""
    with open(path, "rb") as f:
        head = f.read(8)
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):
        return None
    from ...checksum import zip_crc_failure

    failure = zip_crc_failure(path)  # torch.load reads a flipped byte inside a tensor as a wrong weight
    if failure is not None:
        raise CheckpointError(f"corrupt weights file {path}: {failure} -- its bytes changed since it was written")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, zip errors...
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CheckpointError(f"{path} is a PyTorch file that cannot be read safely (weights_only): {reason}") from None


def read_weights(path: str | Path, layout: str | None = None) -> Loaded:
    """Read a weight file in any supported layout (``layout``: insist on one).

    Raises:
        CheckpointError: the file is missing, unreadable, or in no supported layout (the message says
            what the file holds and which layouts were tried).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"weights file {path} not found")
    obj = torch_load(path)
    names = ORDER if layout is None else (layout,)
    for name in names:
        module = _layout_module(name)
        if module.sniff(path, obj):
            return module.read(path, obj)
    if layout is not None:
        raise CheckpointError(f"{path} is not in the {layout} layout its weights entry names")
    raise CheckpointError(
        f"{path} is in no weights layout reslab reads ({describe_object(obj)}; tried {', '.join(ORDER)})"
    )


def describe_object(obj: Any) -> str:
    """A few words on what a loaded file holds, for error messages."""
    if obj is None:
        return "not a PyTorch file"
    if isinstance(obj, dict):
        keys = list(obj)[:4]
        more = ", ..." if len(obj) > 4 else ""
        return f"a dict with keys {', '.join(map(str, keys))}{more}"
    return f"a {type(obj).__name__}"


def tensor_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    """``obj`` as a flat state dict (string keys, tensor values), or None if it is not one."""
    if (
        isinstance(obj, dict)
        and obj
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    ):
        return obj
    return None


def strip_prefixes(state_dict: dict[str, torch.Tensor], prefixes: tuple[str, ...] = ("module.", "_orig_mod.")):
    """Remove the wrappers' key prefixes (DataParallel / DDP's ``module.``, ``torch.compile``'s
    ``_orig_mod.``), wherever every key carries them, repeatedly (``module._orig_mod.conv1.weight``)."""
    changed = True
    while changed:
        changed = False
        for prefix in prefixes:
            if state_dict and all(k.startswith(prefix) for k in state_dict):
                state_dict = {k[len(prefix) :]: v for k, v in state_dict.items()}
                changed = True
    return state_dict


def describe_mismatch(model: torch.nn.Module, weights: dict[str, torch.Tensor], first: int = 3) -> str:
    """How ``weights`` differ from ``model``'s state dict: the first few missing and unexpected keys and
    shape mismatches (checkpoint vs model), e.g. ``missing conv1.weight, ... (19 in all)``."""
    own = model.state_dict()

    def listed(keys: list[str]) -> str:
        more = f", ... ({len(keys)} in all)" if len(keys) > first else ""
        return ", ".join(keys[:first]) + more

    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    shapes = [
        f"{k} (checkpoint {list(weights[k].shape)}, model {list(own[k].shape)})"
        for k in own
        if k in weights and tuple(weights[k].shape) != tuple(own[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"missing {listed(missing)}")
    if unexpected:
        parts.append(f"unexpected {listed(unexpected)}")
    if shapes:
        parts.append(f"shape mismatch {listed(shapes)}")
    return "; ".join(parts)
