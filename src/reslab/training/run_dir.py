"""A run directory: the resolved config, per-epoch metrics (CSV, curves, TensorBoard), checkpoints, log.

Layout::

    RUN_DIR/config.yaml    the resolved configuration
    RUN_DIR/metrics.csv    one row per epoch (METRIC_COLUMNS)
    RUN_DIR/curves.png     train/val loss and accuracy per epoch
    RUN_DIR/last.pt        the latest checkpoint (epoch boundary, or mid-epoch after a signal)
    RUN_DIR/best.pt        the checkpoint with the best validation top-1
    RUN_DIR/train.log      the run's log messages
    RUN_DIR/summary.json   the final metrics, once the run has finished
    RUN_DIR/tensorboard/   TensorBoard events (only when tensorboard is installed)
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

from .config import TrainConfig, save_config

logger = logging.getLogger(__name__)

METRIC_COLUMNS = (
    "epoch", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5",
    "ema_val_loss", "ema_val_top1", "ema_val_top5", "time", "images_per_s",
)  # fmt: skip


class RunDir:
    """Writes a run's files under ``path`` (created if needed)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, Any]] = []
        self._tb = None
        self._tb_checked = False

    #: the files a run writes (``clear`` removes these and nothing else)
    FILES = ("config.yaml", "metrics.csv", "curves.png", "last.pt", "best.pt", "train.log", "summary.json")

    @classmethod
    def clear(cls, path: str | Path) -> None:
        """Remove a previous run's files from ``path`` (other files in it are left alone)."""
        path = Path(path)
        for name in cls.FILES:
            (path / name).unlink(missing_ok=True)
        for pattern in ("eval_*_confusion.csv", "eval_*_confusion.png", "eval_*_per_class.csv"):
            for f in path.glob(pattern):
                f.unlink()
        if (path / "tensorboard").is_dir():
            shutil.rmtree(path / "tensorboard")

    @property
    def last(self) -> Path:
        return self.path / "last.pt"

    @property
    def best(self) -> Path:
        return self.path / "best.pt"

    @property
    def metrics_csv(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def curves_png(self) -> Path:
        return self.path / "curves.png"

    def write_config(self, config: TrainConfig) -> None:
        save_config(config, self.path / "config.yaml")

    def load_rows(self, up_to_epoch: int) -> None:
        """Read ``metrics.csv`` of a resumed run, keeping epochs <= ``up_to_epoch`` (a run killed after
        writing a row but before its checkpoint must not keep that row twice)."""
        self.rows = []
        if self.metrics_csv.exists():
            with open(self.metrics_csv, newline="") as f:
                for row in csv.DictReader(f):
                    parsed = {k: _parse(v) for k, v in row.items() if k in METRIC_COLUMNS}
                    if parsed.get("epoch") is not None and parsed["epoch"] <= up_to_epoch:
                        self.rows.append(parsed)
        self._write_csv()

    def add_epoch(self, row: dict[str, Any]) -> None:
        """Record one epoch: metrics.csv, curves.png and TensorBoard scalars."""
        self.rows.append({k: row.get(k) for k in METRIC_COLUMNS})
        self._write_csv()
        self.plot_curves()
        writer = self._tensorboard()
        if writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                    writer.add_scalar(key.replace("_", "/", 1), value, row["epoch"])
            writer.flush()

    def _write_csv(self) -> None:
        tmp = self.metrics_csv.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
            w.writeheader()
            for row in self.rows:
                w.writerow({k: _format(row.get(k)) for k in METRIC_COLUMNS})
        tmp.replace(self.metrics_csv)

    def plot_curves(self) -> None:
        """Draw train/val loss and accuracy per epoch into ``curves.png`` (matplotlib, Agg canvas)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        epochs = [r["epoch"] for r in self.rows]
        fig = Figure(figsize=(10, 4), dpi=100)
        FigureCanvasAgg(fig)
        ax_loss, ax_acc = fig.subplots(1, 2)
        for ax, keys, title in (
            (ax_loss, ("train_loss", "val_loss", "ema_val_loss"), "loss"),
            (ax_acc, ("train_top1", "val_top1", "ema_val_top1"), "top-1 accuracy"),
        ):
            for key in keys:
                values = [r.get(key) for r in self.rows]
                if any(v is not None for v in values):
                    ax.plot(epochs, [float("nan") if v is None else v for v in values], marker=".",
                            label=key.replace("_top1", "").replace("_loss", ""))  # fmt: skip
            ax.set_xlabel("epoch")
            ax.set_title(title)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        fig.savefig(self.curves_png)

    def _tensorboard(self):
        # TensorBoard is optional: events are written only when the package can be imported.
        if not self._tb_checked:
            self._tb_checked = True
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                logger.debug("tensorboard is not installed; no event files written")
            else:
                self._tb = SummaryWriter(log_dir=str(self.path / "tensorboard"))
        return self._tb

    def write_summary(self, summary: dict[str, Any]) -> None:
        (self.path / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        self._tb_checked = False


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _parse(text: str | None) -> float | int | None:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)
