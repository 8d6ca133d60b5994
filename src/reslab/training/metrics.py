"""Classification metrics accumulated on the device: loss, top-1, top-k, confusion matrix.

Sums stay device tensors until :meth:`ClassificationMeter.compute`, so a CUDA loop never waits for
the GPU to report a running number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


def topk_for(num_classes: int) -> int:
    """The k of the "top-5" metric: 5, or the class count when there are fewer classes."""
    return max(1, min(5, num_classes))


@dataclass
class EvalMetrics:
    """Metrics of one pass over a split: mean loss, top-1, top-k (k = min(5, classes)), sample count,
    and the confusion matrix (rows: true class, columns: predicted class)."""

    loss: float
    top1: float
    top5: float
    n: int
    k: int = 5
    confusion: torch.Tensor | None = field(default=None, repr=False)

    def per_class_accuracy(self) -> list[float]:
        """Recall of each class (accuracy on the samples of that class; NaN for a class with none)."""
        if self.confusion is None:
            return []
        conf = self.confusion.double()
        totals = conf.sum(1)
        return [float(c / t) if t > 0 else float("nan") for c, t in zip(conf.diagonal(), totals)]

    @property
    def topk_name(self) -> str:
        """The top-k figure's name after its k: ``top5``, or ``top3`` for three classes."""
        return f"top{self.k}"

    def as_dict(self) -> dict[str, float | int]:
        """The figures under fixed keys (``top5`` whatever k is: the run records' ``summary.json``)."""
        return {"top1": self.top1, "top5": self.top5, "loss": self.loss, "n": self.n}


class ClassificationMeter:
    """Accumulates a split's summed loss, top-1 and top-k hits and confusion counts on ``device``."""

    def __init__(self, num_classes: int, device: torch.device | str, confusion: bool = True):
        self.num_classes = num_classes
        self.k = topk_for(num_classes)
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.top1 = torch.zeros((), dtype=torch.int64, device=device)
        self.topk = torch.zeros((), dtype=torch.int64, device=device)
        self.count = 0
        self.confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device) if confusion else None

    @torch.no_grad()
    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        logits = logits.float()
        self.loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
        top = logits.topk(self.k, dim=1).indices
        hits = top == labels[:, None]
        self.top1 += hits[:, 0].sum()
        self.topk += hits.any(1).sum()
        self.count += labels.numel()
        if self.confusion is not None:
            self.confusion += torch.bincount(labels * self.num_classes + top[:, 0], minlength=self.num_classes**2)

    def compute(self) -> EvalMetrics:
        n = max(self.count, 1)
        confusion = None
        if self.confusion is not None:
            confusion = self.confusion.view(self.num_classes, self.num_classes).cpu()
        return EvalMetrics(
            loss=float(self.loss_sum) / n,
            top1=int(self.top1) / n,
            top5=int(self.topk) / n,
            n=self.count,
            k=self.k,
            confusion=confusion,
        )
