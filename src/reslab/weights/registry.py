"""The weights registry: every set of published weights reslab knows, as data (timm's ``pretrained_cfg``,
torchvision's ``Weights``).

A name is ``MODEL.TAG`` (``resnet50.tv_in1k``). An entry holds where the file is (URL, hash), how it is
laid out (which loader reads it), the preprocessing the weights expect, their class names, any
constructor arguments the model needs for them, the published metrics with their source and the
license. Entries register themselves from :mod:`reslab.weights.entries` (one module per source).
This module imports no torch, so ``reslab weights list`` is quick.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ..errors import ConfigError
from .preprocessing import Preprocessing

#: the readers of :mod:`reslab.weights.layouts`, by name, in the order a file of unknown layout is tried
#: (the most specific first: a torchvision state dict is what several others look like)
LAYOUTS = ("reslab", "akamaster", "tutorial002", "timm", "safetensors", "keras_h5", "torchvision")
#: hash algorithms an entry may give (Keras publishes MD5 for its files; the others SHA-256)
HASH_ALGORITHMS = ("sha256", "md5")


@dataclass(frozen=True)
class WeightsEntry:
    """One set of published weights.

    Attributes:
        model: the reslab registry name of the network the weights fit.
        tag: the weights' tag (``tv_in1k``, ``tv2_in1k``, ``keras_in1k``, ``akamaster_cifar10``,
            ``timm_a1_in1k``, ...); ``model.tag`` is the full name.
        url: where the file is published.
        hash: ``"sha256:<hex>"`` -- the full digest or, where the publisher gives only that, the prefix
            in the file name as torch.hub checks it (at least 8 hex digits) -- or ``"md5:<hex>"``.
        layout: the loader that reads the file (one of :data:`LAYOUTS`).
        preprocessing: what the weights expect of an image.
        classes: the name of the class list the classifier's outputs follow (``imagenet``, ``cifar10``:
            shipped in ``reslab/weights/classes``).
        model_args: constructor arguments the weights need beyond the registered model's (e.g.
            ``{"shortcut_pad": "split"}``); recorded in checkpoints so eval / predict rebuild the same net.
        metrics: the published figures, e.g. ``{"top1": 76.13, "top5": 92.862}`` (per cent).
        metrics_source: where those figures are published.
        license: the weights' license, as the publisher states it.
        default: the model's default weights (``pretrained=True``).
        notes: anything a user should know (how the figures were measured, a layout detail).
    """

    model: str
    tag: str
    url: str
    hash: str
    layout: str
    preprocessing: Preprocessing
    classes: str
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_source: str = ""
    license: str = ""
    model_args: dict[str, Any] = field(default_factory=dict)
    default: bool = False
    notes: str = ""

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"

    @property
    def file_name(self) -> str:
        """The published file name (the last part of the URL's path): the cache's name for the file."""
        return urlparse(self.url).path.rsplit("/", 1)[-1]

    @property
    def hash_algorithm(self) -> str:
        return self.hash.split(":", 1)[0]

    @property
    def hash_value(self) -> str:
        return self.hash.split(":", 1)[1].lower()


_WEIGHTS: dict[str, WeightsEntry] = {}


def register_weights(entry: WeightsEntry) -> WeightsEntry:
    """Add ``entry`` to the registry (its model must not have two defaults; names are unique)."""
    if entry.name in _WEIGHTS:
        raise ValueError(f"weights {entry.name!r} are registered twice")
    if entry.layout not in LAYOUTS:
        raise ValueError(f"{entry.name}: layout must be one of {LAYOUTS}, got {entry.layout!r}")
    algo, _, value = entry.hash.partition(":")
    if algo not in HASH_ALGORITHMS or len(value) < 8 or any(c not in "0123456789abcdef" for c in value.lower()):
        raise ValueError(f"{entry.name}: hash must be 'sha256:<hex>' or 'md5:<hex>' (>= 8 digits), got {entry.hash!r}")
    if entry.default and any(e.default for e in _WEIGHTS.values() if e.model == entry.model):
        raise ValueError(f"{entry.model} has two default weights")
    _WEIGHTS[entry.name] = entry
    return entry


def _ensure_registered() -> None:
    from . import entries  # noqa: F401  (the entry modules register themselves on import)


def list_weights(pattern: str = "*") -> list[str]:
    """Names ``MODEL.TAG`` of the registered weights matching the fnmatch ``pattern`` (a bare model name
    matches all of that model's weights), in registration order."""
    _ensure_registered()
    pattern = pattern.strip().lower()
    return [n for n, e in _WEIGHTS.items() if fnmatch.fnmatchcase(n, pattern) or e.model == pattern]


def weights_for(model: str) -> list[WeightsEntry]:
    """Every registered entry for the registry model ``model``."""
    _ensure_registered()
    return [e for e in _WEIGHTS.values() if e.model == model]


def get_weights(name: str, tag: str | bool | None = None) -> WeightsEntry:
    """The entry ``MODEL.TAG``; or, with ``name`` a model and ``tag`` given, that model's ``tag``
    (``tag=True``: the model's default weights).

    Raises:
        ConfigError: no such weights (the message lists the model's tags or close names).
    """
    _ensure_registered()
    key = name.strip().lower()
    if tag is True:
        for e in _WEIGHTS.values():
            if e.model == key and e.default:
                return e
        available = [e.tag for e in _WEIGHTS.values() if e.model == key]
        if available:
            raise ConfigError(f"{key} has no default weights; choose one of: {', '.join(available)}")
        raise ConfigError(f"no published weights for model {key!r} (`reslab weights list` shows them all)")
    if isinstance(tag, str):
        key = f"{key}.{tag.strip().lower()}"
    if key in _WEIGHTS:
        return _WEIGHTS[key]
    model = key.split(".", 1)[0]
    available = [e.tag for e in _WEIGHTS.values() if e.model == model]
    if available:
        raise ConfigError(f"unknown weights {key!r}; {model} has: {', '.join(available)}")
    close = difflib.get_close_matches(key, list(_WEIGHTS), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"unknown weights {key!r}{hint} (`reslab weights list` shows them all)")
