"""torch.export: an ``ExportedProgram`` of the eval-mode inference path with a dynamic batch axis, saved by
``torch.export.save`` as a ``.pt2`` archive with reslab's metadata in its ``extra_files`` (one per key of
:data:`reslab.export.metadata.METADATA_KEYS`). Load it with ``torch.export.load(path).module()``.
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


def export_program(model: nn.Module, path: str | Path, options: ExportOptions) -> tuple[Path, CheckResult]:
    """``torch.export.export`` ``model`` (batch axis dynamic) and save it to ``path`` with the metadata;
    checked with ``torch.export.load`` against ``options.reference`` (default ``model``) before it is renamed
    into place.

    Raises:
        ExportError: torch.export fails, or the loaded program differs from PyTorch beyond :func:`.checks.tolerance`.
    """
    metadata = options.metadata()
    net = inference_module(model)
    example = check_inputs(options.input_size, batch=int(options.batch), seed=1)
    batch_dim = torch.export.Dim("batch", min=1, max=1 << 16)
    try:
        with warnings.catch_warnings(), _size_oblivious():
            warnings.simplefilter("ignore")
            program = torch.export.export(net, (example,), dynamic_shapes={"x": {0: batch_dim}})
    except Exception as e:  # torch._dynamo / torch.export raise many types
        reason = first_line(e)
        raise ExportError(f"torch.export of {options.model_name} failed: {type(e).__name__}: {reason}") from None
    path = Path(path)
    with atomic_path(path) as tmp:
        # into memory, then written by Python: torch's own file writer aborts the process on a full disk
        buffer = io.BytesIO()
        torch.export.save(program, buffer, extra_files=dict(metadata))
        write_bytes(tmp, buffer.getvalue())
        result = check_program(
            tmp, options.checked_against(model), options.input_size, what=f"torch.export of {options.model_name}"
        )
    return path, result


def _size_oblivious():
    """An example batch of 1 would make torch.export specialise the batch axis to 1 ("0/1 specialisation")
    and refuse the dynamic dimension; torch's own ONNX exporter traces with ``backed_size_oblivious`` for
    this reason, and so does this one (a private switch: without it, ``--batch 1`` fails with a clear error)."""
    import contextlib

    config = getattr(getattr(torch.fx, "experimental", None), "_config", None)
    if config is None or not hasattr(config, "backed_size_oblivious"):
        return contextlib.nullcontext()
    return config.patch(backed_size_oblivious=True)


def check_program(path: str | Path, model: nn.Module, input_size, *, what: str | None = None) -> CheckResult:
    """The saved program, loaded back (``torch.export.load``), against ``model`` on random inputs (batch 2).

    Raises:
        ExportError: outputs that differ beyond :func:`.checks.tolerance`.
    """
    x = check_inputs(input_size)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        got = torch.export.load(_buffer(path)).module()(x)
        expected = inference_module(model)(x)
    return compare(expected, got, "torch.export.load", what or str(path))


def read_program_metadata(path: str | Path) -> dict[str, Any]:
    """The reslab metadata of a ``.pt2`` written by :func:`export_program`, parsed.

    Raises:
        DataError: a missing file, not a torch.export archive, or one without reslab metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"torch.export file {path} {'is a directory' if path.is_dir() else 'not found'}")
    files = dict.fromkeys(METADATA_KEYS, "")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.export.load(_buffer(path), extra_files=files)
    except Exception as e:  # the archive reader's errors
        reason = first_line(e, 200)
        raise DataError(f"{path} is not a torch.export (.pt2) file: {reason}") from None
    props = {k: v.decode() if isinstance(v, bytes) else v for k, v in files.items() if v}
    return parse_metadata(props, str(path))


def _buffer(path: str | Path) -> io.BytesIO:
    """The file's bytes: ``torch.export.load`` warns about a path whose name does not end in ``.pt2`` (the
    temporary file of a check, a user's ``--out model.bin``), not about a buffer."""
    return io.BytesIO(Path(path).read_bytes())
