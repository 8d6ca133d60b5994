"""Shared pieces of the GPU-only torchvision parity tests."""

from __future__ import annotations

import pytest
import torch


def torchvision_or_skip():
    """torchvision on a CUDA machine, or a visible skip (it cannot load beside the CPU torch here)."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU: the torchvision parity checks run on GPU machines")
    try:
        import torchvision
    except Exception as e:  # ImportError, or torchvision's operator registration failing on CPU torch
        pytest.skip(f"torchvision not importable here ({type(e).__name__})")
    return torchvision
