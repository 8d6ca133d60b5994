"""Evaluation: a model over a loader (loss, top-1, top-k, confusion), and a checkpoint over a data split
with per-class accuracy and the confusion matrix written as CSV and PNG."""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..models.base import AuxLogits
from .metrics import ClassificationMeter, EvalMetrics
from .precision import inference_precision
from .runtime import as_layout, autocast, check_amp, prepare_model, resolve_device

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
            with autocast(device, amp_dtype):
                out = model(as_layout(images, channels_last))
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
        """``{top1, topK, loss, n}``, the top-k key named after its k (``top3`` for three classes)."""
        m = self.metrics
        return {"top1": m.top1, m.topk_name: m.top5, "loss": m.loss, "n": m.n}


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
    split: str | None = None,
    model: str | None = None,
    ema: bool = False,
    device: str = "auto",
    batch_size: int | None = None,
    amp: str | None = "auto",
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
        split: ``"test"``, ``"val"`` or ``"train"`` (without augmentation); a split the data set does not
            have is refused (a folder of only ``train/`` and ``val/`` has no test split; a run that held out no
            validation split has no ``val``). Default: ``"test"``, else ``"val"`` where there is no test split.
        model: the model the caller expects; a checkpoint of another model raises.
        ema: evaluate the exponential-moving-average weights.
        device, batch_size, amp: execution options (``amp``: None (fp32), ``"bf16"``, ``"fp16"`` or ``"auto"``:
            a checkpoint's own training precision, so that its figures repeat; for published weights the
            rule of :mod:`reslab.training.precision`).
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
    if split not in (None, "train", "val", "test"):
        raise ConfigError(f"split must be train, val or test, got {split!r}")
    if (checkpoint is None) == (pretrained is None):
        raise ConfigError("evaluate a checkpoint or pretrained weights (--model M --pretrained TAG), one of the two")
    from .loading import checkpoint_file, load_model, training_data_dir

    path = checkpoint_file(checkpoint) if checkpoint is not None else None
    if out is not None:
        out_dir = Path(out).expanduser()
    else:
        out_dir = path.parent if path is not None else None  # published weights: nowhere unless asked
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():  # refused before any work is done
        raise ConfigError(
            f"out {out_dir} is an existing file; it takes a directory (for eval_{split or 'test'}_*.csv/.png)"
        )
    dev = resolve_device(device)
    check_amp(amp, dev)  # an impossible precision is refused before anything is loaded
    loaded = load_model(path, model=model, pretrained=pretrained, ema=ema, device=dev)
    bundle = loaded.data(data, data_dir, download=download, batch_size=batch_size, device=dev)
    if split is None:
        split = "test" if "test" in bundle.splits() else "val"
    root = data_dir
    if root is None and data is None and loaded.checkpoint is not None:
        root = training_data_dir(loaded.checkpoint)[0]
    where = f" at {root}" if root else ""
    loader = bundle.split_loader(split, what=f"the {bundle.name} data set{where}")
    class_names = list(bundle.class_names)
    ckpt = loaded.checkpoint
    trained_names = ckpt.get("class_names") if ckpt is not None else loaded.info["class_names"]
    order = match_class_names(trained_names, class_names, checkpoint=loaded.source, data=bundle.name)
    if order is not None:
        # Score against the network's label order: data label j is the network's output order[j].
        loader = RelabelledLoader(loader, order)
        class_names = [str(n) for n in trained_names]
        whose = "checkpoint's" if loaded.checkpoint is not None else "weights'"
        logger.warning("%s lists the %s classes in another order; labels are mapped by class name", bundle.name, whose)
    chosen = inference_precision(
        amp, dev, checkpoint=loaded.checkpoint, model=loaded.net, input_shape=bundle.input_size
    )
    amp_dtype = check_amp(chosen.amp, dev)
    net = prepare_model(loaded.net, dev, chosen.channels_last)
    metrics = evaluate_model(
        net, loader, bundle.num_classes, device=dev, amp_dtype=amp_dtype, channels_last=chosen.channels_last
    )
    if not math.isfinite(metrics.loss):
        raise CheckpointError(
            f"{loaded.source}: the network's outputs on {bundle.name} {split} are not finite (loss {metrics.loss}): "
            "its weights are damaged or its training diverged; no score reported"
        )
    result = EvalResult(metrics, split, bundle.name, class_names, loaded.source)
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
