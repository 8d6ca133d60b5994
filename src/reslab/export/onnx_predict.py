"""Classify images with an ONNX file that ``reslab export`` wrote, in onnxruntime: the preprocessing, the
class names and the input size come from the file's reslab metadata, and images go through the same
pipeline as ``reslab predict`` (``reslab.data.preprocess_image``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from .checks import first_line
from .onnx import INPUT_NAME, OUTPUT_NAME, _require, read_onnx_metadata


def onnx_data_info(metadata: dict[str, Any], source: str) -> dict[str, Any]:
    """The data ``info`` that ``preprocess_image`` takes, from an ONNX file's parsed reslab metadata.

    Raises:
        DataError: the metadata lacks the preprocessing, or it is not a valid one (names ``source``).
    """
    from ..errors import ConfigError
    from ..weights.preprocessing import Preprocessing

    prep = metadata.get("preprocessing")
    if not isinstance(prep, dict):
        raise DataError(f"{source} records no preprocessing in its reslab metadata; re-export it with reslab export")
    try:
        p = Preprocessing.from_dict(prep)
    except (ConfigError, TypeError) as e:
        raise DataError(f"{source}: its reslab preprocessing metadata is not valid: {e}") from None
    return {
        "input_size": [int(v) for v in p.input_size],
        "mean": [float(v) for v in p.mean],
        "std": [float(v) for v in p.std],
        "resize": int(p.resize),
        "interpolation": p.interpolation,
        "crop_mode": p.crop,
    }


def predict_onnx(
    path: str | Path,
    images: Sequence[Any],
    *,
    topk: int = 5,
    batch_size: int = 1,
    on_error: str = "raise",
) -> list[list[tuple[str, float]] | DataError]:
    """Classify ``images`` with the ONNX model at ``path`` (onnxruntime, CPU): the ``topk`` (class name,
    probability) pairs per image, as :func:`reslab.predict` returns them (``on_error`` likewise).

    Raises:
        DataError: a missing file, a file that is not ONNX or has no reslab metadata, an unreadable image
            (``on_error="raise"``). ConfigError: onnxruntime is not installed, a bad ``topk``/``batch_size``.
    """
    from ..errors import ConfigError
    from ..training.api import ON_ERROR, classify_images

    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise ConfigError(f"topk must be a whole number >= 1, got {topk!r}")
    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
    path = Path(path)
    metadata = read_onnx_metadata(path)
    info = onnx_data_info(metadata, str(path))
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for invalid graphs
        reason = first_line(e, 200)
        raise DataError(f"onnxruntime cannot load {path}: {reason}") from None
    (out,) = session.get_outputs()
    width = out.shape[-1] if isinstance(out.shape[-1], int) else None
    names = metadata.get("class_names") or [str(i) for i in range(width or 0)]
    if width is not None and len(names) != width:
        raise DataError(f"{path}: its metadata names {len(names)} classes but the model outputs {width} logits")

    def forward(x: torch.Tensor) -> torch.Tensor:
        (logits,) = session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x.numpy(), dtype=np.float32)})
        return torch.from_numpy(logits)

    return classify_images(forward, images, info, list(names), topk=topk, batch_size=batch_size, on_error=on_error)
