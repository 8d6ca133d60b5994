"""Training, evaluation and prediction: the trainer behind ``reslab train`` / ``eval`` / ``predict``.

Public API: :func:`train` (returns a :class:`TrainResult`), :func:`evaluate` (an
:class:`EvalResult`), :func:`predict`, and :class:`TrainConfig` (the keys of the YAML recipes).

The names are imported on first use (PEP 562): the command line reads :mod:`.config` (no torch) to
build its parser without importing the trainer.
"""

from __future__ import annotations

from ..lazy import lazy_exports

#: public name -> the module that defines it
_LAZY = {
    "EvalMetrics": "metrics",
    "EvalResult": "evaluation",
    "TrainConfig": "config",
    "TrainResult": "trainer",
    "evaluate": "evaluation",
    "load_config_file": "config",
    "predict": "api",
    "resolve_config": "config",
    "train": "api",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
