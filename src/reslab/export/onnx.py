"""ONNX: one self-contained ``.onnx`` file, input ``"input"`` (N, C, H, W) float32 with a dynamic batch axis,
output ``"logits"``, reslab's metadata in the model's metadata properties.

The exporter is the one torch recommends since 2.5 and uses by default since 2.9: ``torch.onnx.export(...,
dynamo=True)`` (torch.export, then onnxscript). After export the file is checked with ``onnx.checker`` and
run by onnxruntime against PyTorch (see :func:`check_onnx`) before it is renamed into place.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, DataError, ExportError
from .checks import CheckResult, atomic_path, check_inputs, compare, first_line, inference_module
from .metadata import ExportOptions, parse_metadata

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
#: the lowest opset torch's exporter writes (asked for less, it silently writes 18); the highest is the
#: installed onnx's (:func:`max_opset`); the default is the exporter's own
MIN_OPSET = 18


def max_opset() -> int:
    """The newest opset the installed ``onnx`` knows."""
    return int(_require("onnx").defs.onnx_opset_version())


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"ONNX export needs {module}: pip install 'reslab[export]' (onnx, onnxruntime, onnxscript)"
        ) from None


def export_onnx(model: nn.Module, path: str | Path, options: ExportOptions) -> tuple[Path, CheckResult]:
    """Export ``model`` (its eval-mode inference path) to ``path`` as one self-contained ONNX file (input
    ``input``, output ``logits``, dynamic batch axis), checked by ``onnx.checker`` and onnxruntime against
    ``options.reference`` (default ``model``; the unfolded network where ``model`` is BN-folded) before it is
    renamed into place.

    Returns:
        ``(path, the check's result)`` (what ``reslab export`` prints).

    Raises:
        ConfigError: a bad opset (``MIN_OPSET``-``MAX_OPSET``) or batch, or onnx/onnxruntime missing.
        ExportError: the exporter fails, or the check fails (nothing is left at ``path``; a file there stays).
    """
    onnx = _require("onnx")
    _require("onnxscript")
    _require("onnxruntime")
    opset = options.opset
    if opset is not None and not MIN_OPSET <= int(opset) <= max_opset():
        raise ConfigError(
            f"--opset must be {MIN_OPSET}-{max_opset()} (what torch's ONNX exporter and the "
            f"installed onnx write), got {opset}"
        )
    if int(options.batch) < 1:
        raise ConfigError(f"--batch must be >= 1, got {options.batch}")
    metadata = options.metadata()
    net = inference_module(model)
    example = check_inputs(options.input_size, batch=int(options.batch), seed=1)
    path = Path(path)
    with atomic_path(path) as tmp:
        program = _export(net, example, opset)
        proto = program.model_proto
        written = {o.domain: o.version for o in proto.opset_import}.get("", None)
        if opset is not None and written != int(opset):
            raise ExportError(f"asked for ONNX opset {opset}, the exporter wrote {written}; nothing was written")
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.doc_string = f"reslab {metadata['reslab_version']}: {options.model_name}"
        # one file: the weights inside the protobuf (these models are far below its 2 GB limit)
        onnx.save_model(proto, str(tmp), save_as_external_data=False)
        result = check_onnx(
            tmp, options.checked_against(net), options.input_size, what=f"ONNX export of {options.model_name}"
        )
    return path, result


def _export(net: nn.Module, example: torch.Tensor, opset: int | None):
    batch_dim = torch.export.Dim("batch", min=1, max=1 << 16)
    kwargs: dict[str, Any] = {"opset_version": int(opset)} if opset is not None else {}
    # the exporter reports its progress on stdout and warns at length; keep the command's output to reslab's lines
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), warnings.catch_warnings(), _quiet_loggers():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                net,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"x": {0: batch_dim}},
                external_data=False,
                report=False,
                verbose=False,
                **kwargs,
            )
    except Exception as e:  # the exporter raises its own (torch.onnx.errors, torch._dynamo) types
        reason = first_line(e)
        raise ExportError(f"the ONNX exporter failed: {type(e).__name__}: {reason}") from None
    return program


@contextlib.contextmanager
def _quiet_loggers():
    names = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "torch.fx")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


def check_onnx(path: str | Path, model: nn.Module, input_size, *, what: str | None = None) -> CheckResult:
    """``onnx.checker`` on the file, then onnxruntime on random inputs (batch 2) against ``model`` in PyTorch.

    Raises:
        ExportError: the checker refuses the file, or the outputs differ beyond :func:`.checks.tolerance`.
    """
    onnx = _require("onnx")
    ort = _require("onnxruntime")
    what = what or str(path)
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as e:  # onnx.checker.ValidationError and shape-inference errors
        reason = first_line(e)
        raise ExportError(f"{what}: onnx.checker refuses the file: {reason}; the export was not kept") from None
    net = inference_module(model)
    x = check_inputs(input_size)
    with torch.no_grad():
        expected = net(x)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
    return compare(expected, got, "onnxruntime", what, extra="onnx.checker ok")


def read_onnx_metadata(path: str | Path) -> dict[str, Any]:
    """The reslab metadata of an ONNX file written by :func:`export_onnx`, parsed: ``reslab_version``,
    ``model_name`` (strings), ``model_args``, ``class_names``, ``preprocessing``, ``input_size``.

    Raises:
        DataError: a missing file, a file that is not an ONNX model, or one without reslab metadata.
    """
    onnx = _require("onnx")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"ONNX model {path} {'is a directory' if path.is_dir() else 'not found'}")
    try:
        # the graph's weights are not needed for the metadata
        proto = onnx.load_model(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and others
        reason = first_line(e, 200)
        raise DataError(f"{path} is not an ONNX model: {reason}") from None
    if not proto.graph.node and not proto.metadata_props:
        raise DataError(f"{path} is not an ONNX model (no graph in it)")
    return parse_metadata({p.key: p.value for p in proto.metadata_props}, str(path))
