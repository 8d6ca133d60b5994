"""reslab: the classic image-classification CNNs, centred on residual networks.

Public API: :func:`create_model`, :func:`list_models`, :func:`summary`, :func:`train`,
:func:`evaluate`, :func:`predict`.
"""

from .errors import ReslabError
from .models import create_model, get_model_entry, list_models, summary
from .training import TrainConfig, TrainResult, evaluate, predict, train

__version__ = "0.1.0"
__all__ = [
    "ReslabError",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "create_model",
    "evaluate",
    "get_model_entry",
    "list_models",
    "predict",
    "summary",
    "train",
]
