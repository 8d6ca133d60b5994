"""reslab: the classic image-classification CNNs, centred on residual networks.

Public API: :func:`create_model`, :func:`list_models`, :func:`summary` (and, from the training
package, ``train`` / ``evaluate``).
"""

from .errors import ReslabError
from .models import create_model, get_model_entry, list_models, summary

__version__ = "0.1.0"
__all__ = ["ReslabError", "__version__", "create_model", "get_model_entry", "list_models", "summary"]
