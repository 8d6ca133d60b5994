"""The formats ``reslab export`` writes, their file extensions, and one entry point for all of them
(:func:`export_model`); which existing files an export may replace (:func:`check_export_out`).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, ReslabError

if TYPE_CHECKING:  # torch is imported when a model is exported, not when the CLI lists the formats
    from torch import nn

    from .checks import CheckResult
    from .metadata import ExportOptions


@dataclass(frozen=True)
class Format:
    """An export format: its ``--format`` name, file extension, one-line description, and the functions that
    write and read it (``"module:function"`` in :mod:`reslab.export`, imported when used, so that listing the
    formats needs no torch). Every writer is ``(model, path, ExportOptions) -> (path, CheckResult)``; every
    reader ``(path) -> metadata dict``."""

    name: str
    extension: str
    description: str
    writer: str
    reader: str

    def export(self, model: nn.Module, path: str | Path, options: ExportOptions) -> tuple[Path, CheckResult]:
        """Write ``model`` to ``path`` in this format, checked (see :func:`export_model`)."""
        return _function(self.writer)(model, path, options)

    def read_metadata(self, path: str | Path) -> dict[str, Any]:
        """The reslab metadata of a file of this format, parsed."""
        return _function(self.reader)(path)


def _function(ref: str):
    module, name = ref.split(":")
    return getattr(importlib.import_module(f".{module}", __package__), name)


FORMATS = {
    f.name: f
    for f in (
        Format(
            "onnx",
            ".onnx",
            "ONNX (torch.onnx.export, dynamo exporter), checked with onnxruntime",
            "onnx:export_onnx",
            "onnx:read_onnx_metadata",
        ),
        Format(
            "torchscript",
            ".torchscript.pt",
            "TorchScript (torch.jit.trace), checked by torch.jit.load",
            "torchscript:export_torchscript",
            "torchscript:read_torchscript_metadata",
        ),
        Format(
            "export",
            ".pt2",
            "torch.export program (torch.export.save), checked by torch.export.load",
            "program:export_program",
            "program:read_program_metadata",
        ),
        Format(
            "safetensors",
            ".safetensors",
            "weights + metadata, checked with create_model(pretrained=)",
            "safetensors:export_safetensors",
            "safetensors:read_safetensors_metadata",
        ),
    )
}


def get_format(name: str) -> Format:
    """The :class:`Format` called ``name``.

    Raises:
        ConfigError: an unknown name (lists the known ones).
    """
    if name not in FORMATS:
        raise ConfigError(f"unknown export format {name!r}: choose one of {', '.join(FORMATS)}")
    return FORMATS[name]


def default_out(model_name: str, fmt: str) -> Path:
    """Where an export goes without ``--out``: ``MODEL.EXT`` in the current directory."""
    return Path(f"{model_name}{get_format(fmt).extension}")


def read_export_metadata(path: str | Path, fmt: str) -> dict[str, Any]:
    """The reslab metadata of an exported file of format ``fmt``, parsed.

    Raises:
        ConfigError: an unknown format. DataError: not such a file, or one without reslab metadata.
    """
    return get_format(fmt).read_metadata(path)


def check_export_out(path: str | Path, fmt: str) -> Path:
    """Refuse, before any work, an ``--out`` an export cannot use: a directory, a folder that does not exist
    or cannot be written, or an existing file that is not a reslab export of the same format (a user's file
    is never replaced; a previous export is).

    Raises:
        ConfigError: naming ``--out`` and the problem.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(
            f"--out {path} is a directory; --out takes a file name "
            f"(e.g. {path / ('model' + get_format(fmt).extension)})"
        )
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise ConfigError(f"--out {path}: the folder {folder} {what}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {path}: the folder {folder} is not writable")
    if path.exists():
        try:
            read_export_metadata(path, fmt)
        except ReslabError:
            raise ConfigError(
                f"--out {path} exists and is not a reslab {fmt} export; it is left as it is: choose another --out"
            ) from None
        if not os.access(path, os.W_OK):
            raise ConfigError(f"--out {path} is not writable (permission denied)")
    return path


def export_model(
    model: nn.Module,
    path: str | Path,
    fmt: str,
    *,
    input_size: tuple[int, int, int] | list[int],
    class_names: list[str] | None,
    preprocessing: dict[str, Any] | None,
    model_name: str,
    model_args: dict[str, Any] | None,
    opset: int | None = None,
    batch: int = 1,
    reference: nn.Module | None = None,
) -> tuple[Path, CheckResult]:
    """Export ``model`` to ``path`` in format ``fmt`` (see :data:`FORMATS`), checked against ``reference``
    (default ``model``) in PyTorch before the file is renamed into place.

    Raises:
        ConfigError: an unknown format, or ``opset`` with another format than ONNX.
        ExportError: the export or its check fails (nothing is left at ``path``; a file there stays).
    """
    from .metadata import ExportOptions

    format_ = get_format(fmt)
    if opset is not None and fmt != "onnx":
        raise ConfigError(f"--opset applies to --format onnx only, not {fmt}")
    if int(batch) < 1:
        raise ConfigError(f"--batch must be >= 1, got {batch}")
    options = ExportOptions(
        input_size=input_size,
        model_name=model_name,
        model_args=model_args,
        class_names=class_names,
        preprocessing=preprocessing,
        opset=opset,
        batch=batch,
        reference=reference,
    )
    return format_.export(model, path, options)
