"""Evaluation: a model over a loader (loss, top-1, top-k, confusion), and a checkpoint over a data split
with per-class accuracy and the confusion matrix written as CSV and PNG."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..models.base import AuxLogits
from .checkpoint import checkpoint_config, load_checkpoint, model_from_checkpoint
from .metrics import ClassificationMeter, EvalMetrics
from .runtime import autocast, check_amp, resolve_device

logger = logging.getLogger(__name__)


@torch.inference_mode()
def evaluate_model(
    model: nn.Module,
    loader,
    num_classes: int,
    *,
    device: torch.device | str = "cpu",
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    confusion: bool = True,
    reduce=None,
) -> EvalMetrics:
    """Run ``model`` (switched to eval mode, restored afterwards) over ``loader``.

    Args:
        model: returns logits (an :class:`AuxLogits` output counts by its main logits).
        loader: yields ``(images, labels)`` already on ``device``.
        num_classes: the class count (sets top-k's k and the confusion matrix size).
        amp_dtype: autocast dtype (None: full precision). channels_last: convert inputs.
        confusion: also accumulate the confusion matrix.
        reduce: called with the :class:`ClassificationMeter` before its figures are computed (torchrun:
            adds every rank's sums, so each rank's shard counts towards the whole split).

    Returns:
        :class:`EvalMetrics` (mean cross-entropy without label smoothing, top-1, top-k, n).
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    meter = ClassificationMeter(num_classes, device, confusion=confusion)
    try:
        for images, labels in loader:
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with autocast(device, amp_dtype):
                out = model(images)
            if isinstance(out, AuxLogits):
                out = out.logits
            meter.update(out, labels)
    finally:
        model.train(was_training)
    if reduce is not None:
        reduce(meter)
    return meter.compute()


@dataclass
class EvalResult:
    """What ``reslab eval`` reports: the metrics, per-class accuracy, and the files it wrote."""

    metrics: EvalMetrics
    split: str
    data: str
    class_names: list[str]
    checkpoint: str
    files: dict[str, str] = field(default_factory=dict)

    @property
    def top1(self) -> float:
        return self.metrics.top1

    @property
    def top5(self) -> float:
        return self.metrics.top5

    @property
    def loss(self) -> float:
        return self.metrics.loss

    @property
    def n(self) -> int:
        return self.metrics.n

    def per_class(self) -> list[tuple[str, float, int]]:
        """(class name, accuracy, sample count) per class."""
        conf = self.metrics.confusion
        counts = conf.sum(1).tolist() if conf is not None else []
        return list(zip(self.class_names, self.metrics.per_class_accuracy(), counts))

    def as_dict(self) -> dict[str, Any]:
        return self.metrics.as_dict()


def build_eval_data(
    ckpt: dict[str, Any],
    *,
    data: str | None = None,
    data_dir: str | None = None,
    download: bool = False,
    batch_size: int | None = None,
    device: torch.device,
):
    """The data bundle to evaluate a checkpoint on: by default the data set (and split seed) it was
    trained with; another data set must have the same class count and channels.

    Raises:
        CheckpointError: the data's class count or channel count differs from the checkpoint's.
    """
    from ..data import build_data

    cfg = checkpoint_config(ckpt)
    same = data is None or data.strip().lower() == cfg.data
    name = cfg.data if data is None else data
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
        if name == "folder" and kwargs["image_size"] is None and input_size is not None:
            kwargs["image_size"] = int(input_size[-1])  # the size the run chose (e.g. the model's input size)
        data_dir = data_dir if data_dir is not None else cfg.data_dir
    elif input_size is not None:
        kwargs["image_size"] = int(input_size[-1])
    if info.get("weights_preprocessing") is not None:
        # the run applied pretrained weights' preprocessing: evaluate with exactly what it recorded
        kwargs.update({k: v for k, v in (("mean", info.get("mean")), ("std", info.get("std"))) if v is not None})
        if name == "folder":
            kwargs.update(
                {
                    k: info[v]
                    for k, v in (("resize", "resize"), ("interpolation", "interpolation"), ("crop", "crop_mode"))
                    if info.get(v) is not None
                }
            )
    try:
        bundle = build_data(name, data_dir, **kwargs)
    except ConfigError:
        if same or "image_size" not in kwargs:
            raise
        del kwargs["image_size"]  # a data set with a fixed image size; its own size is checked below
        bundle = build_data(name, data_dir, **kwargs)
    path = ckpt.get("path", "the checkpoint")
    if bundle.num_classes != ckpt["num_classes"]:
        raise CheckpointError(
            f"{path} was trained for {ckpt['num_classes']} classes, but {bundle.name} has {bundle.num_classes}"
        )
    in_chans = ckpt.get("in_chans")
    if in_chans is not None and bundle.input_size[0] != in_chans:
        raise CheckpointError(
            f"{path} takes {in_chans}-channel images, but {bundle.name} has {bundle.input_size[0]} channels"
        )
    return bundle


def pretrained_model(model: str | None, pretrained: Any) -> tuple[nn.Module, dict[str, Any], str]:
    """A network with published or local weights and no training (``create_model(model, pretrained=...)``),
    in eval mode on the CPU, with the data ``info`` its preprocessing makes (input_size, mean, std, resize,
    interpolation, crop_mode) and the weights' name.

    Raises:
        ConfigError: no ``model``, or unknown weights. CheckpointError: a missing or unfitting file.
    """
    from ..models import create_model, get_model_entry
    from .config import normalize_pretrained

    if not model:
        raise ConfigError("pretrained weights need the model they fit: give --model (e.g. --model resnet50)")
    pretrained = normalize_pretrained(pretrained)
    entry = get_model_entry(model)
    net = create_model(entry.name, pretrained=pretrained)
    cfg = getattr(net, "pretrained_cfg", None) or {}
    prep = cfg.get("preprocessing")
    source = str(cfg.get("source") or pretrained)
    if prep is None:
        c, h, w = (int(v) for v in entry.input_size)
        grey = c == 1
        prep = {
            "input_size": [c, h, w],
            "resize": h if h <= 64 else int(h / 0.875 + 0.5),
            "crop": "center",
            "interpolation": "bilinear",
            "mean": [0.449] if grey else [0.485, 0.456, 0.406],
            "std": [0.226] if grey else [0.229, 0.224, 0.225],
        }
        logger.warning(
            "%s records no preprocessing: using %s's input size %dx%d and ImageNet's mean/std", source, entry.name, h, w
        )
    info = {
        "input_size": [int(v) for v in prep["input_size"]],
        "mean": [float(v) for v in prep["mean"]],
        "std": [float(v) for v in prep["std"]],
        "resize": int(prep["resize"]),
        "interpolation": str(prep.get("interpolation", "bilinear")),
        "crop_mode": str(prep.get("crop", "center")),
        "class_names": cfg.get("class_names"),
        "num_classes": int(getattr(net, "num_classes", cfg.get("num_classes", 0)) or 0),
    }
    return net.eval(), info, source


def _pretrained_eval_data(
    info: dict[str, Any],
    source: str,
    *,
    data: str | None,
    data_dir: str | None,
    download: bool,
    batch_size: int | None,
    device: torch.device,
):
    """The data to evaluate pretrained weights on, with the weights' preprocessing."""
    from ..data import build_data

    if not data:
        raise ConfigError(f"evaluating {source} needs the data to evaluate on: give --data (and --data-dir)")
    c, h, _ = info["input_size"]
    kwargs: dict[str, Any] = {"mean": info["mean"], "std": info["std"]}
    if data == "folder":
        kwargs.update(
            image_size=h,
            resize=info["resize"],
            interpolation=info["interpolation"],
            crop=info["crop_mode"],
            image_size_reason=f"the input size of the weights {source}",
        )
    if data in ("mnist", "fashion_mnist", "digits") and c != 1:
        raise CheckpointError(f"{source} takes {c}-channel images, but {data} has 1 channel")
    bundle = build_data(
        data, data_dir, download=download, batch_size=batch_size or 256, device=device, augment=False, **kwargs
    )
    if info["num_classes"] and bundle.num_classes != info["num_classes"]:
        raise CheckpointError(
            f"{source} classifies {info['num_classes']} classes, but {bundle.name} has {bundle.num_classes}"
        )
    return bundle


def _name_list(names: list[str]) -> str:
    return "[" + ", ".join(names) + "]"


def match_class_names(
    trained: list[str] | None, data_names: list[str], *, checkpoint: str = "the checkpoint", data: str = "the data"
) -> list[int] | None:
    """How to score data labelled by ``data_names`` with a network trained on ``trained`` class names.

    Returns:
        None when the names agree (or the checkpoint records none); else, when ``data_names`` is a
        permutation of ``trained``, ``order`` with ``order[j]`` = the network's index of data class ``j``.

    Raises:
        CheckpointError: the names differ as sets (both lists in one line): the per-class results
            would be reported under the wrong names.
    """
    if not trained:
        return None
    trained = [str(n) for n in trained]
    data_names = [str(n) for n in data_names]
    if trained == data_names:
        return None
    if sorted(trained) == sorted(data_names) and len(set(trained)) == len(trained):
        return [trained.index(name) for name in data_names]
    only_trained = [n for n in trained if n not in data_names]
    only_data = [n for n in data_names if n not in trained]
    raise CheckpointError(
        f"{checkpoint} was trained on classes {_name_list(trained)}, but {data} has {_name_list(data_names)} "
        f"(only in the checkpoint: {_name_list(only_trained)}; only in the data: {_name_list(only_data)}); "
        "the per-class results would be reported under the wrong names"
    )


class RelabelledLoader:
    """A loader whose labels are mapped through ``order`` (data label ``j`` -> ``order[j]``)."""

    def __init__(self, loader, order: list[int]) -> None:
        self.loader = loader
        self.order = torch.tensor(order, dtype=torch.int64)
        self.batch_size = loader.batch_size
        self.num_samples = loader.num_samples

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def __iter__(self):
        for images, labels in self.loader:
            yield images, self.order.to(labels.device)[labels]


def evaluate(
    checkpoint: str | Path | None,
    data: str | None = None,
    *,
    data_dir: str | Path | None = None,
    split: str = "test",
    model: str | None = None,
    ema: bool = False,
    device: str = "auto",
    batch_size: int | None = None,
    amp: str | None = None,
    download: bool = False,
    out: str | Path | None = None,
    pretrained: Any = None,
) -> EvalResult:
    """Evaluate a checkpoint -- or, with ``checkpoint=None``, ``model`` with ``pretrained`` weights as
    published (the torchvision reference scripts' ``--test-only --weights``): loss, top-1, top-5,
    per-class accuracy and confusion matrix.

    Args:
        checkpoint: a ``.pt`` file written by :func:`reslab.train` (or a run directory: its
            ``best.pt``, else ``last.pt``).
        data: data-set name; default: the one the checkpoint was trained on.
        data_dir: where the data lives; default: the training run's.
        split: ``"test"`` (the validation split where the data set has no separate test split),
            ``"val"`` or ``"train"`` (without augmentation).
        model: the model the caller expects; a checkpoint of another model raises.
        ema: evaluate the exponential-moving-average weights.
        device, batch_size, amp: execution options (``amp``: None, ``"bf16"`` or ``"fp16"``).
        download: fetch the data set if it is missing.
        out: where to write ``eval_<split>_confusion.csv/.png`` and ``eval_<split>_per_class.csv``;
            default: next to the checkpoint (pretrained weights: nowhere unless ``out`` is given).
        pretrained: with ``checkpoint=None``: ``True`` (the default weights), a tag (``"akamaster_cifar10"``),
            ``MODEL.TAG`` or a weights file, for ``model``; the data get the weights' preprocessing.

    Returns:
        :class:`EvalResult` (``.top1``, ``.top5``, ``.loss``, ``.n``, ``.per_class()``, ``.files``).

    Raises:
        CheckpointError: a missing/corrupt checkpoint, another model than ``model``, or data whose
            class count differs. ConfigError / DataError: bad options or unreadable data.
    """
    if split not in ("train", "val", "test"):
        raise ConfigError(f"split must be train, val or test, got {split!r}")
    if (checkpoint is None) == (pretrained is None):
        raise ConfigError("evaluate a checkpoint or pretrained weights (--model M --pretrained TAG), one of the two")
    if checkpoint is None:
        return _evaluate_pretrained(
            model,
            pretrained,
            data,
            data_dir=data_dir,
            split=split,
            device=device,
            batch_size=batch_size,
            amp=amp,
            download=download,
            out=out,
        )
    path = Path(checkpoint)
    if path.is_dir():
        path = path / "best.pt" if (path / "best.pt").exists() else path / "last.pt"
    out_dir = Path(out).expanduser() if out is not None else path.parent
    if out_dir.exists() and not out_dir.is_dir():  # refused before any work is done
        raise ConfigError(f"out {out_dir} is an existing file; it takes a directory (for eval_{split}_*.csv/.png)")
    ckpt = load_checkpoint(path)
    dev = resolve_device(device)
    amp_dtype = check_amp(amp, dev)
    net = model_from_checkpoint(ckpt, model_name=model, ema=ema).to(dev)
    bundle = build_eval_data(
        ckpt,
        data=data,
        data_dir=None if data_dir is None else str(data_dir),
        download=download,
        batch_size=batch_size,
        device=dev,
    )
    loader = bundle.loader(split)
    class_names = list(bundle.class_names)
    trained_names = ckpt.get("class_names")
    order = match_class_names(trained_names, class_names, checkpoint=str(path), data=bundle.name)
    if order is not None:
        # Score against the checkpoint's label order: data label j is the network's output order[j].
        loader = RelabelledLoader(loader, order)
        class_names = [str(n) for n in trained_names]
        logger.warning(
            "%s lists the checkpoint's classes in another order; labels are mapped by class name", bundle.name
        )
    metrics = evaluate_model(net, loader, bundle.num_classes, device=dev, amp_dtype=amp_dtype)
    result = EvalResult(metrics, split, bundle.name, class_names, str(path))
    out_dir.mkdir(parents=True, exist_ok=True)
    result.files = write_eval_files(result, out_dir)
    return result


def _evaluate_pretrained(
    model: str | None,
    pretrained: Any,
    data: str | None,
    *,
    data_dir: Any,
    split: str,
    device: str,
    batch_size: int | None,
    amp: str | None,
    download: bool,
    out: str | Path | None,
) -> EvalResult:
    out_dir = Path(out).expanduser() if out is not None else None
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"out {out_dir} is an existing file; it takes a directory (for eval_{split}_*.csv/.png)")
    dev = resolve_device(device)
    amp_dtype = check_amp(amp, dev)
    net, info, source = pretrained_model(model, pretrained)
    bundle = _pretrained_eval_data(
        info,
        source,
        data=data,
        data_dir=None if data_dir is None else str(data_dir),
        download=download,
        batch_size=batch_size,
        device=dev,
    )
    net = net.to(dev)
    loader = bundle.loader(split)
    class_names = list(bundle.class_names)
    order = match_class_names(info["class_names"], class_names, checkpoint=source, data=bundle.name)
    if order is not None:
        loader = RelabelledLoader(loader, order)
        class_names = [str(n) for n in info["class_names"]]
        logger.warning("%s lists the weights' classes in another order; labels are mapped by class name", bundle.name)
    metrics = evaluate_model(net, loader, bundle.num_classes, device=dev, amp_dtype=amp_dtype)
    result = EvalResult(metrics, split, bundle.name, class_names, source)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        result.files = write_eval_files(result, out_dir)
    return result


def write_eval_files(result: EvalResult, out_dir: Path) -> dict[str, str]:
    """Write the confusion matrix (CSV and PNG) and the per-class accuracy (CSV); returns their paths."""
    stem = out_dir / f"eval_{result.split}"
    files = {
        "confusion_csv": str(stem) + "_confusion.csv",
        "confusion_png": str(stem) + "_confusion.png",
        "per_class_csv": str(stem) + "_per_class.csv",
    }
    conf = result.metrics.confusion
    names = result.class_names
    with open(files["confusion_csv"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["true \\ predicted", *names])
        for name, row in zip(names, conf.tolist()):
            w.writerow([name, *row])
    with open(files["per_class_csv"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["class", "accuracy", "n"])
        for name, acc, n in result.per_class():
            w.writerow([name, f"{acc:.6g}", n])
    plot_confusion(conf, names, files["confusion_png"], title=f"{result.data} {result.split}: top-1 {result.top1:.4f}")
    return files


def plot_confusion(confusion: torch.Tensor, class_names: list[str], path: str | Path, title: str = "") -> None:
    """A confusion-matrix heat map (row-normalised colours, counts written when there are few classes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(class_names)
    conf = confusion.double()
    norm = conf / conf.sum(1, keepdim=True).clamp_min(1)
    size = min(4 + 0.45 * n, 24)
    fig = Figure(figsize=(size, size), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(norm.numpy(), cmap="Blues", vmin=0, vmax=1)
    if n <= 30:
        ax.set_xticks(range(n), class_names, rotation=90)
        ax.set_yticks(range(n), class_names)
        for i in range(n):
            for j in range(n):
                value = int(conf[i, j])
                if value:
                    ax.text(
                        j,
                        i,
                        str(value),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
