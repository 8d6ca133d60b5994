"""TorchScript: ``torch.jit.trace`` of the eval-mode inference path, saved with reslab's metadata as
``_extra_files`` (one file per key of :data:`reslab.export.metadata.METADATA_KEYS`).

Traced, not scripted: ``torch.jit.script`` compiles Python source and refuses much of what the models use
(dataclass outputs, ``getattr`` on modules, keyword-only helpers), while a trace records the operations one
forward pass runs -- exactly the eval-mode path, with no data-dependent control flow in these networks. The
batch axis stays free (sizes are traced as ``aten::size``), and the check runs another batch than the
trace's. TorchScript is deprecated upstream (torch.export is its successor); it is kept because many
deployments still load it.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import DataError, ExportError
from .checks import CheckResult, atomic_path, check_inputs, compare, first_line, inference_module, write_bytes
from .metadata import METADATA_KEYS, ExportOptions, parse_metadata


def export_torchscript(model: nn.Module, path: str | Path, options: ExportOptions) -> tuple[Path, CheckResult]:
    """Trace ``model`` and save it to ``path`` (``torch.jit.save``) with the metadata; checked with
    ``torch.jit.load`` against ``options.reference`` (default ``model``) in PyTorch before it is renamed into place.

    Raises:
        ExportError: the trace fails, or the loaded program differs from PyTorch beyond :func:`.checks.tolerance`.
    """
    metadata = options.metadata()
    net = inference_module(model)
    example = check_inputs(options.input_size, batch=int(options.batch), seed=1)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the deprecation notice and tracer warnings on shape arithmetic
            traced = torch.jit.trace(net, example, check_trace=False)
    except Exception as e:  # the tracer raises RuntimeError and others
        reason = first_line(e)
        raise ExportError(f"torch.jit.trace of {options.model_name} failed: {reason}") from None
    path = Path(path)
    with atomic_path(path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # into memory, then written by Python: torch's own file writer aborts the process on a full disk
            buffer = io.BytesIO()
            torch.jit.save(traced, buffer, _extra_files={k: v.encode() for k, v in metadata.items()})
        write_bytes(tmp, buffer.getvalue())
        result = check_torchscript(
            tmp,
            options.checked_against(model),
            options.input_size,
            what=f"TorchScript export of {options.model_name}",
        )
    return path, result


def check_torchscript(path: str | Path, model: nn.Module, input_size, *, what: str | None = None) -> CheckResult:
    """The saved program, loaded back (``torch.jit.load``), against ``model`` on random inputs (batch 2).

    Raises:
        ExportError: outputs that differ beyond :func:`.checks.tolerance`.
    """
    x = check_inputs(input_size)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(path), map_location="cpu")
        got = loaded(x)
        expected = inference_module(model)(x)
    return compare(expected, got, "torch.jit.load", what or str(path))


def read_torchscript_metadata(path: str | Path) -> dict[str, Any]:
    """The reslab metadata of a TorchScript file written by :func:`export_torchscript`, parsed.

    Raises:
        DataError: a missing file, not a TorchScript archive, or one without reslab metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"TorchScript file {path} {'is a directory' if path.is_dir() else 'not found'}")
    files = dict.fromkeys(METADATA_KEYS, "")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    except Exception as e:  # RuntimeError from the archive reader
        reason = first_line(e, 200)
        raise DataError(f"{path} is not a TorchScript file: {reason}") from None
    props = {k: v.decode() if isinstance(v, bytes) else v for k, v in files.items() if v}
    return parse_metadata(props, str(path))
