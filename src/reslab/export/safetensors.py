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
from .metadata import ExportOptions


def export_safetensors(model: nn.Module, path: str | Path, options: ExportOptions) -> tuple[Path, CheckResult]:
    """Write ``model``'s weights and metadata to ``path``; checked by ``create_model(model_name,
    pretrained=path)`` against ``options.reference`` (default ``model``) before it is renamed into place.

    ``options.batch`` does not apply (weights have no batch).

    Raises:
        ExportError: the rebuilt model differs from the original beyond :func:`.checks.tolerance`.
    """
    from ..weights.layouts.safetensors import save_safetensors

    path = Path(path)
    with atomic_path(path) as tmp:
        save_safetensors(
            model,
            tmp,
            model_name=options.model_name,
            model_args=dict(options.model_args or {}),
            class_names=options.class_names,
            preprocessing=options.preprocessing,
            input_size=options.input_size,
        )
        result = check_safetensors(
            tmp,
            options.checked_against(model),
            options.input_size,
            model_name=options.model_name,
            what=f"safetensors export of {options.model_name}",
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


def read_safetensors_metadata(path: str | Path) -> dict[str, Any]:
    """The reslab metadata of a safetensors file written by :func:`export_safetensors`, parsed.

    Raises:
        DataError: not a safetensors file, or one without reslab metadata.
    """
    from ..errors import DataError, ReslabError
    from ..weights.layouts.safetensors import read

    path = Path(path)
    try:
        loaded = read(path, None)
    except ReslabError as e:
        raise DataError(str(e)) from None
    if not loaded.meta:
        raise DataError(f"{path} has no reslab metadata (it was not written by reslab)")
    return {**loaded.meta, "model_args": loaded.model_args}
