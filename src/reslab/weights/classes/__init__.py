"""The class names the published classifiers follow: ImageNet-1k's 1,000 (``imagenet.txt``) and CIFAR-10's."""

from __future__ import annotations

from functools import cache
from importlib import resources

from ...errors import ConfigError

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@cache
def _read(name: str) -> tuple[str, ...]:
    text = resources.files(__package__).joinpath(f"{name}.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def class_names(name: str) -> list[str]:
    """The class list ``name`` (``imagenet``: 1,000 names, index = label; ``cifar10``: 10)."""
    if name == "cifar10":
        return list(CIFAR10)
    if name == "imagenet":
        return list(_read("imagenet"))
    raise ConfigError(f"unknown class list {name!r} (known: imagenet, cifar10)")
