"""Fixtures of the inference tests (the model tests' float32 settings)."""

from ..models.conftest import exact_float32  # noqa: F401
