"""Layer names: a network's module names (``model.named_modules()``), resolved with errors that list them."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..errors import ConfigError

#: list every name when a network has at most this many modules; else the useful ones
_LIST_ALL = 40


def layer_names(model: nn.Module) -> list[str]:
    """Every module name of ``model`` (``model.named_modules()``, the root left out), in order."""
    return [name for name, _ in model.named_modules() if name]


def useful_layer_names(model: nn.Module) -> list[str]:
    """The names worth offering first: the stages (``feature_info``), the top-level blocks, and the
    convolutions of a plain ``features`` sequence (VGG, AlexNet) -- in module order."""
    wanted = {name for name, _ in model.named_children()}
    wanted |= {str(f["module"]) for f in getattr(model, "feature_info", None) or [] if "module" in f}
    for name, module in model.named_modules():
        parent = name.rpartition(".")[0]
        # convolutions that sit directly in a top-level block (VGG's features.N; not every conv deep in a ResNet)
        if isinstance(module, nn.Conv2d) and "." not in parent:
            wanted.add(name)
    return [name for name in layer_names(model) if name in wanted]


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    """The module called ``name`` in ``model`` (a name from ``model.named_modules()``, e.g. ``layer3``,
    ``features.10``, ``layer2.1.conv1``).

    Raises:
        ConfigError: no such module: one line naming it and listing valid names (for big networks the
            stages, top-level blocks and convolutions, and how many more there are).
    """
    modules = dict(model.named_modules())
    if name and name in modules:
        return modules[name]
    names = layer_names(model)
    close = difflib.get_close_matches(str(name), names, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    if len(names) <= _LIST_ALL:
        listed = ", ".join(names)
    else:
        useful = useful_layer_names(model)
        listed = ", ".join(useful) + f", and {len(names) - len(useful)} more (print model.named_modules() for all)"
    what = getattr(model, "model_name", type(model).__name__)
    raise ConfigError(f"{what} has no layer {name!r}{hint}; valid layer names: {listed}")


def default_layer(model: nn.Module) -> str:
    """The layer Grad-CAM looks at by default: the last stage (``feature_info[-1]["module"]``) where the
    model declares one, else its last convolution.

    Raises:
        ConfigError: a network without either.
    """
    info = getattr(model, "feature_info", None)
    if info and "module" in info[-1]:
        return str(info[-1]["module"])
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ConfigError(f"{type(model).__name__} has no convolution to look at; give a layer name")
    return convs[-1]


@contextmanager
def capture(model: nn.Module, name: str) -> Iterator[dict[str, torch.Tensor]]:
    """While active, ``store["out"]`` is the output of layer ``name`` in the last forward pass.

    The layer's output is handed on as a copy, so a following in-place ReLU (VGG's, AlexNet's) leaves the
    captured activations -- and their place in the autograd graph -- untouched.

    Raises:
        ConfigError: an unknown layer; a layer whose output is not one tensor (in the forward pass).
    """
    module = resolve_layer(model, name)
    store: dict[str, torch.Tensor] = {}

    def hook(_module, _inputs, output):
        if not isinstance(output, torch.Tensor):
            raise ConfigError(f"layer {name!r} gives a {type(output).__name__}, not a feature map; choose another")
        store["out"] = output
        return output.clone()

    handle = module.register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()
