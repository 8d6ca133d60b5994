"""Getting a network and an image to look at: the same model loading and preprocessing as ``reslab predict``.

A checkpoint is rebuilt with :func:`reslab.training.checkpoint.model_from_checkpoint` and its images are
preprocessed with its stored data ``info``; published weights come from
:func:`reslab.training.evaluation.pretrained_model` with their own preprocessing. One image pipeline:
:func:`reslab.data.preprocess_image`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, DataError


@dataclass
class LoadedModel:
    """A network ready to look at, with what its inputs need.

    Attributes:
        net: the network, in eval mode.
        info: the data ``info`` its inputs are preprocessed with (input_size, mean, std, resize, ...).
        class_names: one name per output.
        source: where it came from (the checkpoint's path, the weights' name, or "untrained MODEL").
        model_name: the registry name.
    """

    net: nn.Module
    info: dict[str, Any]
    class_names: list[str]
    source: str
    model_name: str
    #: the checkpoint (from ``load_checkpoint``) where the network came from one
    checkpoint: dict[str, Any] | None = None

    def image(self, image: str | Path | Any) -> torch.Tensor:
        """``image`` (a path or a PIL image) as the network's input (1, C, H, W), as ``predict`` makes it.

        Raises:
            DataError: a missing or unreadable image (names it).
        """
        return load_image(image, self.info)

    def class_index(self, target: int | str | None) -> int | None:
        """A class given as an index or a name (as the CLI's ``--target``) as an index; None stays None.

        Raises:
            ConfigError: an unknown name or an index out of range (lists the classes).
        """
        return class_index(target, self.class_names)


def load_model(
    checkpoint: str | Path | None = None,
    *,
    model: str | None = None,
    pretrained: Any = None,
    ema: bool = False,
    device: str | torch.device = "cpu",
) -> LoadedModel:
    """A network to visualise: a reslab checkpoint, or a registry model with published weights (or, with
    ``model`` and no ``pretrained``, freshly initialised -- e.g. to see untrained filters).

    Args:
        checkpoint: a ``.pt`` written by ``reslab train`` or a run directory (its ``best.pt``, else ``last.pt``).
        model: with a checkpoint: the model it must hold (checked); without: the network to build.
        pretrained: published weights for ``model`` (``True``, a tag such as ``"tv_in1k"``, ``MODEL.TAG`` or a file).
        ema: the checkpoint's EMA weights.
        device: where the network goes.

    Raises:
        ConfigError: neither or both of a checkpoint and ``model``/``pretrained``; unknown weights.
        CheckpointError: a missing or corrupt checkpoint, or weights that do not fit.
        UnknownModelError: an unknown model name.
    """
    from ..training.runtime import resolve_device

    dev = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    if checkpoint is not None:
        if pretrained is not None:
            raise ConfigError("give a checkpoint (--checkpoint) or published weights (--pretrained), not both")
        from ..training.checkpoint import load_checkpoint, model_from_checkpoint

        path = Path(checkpoint)
        if path.is_dir():
            path = path / "best.pt" if (path / "best.pt").exists() else path / "last.pt"
        ckpt = load_checkpoint(path)
        net = model_from_checkpoint(ckpt, model_name=model, ema=ema)
        info = dict(ckpt.get("data_info") or {})
        names = list(ckpt.get("class_names") or [str(i) for i in range(int(ckpt["num_classes"]))])
        source, name = str(path), str(ckpt["model_name"])
        ckpt = {k: v for k, v in ckpt.items() if k not in ("model", "ema", "optimizer", "scheduler", "scaler")}
    elif model is None:
        raise ConfigError("say which network to look at: --checkpoint CKPT, or --model M [--pretrained TAG]")
    elif ema:
        raise ConfigError("--ema applies to checkpoints reslab trained; published weights have no EMA copy")
    elif pretrained is not None:
        from ..training.evaluation import pretrained_model

        net, info, source = pretrained_model(model, pretrained)
        names = list(info.get("class_names") or [str(i) for i in range(int(info["num_classes"]))])
        name = str(getattr(net, "model_name", model))
    else:
        net, info = _untrained(model)
        names = [str(i) for i in range(int(info["num_classes"]))]
        name = str(getattr(net, "model_name", model))
        source = f"untrained {name} (random initialisation)"
    if not info.get("input_size"):
        raise ConfigError(f"{source} records no input size; it cannot be fed images")
    return LoadedModel(net.to(dev).eval(), info, names, source, name, ckpt if checkpoint is not None else None)


def _untrained(model: str) -> tuple[nn.Module, dict[str, Any]]:
    """A freshly initialised registry model and a neutral preprocessing at its default input size."""
    from ..models import create_model, get_model_entry

    entry = get_model_entry(model)
    net = create_model(entry.name)
    c, h, w = (int(v) for v in entry.input_size)
    # no statistics were ever measured for random weights: mean 0.5 / std 0.5 maps [0, 1] pixels to [-1, 1]
    info = {
        "input_size": [c, h, w],
        "mean": [0.5] * c,
        "std": [0.5] * c,
        "resize": h,
        "interpolation": "bilinear",
        "crop_mode": "center",
        "num_classes": int(net.num_classes),
    }
    return net, info


def load_image(image: str | Path | Any, info: dict[str, Any]) -> torch.Tensor:
    """An image file (or PIL image) as a network input (1, C, H, W): :func:`reslab.data.preprocess_image`.

    Raises:
        DataError: the file is missing or cannot be read as an image (names it).
    """
    from ..data import preprocess_image

    if isinstance(image, (str, Path)) and not Path(image).is_file():
        what = "is a directory, not an image file" if Path(image).is_dir() else "not found"
        raise DataError(f"image {image} {what}")
    try:
        return preprocess_image(image, info)
    except DataError:
        raise
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read image {image}: {e}") from None


def display_image(x: torch.Tensor, info: dict[str, Any]) -> np.ndarray:
    """A preprocessed input (1, C, H, W) or (C, H, W) back to displayable pixels (H, W, C) in [0, 1]:
    the normalisation undone (``x * std + mean``)."""
    x = x.detach().float().cpu()
    if x.dim() == 4:
        x = x[0]
    c = x.shape[0]
    mean = torch.tensor([float(v) for v in info.get("mean", [0.0] * c)]).view(-1, 1, 1)
    std = torch.tensor([float(v) for v in info.get("std", [1.0] * c)]).view(-1, 1, 1)
    return (x * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()


def class_index(target: int | str | None, names: list[str]) -> int | None:
    """``target`` (an index, a digit string or a class name) as an index into ``names``.

    Raises:
        ConfigError: an unknown name or an out-of-range index (the message lists the classes).
    """
    if target is None:
        return None
    if isinstance(target, str) and target in names:
        return names.index(target)
    try:
        index = int(target) if not isinstance(target, bool) else None
    except (TypeError, ValueError):
        index = None
    if index is None or not 0 <= index < len(names):
        shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
        raise ConfigError(f"unknown class {target!r}: give a class name or an index 0-{len(names) - 1} ({shown})")
    return index


def load_data(
    loaded: LoadedModel,
    data: str | None = None,
    data_dir: str | None = None,
    *,
    download: bool = False,
    batch_size: int | None = None,
):
    """The data set to search for top activating images, preprocessed as the network expects: what
    ``reslab eval`` evaluates on (a checkpoint: its own data set by default; published or untrained
    weights: ``data`` with their preprocessing).

    Raises:
        ConfigError: no ``data`` where the network has none of its own. DataError: missing data.
        CheckpointError: data whose class or channel count does not fit the network.
    """
    from ..training.evaluation import _pretrained_eval_data, build_eval_data

    device = next(loaded.net.parameters()).device
    if loaded.checkpoint is not None:
        return build_eval_data(
            loaded.checkpoint, data=data, data_dir=data_dir, download=download, batch_size=batch_size, device=device
        )
    return _pretrained_eval_data(
        loaded.info,
        loaded.source,
        data=data,
        data_dir=data_dir,
        download=download,
        batch_size=batch_size,
        device=device,
    )
