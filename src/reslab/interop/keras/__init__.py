"""Moved to :mod:`reslab.weights.keras` (the Keras converters sit beside the other weight loaders);
this name keeps working for existing code."""

from __future__ import annotations

from ...weights.keras import KerasLayers, load_keras_weights, register_converter

__all__ = ["KerasLayers", "load_keras_weights", "register_converter"]
