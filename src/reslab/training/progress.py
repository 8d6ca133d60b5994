"""Progress display: a tqdm bar per epoch on a terminal, one plain log line per epoch otherwise."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

from tqdm.auto import tqdm

logger = logging.getLogger("reslab.training")

MODES = ("auto", "bar", "plain", "none")


def use_bar(mode: str = "auto") -> bool:
    """Whether to draw a bar: ``auto`` draws one when stderr is a terminal."""
    if mode == "auto":
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return mode == "bar"


class _BarHandler(logging.Handler):
    """Writes records through ``tqdm.write`` so that they print above the bar instead of through it."""

    def __init__(self, original: logging.Handler):
        super().__init__(original.level)  # the level -q set (WARNING) stays in force
        self.setFormatter(original.formatter)
        self.filters = list(original.filters)
        self.original = original

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.original.stream)
        except Exception:  # pragma: no cover - as logging.StreamHandler does
            self.handleError(record)


def _writes_to_console(handler: logging.Handler) -> bool:
    return (
        isinstance(handler, logging.StreamHandler)
        and not isinstance(handler, logging.FileHandler)
        and getattr(handler, "stream", None) in (sys.stdout, sys.stderr)
    )


@contextlib.contextmanager
def bar_safe_logging(*loggers: logging.Logger) -> Iterator[None]:
    """While a bar is drawn, route the console handlers of ``loggers`` through ``tqdm.write``.

    Each console handler is replaced by one that keeps its level, format and filters; loggers without a
    console handler get none (tqdm's own ``logging_redirect_tqdm`` adds one to each, so a record that
    propagates from ``reslab`` to the root printed twice, and it drops the handlers' levels, so ``-q``
    printed INFO lines).
    """
    saved = [(logger, list(logger.handlers)) for logger in loggers]
    try:
        for logger in loggers:
            logger.handlers = [_BarHandler(h) if _writes_to_console(h) else h for h in logger.handlers]
        yield
    finally:
        for logger, handlers in saved:
            logger.handlers = handlers


class EpochProgress:
    """A bar over one epoch's steps (with loss, accuracy and images/s), or nothing when not drawing."""

    def __init__(self, epoch: int, epochs: int, steps: int, initial: int = 0, enabled: bool = True):
        self.bar = None
        if enabled:
            self.bar = tqdm(
                total=steps,
                initial=initial,
                desc=f"epoch {epoch}/{epochs}",
                leave=False,
                dynamic_ncols=True,
                file=sys.stderr,
                unit="step",
            )

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
