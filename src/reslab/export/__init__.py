"""Exporting a network out of reslab: ONNX, TorchScript, torch.export (.pt2) and safetensors, each with the
metadata needed to use it (class names, preprocessing, input size, model name and arguments), each checked
against PyTorch after it is written and before it is renamed into place.

One module per format (:mod:`.onnx`, :mod:`.torchscript`, :mod:`.program`, :mod:`.safetensors`), the shared
metadata (:mod:`.metadata`) and checks (:mod:`.checks`), and the dispatch over formats (:mod:`.formats`).
"""

from __future__ import annotations

from .checks import TOLERANCE, CheckResult
from .formats import FORMATS, check_export_out, default_out, export_model, get_format, read_export_metadata
from .metadata import METADATA_KEYS, build_metadata, parse_metadata, preprocessing_dict
from .onnx import check_onnx, export_onnx, export_onnx_checked, read_onnx_metadata
from .program import export_program, read_program_metadata
from .safetensors import export_safetensors
from .torchscript import export_torchscript, read_torchscript_metadata

__all__ = [
    "FORMATS",
    "METADATA_KEYS",
    "TOLERANCE",
    "CheckResult",
    "build_metadata",
    "check_export_out",
    "check_onnx",
    "default_out",
    "export_model",
    "export_onnx",
    "export_onnx_checked",
    "export_program",
    "export_safetensors",
    "export_torchscript",
    "get_format",
    "parse_metadata",
    "preprocessing_dict",
    "read_export_metadata",
    "read_onnx_metadata",
    "read_program_metadata",
    "read_torchscript_metadata",
]
