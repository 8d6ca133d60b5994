"""Keyword arguments checked against the signature they are meant for (model constructors, build_data).

Free-form ``--model-arg`` / ``--data-arg`` values arrive as YAML; a ``maybe`` must not reach a boolean
parameter as a truthy string, nor an unknown key vanish into ``**kwargs``.
"""

from __future__ import annotations

import inspect
import typing
from types import UnionType
from typing import Any

from .errors import ConfigError


def keyword_types(fn: Any) -> dict[str, Any]:
    """The parameters ``fn`` (a function or a class's ``__init__``) accepts by keyword, each with its
    resolved type annotation (None where there is none or it does not resolve)."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an annotation that does not resolve: the keys are still checked
        hints = {}
    params = inspect.signature(fn).parameters
    return {
        n: hints.get(n)
        for n, p in params.items()
        if n != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }


def check_arg_type(what: str, value: Any, hint: Any) -> None:
    """Refuse ``value`` where ``hint`` is ``bool``, ``int``, ``float`` or ``str`` (optionally ``| None``)
    and ``value`` is not one; richer annotations are left to the receiving code.

    Raises:
        ConfigError: ``"{what} must be true or false, got 'maybe'"`` and the like.
    """
    union = typing.get_origin(hint) in (typing.Union, UnionType)
    allowed = set(typing.get_args(hint)) if union else {hint}
    if value is None and type(None) in allowed:
        return
    simple = allowed - {type(None)}
    if len(simple) != 1:
        return
    (kind,) = simple
    if kind is bool:
        ok, expected = isinstance(value, bool), "true or false"
    elif kind is int:
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif kind is float:
        ok, expected = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif kind is str:
        ok, expected = isinstance(value, str), "a string"
    else:
        return
    if not ok:
        raise ConfigError(f"{what} must be {expected}, got {value!r}")
