"""The model registry: every model reslab builds is a registered name, a class and a spec of its arguments.

``register_model`` records, next to each spec, the model's default configuration (input size, the
data-set family it was designed for, default class count) and the published reference its tests check
(paper, parameter count and where that count comes from, the paper's accuracy). The registry knows nothing
of weights: :func:`reslab.create_model` builds with :func:`build_model`, then loads them.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..arguments import check_arg_type, keyword_types
from ..catalog import FAMILIES
from ..errors import ConfigError, UnknownModelError
from .base import check_num_classes


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: how to build it and what it is known to be."""

    name: str
    cls: type[nn.Module]
    spec: dict[str, Any]
    family: str
    input_size: tuple[int, int, int]
    num_classes: int
    paper: str
    #: published parameter count at ``num_classes`` (and ``in_chans=3`` / the family's channel count)
    params: int | None = None
    params_source: str = ""
    #: the paper's published figure for the architecture, as the paper states it (e.g. "CIFAR-10 test error
    #: 8.75% (paper, Table 6)"); published weights' figures live in their weights entries (reslab.weights)
    accuracy: str | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def in_chans(self) -> int:
        return self.input_size[0]


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    cls: type[nn.Module],
    *,
    family: str,
    input_size: tuple[int, int, int],
    num_classes: int,
    paper: str,
    params: int | None = None,
    params_source: str = "",
    accuracy: str | None = None,
    description: str = "",
    **spec: Any,
) -> ModelEntry:
    """Register ``name`` as ``cls(**spec)`` with its default configuration and published reference."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is registered twice")
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    _check_keywords(name, cls, spec)
    entry = ModelEntry(
        name=name,
        cls=cls,
        spec=dict(spec),
        family=family,
        input_size=tuple(input_size),
        num_classes=num_classes,
        paper=paper,
        params=params,
        params_source=params_source,
        accuracy=accuracy,
        description=description,
    )
    _REGISTRY[name] = entry
    return entry


def _accepted_keywords(cls: type[nn.Module]) -> set[str]:
    return set(keyword_types(cls.__init__))


#: constructor arguments the data decides (``create_model``'s own parameters), never a model override
SET_BY_DATA = {
    "num_classes": "the data set's class count (synthetic data: --data-arg num_classes=N)",
    "in_chans": "the data set's channel count",
}


def _check_keywords(name: str, cls: type[nn.Module], kwargs: dict[str, Any]) -> None:
    accepted = _accepted_keywords(cls)
    for key in kwargs:
        if key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"{name}: unknown argument {key!r} for {cls.__name__}{hint} (accepted: {', '.join(sorted(accepted))})"
            )


def check_overrides(name: str, overrides: dict[str, Any]) -> ModelEntry:
    """Check ``model_args`` for the registered model ``name`` before anything is built: every key must
    be a constructor argument other than ``num_classes`` / ``in_chans`` (the data sets those), and a
    boolean / number / string argument must get a value of that type. Returns the entry.

    Raises:
        UnknownModelError: ``name`` is not registered.
        ConfigError: naming the key and the accepted ones, or the expected type.
    """
    entry = get_model_entry(name)
    if not isinstance(overrides, dict):
        raise ConfigError(f"model_args must be a mapping, got {overrides!r}")
    types = keyword_types(entry.cls.__init__)
    accepted = sorted(k for k in types if k not in SET_BY_DATA)
    for key, value in overrides.items():
        if key in SET_BY_DATA:
            raise ConfigError(
                f"model_args key {key!r} (--model-arg {key}=...) cannot be overridden: it is set by {SET_BY_DATA[key]}"
            )
        if key not in types:
            close = difflib.get_close_matches(str(key), accepted, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"{entry.name}: unknown model_args key {key!r} (--model-arg {key}=...){hint} "
                f"(accepted: {', '.join(accepted)})"
            )
        check_arg_type(f"{entry.name}: model_args key {key!r} (--model-arg {key}=...)", value, types[key])
    return entry


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; :class:`UnknownModelError` (with suggestions) if there is none."""
    if not isinstance(name, str):
        raise UnknownModelError(f"a model name must be a string, got {name!r}")
    key = name.strip().lower()
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = difflib.get_close_matches(key, list(_REGISTRY), n=4, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownModelError(f"unknown model {name!r}{hint} (`reslab list` shows all {len(_REGISTRY)} models)")


def list_models(pattern: str = "*", family: str | None = None) -> list[str]:
    """Registered model names matching the fnmatch ``pattern`` (and ``family``), in registration order."""
    if family is not None and family not in FAMILIES:
        raise ConfigError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    return [
        n
        for n, e in _REGISTRY.items()
        if fnmatch.fnmatchcase(n, pattern.lower()) and (family is None or e.family == family)
    ]


def build_model(name: str, num_classes: int | None = None, in_chans: int | None = None, **overrides: Any) -> nn.Module:
    """Build the registered architecture ``name`` with the papers' initialisation (no weights: those are
    :func:`reslab.create_model`'s ``pretrained``).

    Args:
        name: a registry name (``reslab.list_models()``), e.g. ``"resnet50"`` or ``"resnet56"``.
        num_classes: classifier outputs; the model's default (1000 for ImageNet, 10 for CIFAR) if None;
            0 builds the network without a classifier (``model(x)`` gives pooled features).
        in_chans: input channels; the model's default (3, or 1 for MNIST-family models) if None.
        **overrides: any constructor argument of the model's class, e.g. ``unit="full_preact"``.

    Returns:
        The model, in training mode, on the current default device (the CPU unless a ``torch.device``
        context says otherwise), with ``model_name`` set.

    Raises:
        UnknownModelError: ``name`` is not registered (the message suggests close names).
        ConfigError: an unknown override, or a value the architecture cannot take.
    """
    entry = get_model_entry(name)
    num_classes = entry.num_classes if num_classes is None else num_classes
    check_num_classes(num_classes)
    in_chans = entry.in_chans if in_chans is None else in_chans
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
        raise ConfigError(f"in_chans must be a whole number >= 1, got {in_chans!r}")
    _check_keywords(entry.name, entry.cls, overrides)  # the message close to what a Python caller wrote
    check_overrides(entry.name, overrides)
    kwargs = {**entry.spec, **overrides, "num_classes": num_classes, "in_chans": in_chans}
    try:
        model = entry.cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{entry.name}: {e}") from None
    model.model_name = entry.name
    return model
