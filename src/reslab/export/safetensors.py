"""safetensors: the weights with reslab's metadata (:func:`reslab.weights.layouts.safetensors.save_safetensors`),
checked by rebuilding the model the way a user does -- ``create_model(name, pretrained="model.safetensors")``
-- and comparing its outputs with the original's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ExportError
from .checks import CheckResult, atomic_path, check_inputs, compare, inference_module


def export_safetensors(
    model: nn.Module,
    path: str | Path,
    *,
    input_size: tuple[int, int, int] | list[int],
    class_names: list[str] | None,
    preprocessing: dict[str, Any] | None,
    model_name: str,
    model_args: dict[str, Any] | None,
    batch: int = 1,
    reference: nn.Module | None = None,
) -> tuple[Path, CheckResult]:
    """Write ``model``'s weights and metadata to ``path``; checked by ``create_model(model_name,
    pretrained=path)`` against ``reference`` (default ``model``) before it is renamed into place.

    ``batch`` is accepted for a uniform signature (weights have no batch).

    Raises:
        ExportError: the rebuilt model differs from the original beyond :func:`.checks.tolerance`.
    """
    from ..weights.layouts.safetensors import save_safetensors

    del batch
    path = Path(path)
    with atomic_path(path) as tmp:
        save_safetensors(
            model,
            tmp,
            model_name=model_name,
            model_args=dict(model_args or {}),
            class_names=class_names,
            preprocessing=preprocessing,
        )
        result = check_safetensors(
            tmp,
            reference if reference is not None else model,
            input_size,
            model_name=model_name,
            what=f"safetensors export of {model_name}",
        )
    return path, result


def check_safetensors(
    path: str | Path, model: nn.Module, input_size, *, model_name: str, what: str | None = None
) -> CheckResult:
    """``create_model(model_name, pretrained=path)`` against ``model`` on random inputs (batch 2).

    Raises:
        ExportError: the file does not rebuild the model, or outputs differ beyond :func:`.checks.tolerance`.
    """
    from ..errors import ReslabError
    from ..factory import create_model

    what = what or str(path)
    try:
        rebuilt = create_model(model_name, pretrained=str(path))
    except ReslabError as e:
        raise ExportError(f"{what}: create_model({model_name!r}, pretrained=...) cannot read it back: {e}") from None
    x = check_inputs(input_size)
    with torch.no_grad():
        got = inference_module(rebuilt)(x)
        expected = inference_module(model)(x)
    return compare(expected, got, "create_model(pretrained=file)", what)
