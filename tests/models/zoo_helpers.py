"""Checks shared by the classic-CNN-zoo tests (LeNet, AlexNet/ZF-Net, VGG, GoogLeNet, DenseNet).

Big ImageNet networks are counted on the meta device (no memory, no initialisation cost) and run
at small legal sizes with batch 1, so the whole zoo stays fast on two CPU cores.
"""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

import reslab
from reslab.errors import ConfigError, InputShapeError


def meta_model(name: str, **kwargs) -> nn.Module:
    """The registered model built on the meta device: shapes and counts only."""
    with torch.device("meta"):
        return reslab.create_model(name, **kwargs)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def key_shapes(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def check_forward_backward(model: nn.Module, size: int, *, batch: int = 1, num_classes: int | None = None) -> None:
    """Train-mode forward + backward at ``size``: finite logits of the right shape, a gradient on
    every parameter."""
    model.train()
    x = torch.randn(batch, model.in_chans, size, size)
    out = model(x)
    logits = out[0] if isinstance(out, tuple) else out
    assert logits.shape == (batch, num_classes or model.num_classes)
    loss = sum(o.float().square().mean() for o in (out if isinstance(out, tuple) else (out,)))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    model.zero_grad(set_to_none=True)


@torch.no_grad()
def eval_logits(model: nn.Module, size: int, *, batch: int = 1, seed: int = 0) -> torch.Tensor:
    model.eval()
    x = torch.randn(batch, model.in_chans, size, size, generator=torch.Generator().manual_seed(seed))
    return model(x)


def check_too_small(model: nn.Module) -> None:
    """An input one pixel below the minimum is refused with an InputShapeError naming the minimum,
    and the minimum is tight: PyTorch itself cannot run the features one pixel below it."""
    model.eval()
    fixed = getattr(model, "fixed_input_size", None)
    smallest = fixed or model.min_input_size
    x = torch.randn(1, model.in_chans, smallest - 1, smallest - 1)
    with pytest.raises(InputShapeError, match=rf"\b{smallest}x{smallest}\b"):
        model(x)
    if fixed is None:
        with torch.no_grad():
            out = model(torch.randn(1, model.in_chans, smallest, smallest))
        assert out.shape[-1] == model.num_classes
        with pytest.raises(RuntimeError), torch.no_grad():
            model.forward_features(x)


def check_unknown_override(name: str) -> None:
    with pytest.raises(ConfigError, match="unknown argument 'widht'"):
        reslab.create_model(name, widht=3)


def check_pickle(model: nn.Module, size: int) -> None:
    """The model pickles (no lambdas), has no ``module.`` prefixes, and the copy computes the same."""
    model.eval()
    copy = pickle.loads(pickle.dumps(model))
    assert not any(k.startswith("module.") for k in model.state_dict())
    x = torch.randn(1, model.in_chans, size, size)
    with torch.no_grad():
        torch.testing.assert_close(copy(x), model(x), rtol=0, atol=0)


def check_summary(model: nn.Module, input_size: tuple[int, int, int] | None = None) -> None:
    """``reslab.summary`` runs (at the registered input size when ``input_size`` is None), counts every
    parameter and finds MACs."""
    s = reslab.summary(model, input_size)
    assert s.macs > 0
    assert s.total_params == n_params(model)
    assert s.output_shape == (1, model.num_classes)


def check_export(model: nn.Module, size: int) -> None:
    model.eval()
    x = torch.randn(1, model.in_chans, size, size)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x), rtol=1e-5, atol=1e-5)
