"""One loader for a network to use: from a checkpoint reslab wrote, from published or local weights
(``--model M --pretrained TAG``), or freshly initialised -- with the preprocessing its inputs need, its class
names, and the data arguments that give that preprocessing.

``reslab train`` (the weights' preprocessing applied to the training data), ``eval``, ``predict``,
``visualize``, ``export`` and ``report`` all come through here, so a checkpoint or a set of weights is read
the same way everywhere, and its images and data sets are preprocessed the same way:

- :func:`load_model` -> :class:`LoadedModel` (the network, its data ``info``, class names, where it came
  from); ``loaded.image(path)`` is one image as its input, ``loaded.data(...)`` the data set to evaluate it
  on (a checkpoint: its own data set by default, preprocessed as it was trained);
- :func:`preprocessing_data_args`: a :class:`~reslab.weights.Preprocessing` dict as ``build_data`` options
  (the one mapping from weights' preprocessing to data arguments, for training and evaluation alike).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, DataError

logger = logging.getLogger("reslab.training")

#: ``build_data`` options that make up the preprocessing (a user's data_args give them: --data-arg mean=[...])
PREPROCESSING_ARGS = ("mean", "std", "resize", "interpolation", "crop")


def checkpoint_file(path: str | Path) -> Path:
    """The checkpoint a path names: a file as it is; a run directory's ``best.pt``, else its ``last.pt``."""
    path = Path(path)
    if path.is_dir():
        return path / "best.pt" if (path / "best.pt").exists() else path / "last.pt"
    return path


def training_cwd(ckpt: Mapping[str, Any]) -> Path | None:
    """The directory a checkpoint's run was started from: as recorded (``cwd``), else -- checkpoints written
    before reslab recorded it -- worked out from a relative ``out`` and where the checkpoint now is
    (``runs/a`` and ``/home/u/proj/runs/a/best.pt``: ``/home/u/proj``); None where neither tells."""
    if ckpt.get("cwd"):
        return Path(str(ckpt["cwd"]))
    out, path = (ckpt.get("config") or {}).get("out"), ckpt.get("path")
    if not out or not path or Path(out).is_absolute():
        return None
    run = Path(path).resolve().parent
    tail = Path(os.path.normpath(out)).parts
    if tail and ".." not in tail and run.parts[-len(tail) :] == tail:
        return Path(*run.parts[: -len(tail)])
    return None


def training_data_dir(ckpt: Mapping[str, Any]) -> tuple[str | None, str]:
    """The data directory a checkpoint's run trained on, and how to say it in an error: a relative ``data_dir``
    is resolved against the directory the run was started from (:func:`training_cwd`) where the data is
    there, so a run evaluated from another directory finds its data (``None`` where the run gave none: the
    default data directory).
    """
    recorded = (ckpt.get("config") or {}).get("data_dir")
    if not recorded:
        return None, "the run's data directory (the default: $RESLAB_DATA_DIR, else ./data)"
    if Path(recorded).is_absolute():
        return str(recorded), f"the run's data_dir {recorded}"
    base = training_cwd(ckpt)
    if base is not None and (base / recorded).exists():
        return str(base / recorded), f"the run's data_dir {recorded} (relative to {base}, where it was trained)"
    where = f"relative to {base}, where it was trained, and to" if base is not None else "relative to"
    return str(recorded), f"the run's data_dir {recorded} ({where} the current directory)"


def info_preprocessing(info: Mapping[str, Any]) -> dict[str, Any]:
    """The preprocessing a data ``info`` (a checkpoint's ``data_info``) describes, as a
    :class:`~reslab.weights.Preprocessing` dict (checkpoints of every version: the flat keys are the record)."""
    c, h, w = (int(v) for v in info["input_size"])
    prep = {"mode": "reslab", "channel_order": "RGB", **(info.get("preprocessing") or {})}
    prep.update(
        input_size=[c, h, w],
        mean=[float(v) for v in info["mean"]],
        std=[float(v) for v in info["std"]],
        resize=int(info.get("resize") or h),
        interpolation=str(info.get("interpolation") or "bilinear"),
        crop=str(info.get("crop_mode") or "center"),
    )
    return prep


def preprocessing_info(prep: Mapping[str, Any], class_names: list[str] | None, num_classes: int) -> dict[str, Any]:
    """The data ``info`` (what :func:`reslab.data.preprocess_image` reads, as a checkpoint stores it) of a
    :class:`~reslab.weights.Preprocessing` dict."""
    c, h, w = (int(v) for v in prep["input_size"])
    return {
        "input_size": [c, h, w],
        "mean": [float(v) for v in prep["mean"]],
        "std": [float(v) for v in prep["std"]],
        "resize": int(prep.get("resize") or h),
        "interpolation": str(prep.get("interpolation") or "bilinear"),
        "crop_mode": str(prep.get("crop") or "center"),
        "class_names": list(class_names) if class_names else None,
        "num_classes": int(num_classes),
        "preprocessing": dict(prep),
    }


def preprocessing_data_args(
    data: str,
    prep: Mapping[str, Any] | None,
    *,
    source: str,
    given: Mapping[str, Any] | None = None,
    image_size: int | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The ``build_data`` options that apply the weights' preprocessing ``prep`` to the data set ``data``,
    where the user did not set them, and notes for the run's log.

    Args:
        data: the data set's name (``folder``, ``cifar10``, ...).
        prep: a :class:`~reslab.weights.Preprocessing` dict, or None where the weights record none.
        source: the weights' name (``MODEL.TAG`` or the file), for the notes.
        given: the user's data arguments (``--data-arg``): what they set is kept.
        image_size: the user's ``--image-size`` (kept where given).

    Returns:
        ``(options, notes)``. Every data set gets the weights' input size (``image_size``, with
        ``image_size_reason``: CIFAR's 32 px become a pretrained ImageNet network's 224, resized on the device)
        and their mean and std (for grey data the average over the weights' channels); folder data also the
        resize (another size keeps the weights' crop fraction: 224 of 256 becomes 64 of 73, as timm's
        ``crop_pct``), interpolation and crop.
    """
    from ..data import data_channels

    given = dict(given or {})
    if prep is None:
        return {}, [
            f"pretrained weights {source} record no preprocessing: the data's own normalisation is used "
            "(set it with --data-arg mean=[...] --data-arg std=[...])"
        ]
    out: dict[str, Any] = {}
    _, h, _ = (int(v) for v in prep["input_size"])
    size = image_size or given.get("image_size")
    if size is None:  # every data set: folders decode at it, CIFAR / MNIST resize on the device
        size = out["image_size"] = h
        out["image_size_reason"] = f"the input size of {source} (--image-size overrides)"
    if data == "folder":
        if "resize" not in given:
            out["resize"] = int(prep["resize"]) if size == h else max(int(size), round(size * prep["resize"] / h))
        for key in ("interpolation", "crop"):
            if key not in given:
                out[key] = prep[key]
    if "mean" not in given and "std" not in given:
        from ..weights.preprocessing import channel_stats_for

        channels = data_channels(data, given.get("channels"))
        out["mean"], out["std"] = channel_stats_for(prep["mean"], prep["std"], channels)
    applied = ", ".join(f"{k}={v}" for k, v in out.items() if k != "image_size_reason")
    return out, [f"preprocessing of the weights {source} applied to the data: {applied or 'nothing (all overridden)'}"]


@dataclass
class LoadedModel:
    """A network ready to use, with what its inputs need.

    Attributes:
        net: the network, in eval mode.
        info: the data ``info`` its inputs are preprocessed with (input_size, mean, std, resize, ...).
        class_names: one name per output.
        source: where it came from (the checkpoint's path, the weights' name, or "untrained MODEL").
        model_name: the registry name.
        checkpoint: the checkpoint's fields (no tensors) where the network came from one.
        model_args: the constructor arguments it was built with (the weights' own included).
        preprocessing: the preprocessing as the weights describe it (their ``mode``: torch, caffe, tf) or,
            for a checkpoint, as its data did.
    """

    net: nn.Module
    info: dict[str, Any]
    class_names: list[str]
    source: str
    model_name: str
    checkpoint: dict[str, Any] | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    preprocessing: dict[str, Any] | None = None

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

    def data(
        self,
        data: str | None = None,
        data_dir: str | Path | None = None,
        *,
        download: bool = False,
        batch_size: int | None = None,
        device: torch.device | str | None = None,
    ):
        """The data set to evaluate the network on, preprocessed as it expects: a checkpoint's own data set
        (and split seed) by default, or ``data`` (same class and channel counts); published or untrained
        weights: ``data`` with their preprocessing.

        Raises:
            ConfigError: no ``data`` where the network has none of its own. DataError: missing data.
            CheckpointError: data whose class or channel count does not fit the network.
        """
        device = torch.device(device) if device is not None else next(self.net.parameters()).device
        data_dir = None if data_dir is None else str(data_dir)
        if self.checkpoint is not None:
            return _checkpoint_data(
                self.checkpoint, data, data_dir, download=download, batch_size=batch_size, device=device
            )
        return _weights_data(self, data, data_dir, download=download, batch_size=batch_size, device=device)


def load_model(
    checkpoint: str | Path | None = None,
    *,
    model: str | None = None,
    pretrained: Any = None,
    ema: bool = False,
    device: str | torch.device = "cpu",
) -> LoadedModel:
    """A network to use: a reslab checkpoint, or a registry model with published or local weights (or, with
    ``model`` and no ``pretrained``, freshly initialised -- e.g. to see untrained filters).

    Args:
        checkpoint: a ``.pt`` written by ``reslab train`` or a run directory (its ``best.pt``, else ``last.pt``).
        model: with a checkpoint: the model it must hold (checked); without: the network to build.
        pretrained: weights for ``model`` (``True``, a tag such as ``"tv_in1k"``, ``MODEL.TAG`` or a file).
        ema: the checkpoint's EMA weights.
        device: where the network goes.

    Raises:
        ConfigError: neither or both of a checkpoint and ``model``/``pretrained``; unknown weights.
        CheckpointError: a missing or corrupt checkpoint, or weights that do not fit.
        UnknownModelError: an unknown model name.
    """
    from ..factory import normalize_pretrained
    from .runtime import resolve_device

    dev = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    pretrained = normalize_pretrained(pretrained)
    if checkpoint is not None:
        if pretrained is not None:
            raise ConfigError("give a checkpoint (--checkpoint) or published weights (--pretrained), not both")
        loaded = _from_checkpoint(checkpoint_file(checkpoint), model, ema)
    elif model is None and pretrained is not None:
        raise ConfigError("pretrained weights need the model they fit: give --model (e.g. --model resnet50)")
    elif model is None:
        raise ConfigError("say which network to look at: --checkpoint CKPT, or --model M [--pretrained TAG]")
    elif ema:
        raise ConfigError("--ema applies to checkpoints reslab trained; published weights have no EMA copy")
    elif pretrained is not None:
        loaded = _from_weights(model, pretrained)
    else:
        loaded = _untrained(model)
    if not loaded.info.get("input_size"):
        raise ConfigError(f"{loaded.source} records no input size; it cannot be fed images")
    loaded.net = loaded.net.to(dev).eval()
    return loaded


def _from_checkpoint(path: Path, model: str | None, ema: bool) -> LoadedModel:
    from .checkpoint import load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(path)
    net = model_from_checkpoint(ckpt, model_name=model, ema=ema)
    info = dict(ckpt.get("data_info") or {})
    names = list(ckpt.get("class_names") or [str(i) for i in range(int(ckpt["num_classes"]))])
    fields = {k: v for k, v in ckpt.items() if k not in ("model", "ema", "optimizer", "scheduler", "scaler")}
    return LoadedModel(
        net,
        info,
        names,
        str(path),
        str(ckpt["model_name"]),
        checkpoint=fields,
        model_args=dict(ckpt.get("model_args") or {}),
        preprocessing=info_preprocessing(info) if info.get("input_size") else None,
    )


def _from_weights(model: str, pretrained: Any) -> LoadedModel:
    """Published or local weights, no training: ``create_model(model, pretrained=...)`` with the weights' own
    preprocessing (where they record none: the model's input size and ImageNet's statistics, said so)."""
    from ..factory import create_model
    from ..models import get_model_entry
    from ..weights.preprocessing import Preprocessing, channel_stats_for

    entry = get_model_entry(model)
    net = create_model(entry.name, pretrained=pretrained)
    cfg = getattr(net, "pretrained_cfg", None) or {}
    source = str(cfg.get("source") or pretrained)
    prep = cfg.get("preprocessing")
    if prep is None:
        c, h, w = (int(v) for v in entry.input_size)
        default = Preprocessing(input_size=(3, h, w), resize=h if h <= 64 else int(h / 0.875 + 0.5))
        mean, std = channel_stats_for(default.mean, default.std, c)
        prep = {**default.to_dict(), "input_size": [c, h, w], "mean": mean, "std": std}
        logger.warning(
            "%s records no preprocessing: using %s's input size %dx%d and ImageNet's mean/std", source, entry.name, h, w
        )
    num_classes = int(getattr(net, "num_classes", cfg.get("num_classes", 0)) or 0)
    names = cfg.get("class_names")
    info = preprocessing_info(prep, names, num_classes)
    return LoadedModel(
        net,
        info,
        list(names or [str(i) for i in range(num_classes)]),
        source,
        str(getattr(net, "model_name", entry.name)),
        model_args=dict(getattr(net, "model_args", None) or {}),
        preprocessing=dict(prep),
    )


def _untrained(model: str) -> LoadedModel:
    """A freshly initialised registry model and a neutral preprocessing at its default input size."""
    from ..models import build_model, get_model_entry

    entry = get_model_entry(model)
    net = build_model(entry.name)
    c, h, w = (int(v) for v in entry.input_size)
    # no statistics were ever measured for random weights: mean 0.5 / std 0.5 maps [0, 1] pixels to [-1, 1]
    prep = {
        "input_size": [c, h, w],
        "mean": [0.5] * c,
        "std": [0.5] * c,
        "resize": h,
        "interpolation": "bilinear",
        "crop": "center",
    }
    names = [str(i) for i in range(int(net.num_classes))]
    info = preprocessing_info(prep, None, int(net.num_classes))
    source = f"untrained {entry.name} (random initialisation)"
    return LoadedModel(net, info, names, source, entry.name, preprocessing=info_preprocessing(info))


def _checkpoint_data(
    ckpt: dict[str, Any],
    data: str | None,
    data_dir: str | None,
    *,
    download: bool,
    batch_size: int | None,
    device: torch.device,
):
    """The data to evaluate a checkpoint on: by default the data set (and split seed) it was trained with;
    another data set must have the same class count and channels.

    Raises:
        CheckpointError: the data's class count or channel count differs from the checkpoint's.
    """
    from ..data import build_data
    from .checkpoint import checkpoint_config

    cfg = checkpoint_config(ckpt)
    same = data is None or data.strip().lower() == cfg.data
    name = cfg.data if data is None else data
    recorded = ""  # where the data directory came from the run (not --data-dir): said when the data is missing
    kwargs: dict[str, Any] = {
        "download": download,
        "batch_size": batch_size or cfg.eval_batch_size or max(cfg.batch_size, 256),
        "eval_batch_size": batch_size or cfg.eval_batch_size,
        "device": device,
        "augment": False,
        "seed": cfg.seed,
    }
    info = ckpt.get("data_info") or {}
    input_size = ckpt.get("input_size") or info.get("input_size")
    if same:
        kwargs.update(val_split=cfg.val_split, image_size=cfg.image_size, **cfg.data_args)
        if kwargs["image_size"] is None and input_size is not None:
            kwargs["image_size"] = int(input_size[-1])  # the size the run chose (the model's, the weights')
        if data_dir is None:
            data_dir, recorded = training_data_dir(ckpt)
    elif input_size is not None:
        kwargs["image_size"] = int(input_size[-1])
    if info.get("weights_preprocessing") is not None:
        # the run applied pretrained weights' preprocessing: evaluate with exactly what it recorded
        prep = info_preprocessing(info)
        kwargs.update(mean=prep["mean"], std=prep["std"])
        if name == "folder":
            kwargs.update({k: prep[k] for k in ("resize", "interpolation", "crop")})
    try:
        bundle = build_data(name, data_dir, **kwargs)
    except ConfigError:
        if same or "image_size" not in kwargs:
            raise
        del kwargs["image_size"]  # a data set with a fixed image size; its own size is checked below
        bundle = build_data(name, data_dir, **kwargs)
    except DataError as e:
        if not recorded:
            raise
        raise DataError(f"{e} -- {recorded} was not found: give --data-dir") from None
    path = ckpt.get("path", "the checkpoint")
    if bundle.num_classes != ckpt["num_classes"]:
        raise CheckpointError(
            f"{path} was trained for {ckpt['num_classes']} classes, but {bundle.name} has {bundle.num_classes}"
        )
    in_chans = ckpt.get("in_chans")
    if in_chans is not None and bundle.input_size[0] != in_chans:
        raise channel_mismatch(str(path), str(ckpt["model_name"]), int(in_chans), bundle.name, bundle.input_size[0])
    return bundle


def channel_mismatch(source: str, model: str, chans: int, data: str, data_chans: int) -> CheckpointError:
    """The error for a network taking ``chans``-channel images used on ``data`` of ``data_chans`` channels: one
    line naming the weights, both counts and the fix (fine-tuning adapts the first convolution)."""
    return CheckpointError(
        f"{source} takes {chans}-channel images, but {data} has {data_chans}-channel images: evaluate it on "
        f"{chans}-channel data, or fine-tune it on {data} first (reslab train --model {model} --pretrained {source} "
        f"--data {data}: its first convolution is adapted from {chans} to {data_chans} channels)"
    )


def _weights_data(
    loaded: LoadedModel,
    data: str | None,
    data_dir: str | None,
    *,
    download: bool,
    batch_size: int | None,
    device: torch.device,
):
    """The data to evaluate published (or untrained) weights on, with their preprocessing."""
    from ..data import build_data, data_channels

    source, info = loaded.source, loaded.info
    if not data:
        raise ConfigError(f"evaluating {source} needs the data to evaluate on: give --data (and --data-dir)")
    c = int(info["input_size"][0])
    if data_channels(data) != c and data not in ("folder", "synthetic"):
        raise channel_mismatch(source, loaded.model_name, c, data, data_channels(data))
    given = {"channels": 1} if c == 1 and data in ("folder", "synthetic") else {}
    kwargs, _ = preprocessing_data_args(data, info_preprocessing(info), source=source, given=given)
    kwargs.update(given)
    bundle = build_data(
        data, data_dir, download=download, batch_size=batch_size or 256, device=device, augment=False, **kwargs
    )
    num_classes = int(info.get("num_classes") or 0)
    if num_classes and bundle.num_classes != num_classes:
        raise CheckpointError(f"{source} classifies {num_classes} classes, but {bundle.name} has {bundle.num_classes}")
    return bundle


def load_image(image: str | Path | Any, info: Mapping[str, Any]) -> torch.Tensor:
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
