"""Exporting a network out of reslab: ONNX, TorchScript, torch.export (.pt2) and safetensors, each with the
metadata needed to use it (class names, preprocessing, input size, model name and arguments), each checked
against PyTorch after it is written.
"""

from __future__ import annotations

from .checks import TOLERANCE, CheckResult
from .metadata import METADATA_KEYS, build_metadata, parse_metadata, preprocessing_dict
from .onnx import check_onnx, export_onnx, export_onnx_checked, read_onnx_metadata

__all__ = [
    "METADATA_KEYS",
    "TOLERANCE",
    "CheckResult",
    "build_metadata",
    "check_onnx",
    "export_onnx",
    "export_onnx_checked",
    "parse_metadata",
    "preprocessing_dict",
    "read_onnx_metadata",
]
