"""Exporting a network out of reslab: ONNX, TorchScript, torch.export (.pt2) and safetensors, each with the
metadata needed to use it (class names, preprocessing, input size, model name and arguments), each checked
against PyTorch after it is written and before it is renamed into place.

One module per format (:mod:`.onnx`, :mod:`.torchscript`, :mod:`.program`, :mod:`.safetensors`), the shared
metadata (:mod:`.metadata`) and checks (:mod:`.checks`), and the dispatch over formats (:mod:`.formats`).

The names below are imported on first use, so that the command line can describe the formats
(:mod:`.formats`) without importing torch.
"""

from __future__ import annotations

from ..lazy import lazy_exports

#: public name -> the module that defines it
_LAZY = {
    "FORMATS": "formats",
    "METADATA_KEYS": "metadata",
    "TOLERANCE": "checks",
    "CheckResult": "checks",
    "ExportOptions": "metadata",
    "build_metadata": "metadata",
    "check_export_out": "formats",
    "check_onnx": "onnx",
    "default_out": "formats",
    "export_model": "formats",
    "export_onnx": "onnx",
    "export_program": "program",
    "export_safetensors": "safetensors",
    "export_torchscript": "torchscript",
    "get_format": "formats",
    "parse_metadata": "metadata",
    "preprocessing_dict": "metadata",
    "read_export_metadata": "formats",
    "read_onnx_metadata": "onnx",
    "read_program_metadata": "program",
    "read_safetensors_metadata": "safetensors",
    "read_torchscript_metadata": "torchscript",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
