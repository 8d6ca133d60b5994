"""Progress display: a tqdm bar per epoch on a terminal, one plain log line per epoch otherwise."""

from __future__ import annotations

import logging
import sys

from tqdm.auto import tqdm

logger = logging.getLogger("reslab.training")

MODES = ("auto", "bar", "plain", "none")


def use_bar(mode: str = "auto") -> bool:
    """Whether to draw a bar: ``auto`` draws one when stderr is a terminal."""
    if mode == "auto":
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return mode == "bar"


class EpochProgress:
    """A bar over one epoch's steps (with loss, accuracy and images/s), or nothing when not drawing."""

    def __init__(self, epoch: int, epochs: int, steps: int, initial: int = 0, enabled: bool = True):
        self.bar = None
        if enabled:
            self.bar = tqdm(total=steps, initial=initial, desc=f"epoch {epoch}/{epochs}", leave=False,
                            dynamic_ncols=True, file=sys.stderr, unit="step")  # fmt: skip

    def update(self, steps: int, loss: float, top1: float, images_per_s: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f}  acc {top1:.4f}  {images_per_s:,.0f} img/s", refresh=False)
            self.bar.update(steps)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def epoch_line(row: dict, epochs: int) -> str:
    """The one-line summary of an epoch (logged in every mode): ``lr`` is the mean rate of the epoch's
    steps; the evaluation figures are labelled with their split (``val``, or ``test`` when no
    validation split was held out)."""
    parts = [
        f"epoch {row['epoch']}/{epochs}",
        f"lr {row['lr']:.4g}",
        f"train loss {row['train_loss']:.4f} acc {row['train_top1']:.4f}",
    ]
    for s in ("val", "test"):
        if row.get(f"{s}_top1") is not None:
            parts.append(f"{s} loss {row[f'{s}_loss']:.4f} acc {row[f'{s}_top1']:.4f} top5 {row[f'{s}_top5']:.4f}")
        if row.get(f"ema_{s}_top1") is not None:
            parts.append(f"ema {s} acc {row[f'ema_{s}_top1']:.4f}")
    parts.append(f"{row['images_per_s']:,.0f} img/s")
    parts.append(f"{row['time']:.1f}s")
    return " | ".join(parts)
