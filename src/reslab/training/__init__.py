"""Training, evaluation and prediction: the trainer behind ``reslab train`` / ``eval`` / ``predict``.

Public API: :func:`train` (returns a :class:`TrainResult`), :func:`evaluate` (an
:class:`EvalResult`), :func:`predict`, and :class:`TrainConfig` (the keys of the YAML recipes).
"""

from .api import predict, train
from .config import TrainConfig, load_config_file, resolve_config
from .evaluation import EvalResult, evaluate
from .metrics import EvalMetrics
from .trainer import TrainResult

__all__ = [
    "EvalMetrics",
    "EvalResult",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "load_config_file",
    "predict",
    "resolve_config",
    "train",
]
