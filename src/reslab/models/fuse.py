"""Conv-BN folding for inference: a BatchNorm that directly follows a convolution becomes part of it.

In eval mode BN is an affine map per channel, ``y = (x - mean) / sqrt(var + eps) * gamma + beta``; when
``x`` is a convolution's output and nothing else reads ``x``, the map folds into the convolution's weight
and bias and the BN is replaced by ``nn.Identity``.

Which BN "directly follows" which convolution is read from the network's real forward pass, not from
module order (a residual unit's ``forward`` decides the order, and module order says nothing about
shortcuts): one eval-mode forward on a small input records, for every tensor, which torch function made
it and which ones read it. A BN is folded only when its input is the output of exactly one
``nn.Conv2d`` call and that output is read by this BN alone (an in-place ReLU in between, or a
shortcut that also reads the convolution's output, stops the fold).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import ConfigError

#: calls that read a tensor's metadata, not its values: not a use of the values
_METADATA_CALLS = frozenset({"__get__", "size", "dim", "numel", "is_floating_point", "is_contiguous", "stride"})


class _UseCounter(TorchFunctionMode):
    """Counts how many torch function calls read each tensor's values (tensors kept alive: ids stay unique)."""

    def __init__(self) -> None:
        super().__init__()
        self.uses: dict[int, int] = {}
        self.keep: list[Any] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") not in _METADATA_CALLS:
            for t in _tensors((args, kwargs)):
                self.uses[id(t)] = self.uses.get(id(t), 0) + 1
        out = func(*args, **kwargs)
        self.keep.append(out)
        return out


def _tensors(obj: Any):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def _example_input(model: nn.Module) -> torch.Tensor:
    """A one-image batch of the smallest size the model takes (its own ``min_input_size``)."""
    size = getattr(model, "fixed_input_size", None) or max(int(getattr(model, "min_input_size", 1)), 32)
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    kwargs = {"device": param.device, "dtype": param.dtype} if param is not None else {}
    return torch.randn(1, int(getattr(model, "in_chans", 3)), size, size, **kwargs)


def _foldable_pairs(model: nn.Module, example: torch.Tensor) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """The (conv, BN) pairs where the BN reads a convolution's output and nothing else reads it."""
    made_by: dict[int, list[nn.Conv2d]] = {}
    bn_inputs: dict[nn.BatchNorm2d, list[int]] = {}
    conv_calls: dict[nn.Conv2d, int] = {}
    counter = _UseCounter()

    def conv_hook(module, inputs, output):
        conv_calls[module] = conv_calls.get(module, 0) + 1
        made_by.setdefault(id(output), []).append(module)
        counter.keep.append(output)

    def bn_hook(module, inputs):
        bn_inputs.setdefault(module, []).append(id(inputs[0]))

    handles = []
    for m in model.modules():
        if type(m) is nn.Conv2d:
            handles.append(m.register_forward_hook(conv_hook))
        elif type(m) is nn.BatchNorm2d:
            handles.append(m.register_forward_pre_hook(bn_hook))
    try:
        with torch.no_grad(), counter:
            model(example)
    finally:
        for h in handles:
            h.remove()
    pairs = []
    for bn, ids in bn_inputs.items():
        if len(ids) != 1 or bn.running_mean is None or bn.running_var is None:
            continue  # a BN called twice (shared) or without running statistics computes per batch
        convs = made_by.get(ids[0], [])
        if len(convs) != 1 or conv_calls[convs[0]] != 1 or counter.uses.get(ids[0], 0) != 1:
            continue
        pairs.append((convs[0], bn))
    return pairs


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold ``bn``'s eval-mode affine map into ``conv`` (its weight rescaled, a bias added or shifted)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1 / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    # in float64: the folded weights are as close to the two-step fp32 result as fp32 allows
    w = conv.weight.double() * scale.double().reshape(-1, *([1] * (conv.weight.dim() - 1)))
    b = (bias.double() - bn.running_mean.double()) * scale.double() + shift.double()
    conv.weight.copy_(w.to(conv.weight.dtype))
    if conv.bias is None:
        conv.bias = nn.Parameter(b.to(conv.weight.dtype))
    else:
        conv.bias.copy_(b.to(conv.bias.dtype))


def fuse(model: nn.Module, example_input: torch.Tensor | None = None) -> nn.Module:
    """Fold every BatchNorm that directly follows a convolution into that convolution, in place.

    Covers every registry family: ResNet v1 (incl. projection shortcuts' conv-BN), plain nets, VGG_bn,
    GoogLeNet's conv-BN blocks (the eval-mode path; the auxiliary classifiers, used only in training, keep
    their BNs), the Keras-layout ResNets, and DenseNet's stem conv-BN. BNs that come *before* a
    convolution (pre-activation units, DenseNet's BN-ReLU-conv layers and transitions, final BNs after an
    addition or a concatenation) cannot be folded into a convolution -- a ReLU sits between them, or no
    convolution precedes them -- and stay as they are.

    The model is for inference afterwards: its folded BNs are ``nn.Identity``, so training it would
    train a different network.

    Args:
        model: a network in eval mode (``model.eval()`` first).
        example_input: an input to trace the forward pass with (default: one random image of the model's
            smallest input size).

    Returns:
        ``model`` itself.

    Raises:
        ConfigError: the model is in training mode (BN then uses batch statistics, which cannot be
            folded).
    """
    if model.training:
        name = getattr(model, "model_name", type(model).__name__)
        raise ConfigError(f"fuse() needs a model in eval mode (call {name}.eval() first): BN folding is for inference")
    example = _example_input(model) if example_input is None else example_input
    pairs = _foldable_pairs(model, example)
    folded = {id(bn) for _, bn in pairs}
    for conv, bn in pairs:
        fold_conv_bn(conv, bn)
    # replace each folded BN by Identity where its parent holds it (a Sequential's slot or an attribute)
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if id(child) in folded:
                setattr(parent, child_name, nn.Identity())
    return model


def count_batchnorms(model: nn.Module) -> int:
    """How many BatchNorm layers the model still has."""
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
