"""A Keras-like model summary from a real forward pass: layer, output shape, parameters, MACs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int


@dataclass
class ModelSummary:
    """The rows of a summary and its totals; ``str()`` renders the table."""

    rows: list[LayerRow]
    input_size: tuple[int, ...]
    output_shape: tuple[int, ...]
    total_params: int
    trainable_params: int
    macs: int

    def __str__(self) -> str:
        head = ("Layer (type)", "Output shape", "Param #", "MACs")
        body = [(f"{r.name} ({r.kind})", str(list(r.output_shape)), f"{r.params:,}", f"{r.macs:,}") for r in self.rows]
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(4)]
        line = "  ".join("-" * w for w in widths)

        def fmt(row):
            return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

        out = [line, fmt(head), line, *map(fmt, body), line]
        out.append(f"Input size: {list(self.input_size)}   Output shape: {list(self.output_shape)}")
        out.append(f"Total params: {self.total_params:,}")
        out.append(f"Trainable params: {self.trainable_params:,}")
        out.append(f"Non-trainable params: {self.total_params - self.trainable_params:,}")
        out.append(f"Multiply-accumulates (MACs): {self.macs:,} ({self.macs / 1e9:.3f} G)")
        return "\n".join(out)


def _macs(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    """Multiply-accumulates of one leaf layer (convolutions, linear layers; others count 0)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        n_out = output.numel() // output.shape[0]
        if isinstance(module, nn.ConvTranspose2d):
            n_out = inputs[0].numel() // inputs[0].shape[0]
            k = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
        return n_out * k
    if isinstance(module, nn.Linear):
        return (output.numel() // output.shape[0]) * module.in_features
    return 0


def _first_tensor(output):
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Sequence) and output and isinstance(output[0], torch.Tensor):
        return output[0]  # MaxPool2d(return_indices=True), named tuples of logits
    return None


def summary(model: nn.Module, input_size: Sequence[int] | None = None, *, batch_size: int = 1) -> ModelSummary:
    """Summarise ``model`` by running one forward pass on zeros of ``(batch_size, *input_size)``.

    Args:
        model: any ``nn.Module``; its training mode is restored afterwards.
        input_size: ``(C, H, W)``; defaults to the registered model's default input size.
        batch_size: the batch of the dummy pass (output shapes are shown with it).

    Returns:
        A :class:`ModelSummary` (``print()`` it for the table). MACs count convolutions and linear
        layers per image, as papers report them.
    """
    if input_size is None:
        name = getattr(model, "model_name", None)
        if name is None:
            raise ConfigError("summary needs input_size=(C, H, W) for a model that is not from the registry")
        from .registry import get_model_entry

        input_size = get_model_entry(name).input_size
    input_size = tuple(int(v) for v in input_size)
    if len(input_size) != 3 or min(input_size) < 1:
        raise ConfigError(f"input_size must be (C, H, W) with positive entries, got {input_size}")

    rows: list[LayerRow] = []
    names = {m: n for n, m in model.named_modules()}

    def hook(module, inputs, output):
        out = _first_tensor(output)
        if out is None:
            return
        params = sum(p.numel() for p in module.parameters(recurse=False))
        rows.append(
            LayerRow(
                names.get(module, "?"), type(module).__name__, tuple(out.shape), params, _macs(module, inputs, out)
            )
        )

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        with torch.no_grad():
            out = model(torch.zeros(batch_size, *input_size, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return ModelSummary(
        rows=rows,
        input_size=input_size,
        output_shape=tuple(_first_tensor(out).shape),
        total_params=total,
        trainable_params=trainable,
        macs=sum(r.macs for r in rows),
    )
