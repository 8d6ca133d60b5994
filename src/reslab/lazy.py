"""Public names imported on first use (PEP 562), so that ``import reslab`` and the command line's
light commands (``reslab list``) do not pay for importing torch until a model or the trainer is needed."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], submodules: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package``: ``exports`` maps a public name to the
    submodule defining it (imported, and cached in the package, on first access); ``submodules`` are
    reachable as attributes after a bare ``import package``."""
    namespace = sys.modules[package].__dict__
    submodules = tuple(submodules)

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module hook's name
        if name in exports:
            value = getattr(importlib.import_module(f".{exports[name]}", package), name)
            namespace[name] = value
            return value
        if name in submodules:
            return importlib.import_module(f".{name}", package)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(set(namespace) | set(exports) | set(submodules))

    return __getattr__, __dir__
