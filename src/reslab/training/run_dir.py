"""A run directory: the resolved config, per-epoch metrics (CSV, curves, TensorBoard), checkpoints, log.

Layout::

    RUN_DIR/config.yaml    the resolved configuration
    RUN_DIR/metrics.csv    one row per epoch (see :func:`metric_columns`)
    RUN_DIR/curves.png     train and validation (or test) loss and accuracy per epoch
    RUN_DIR/last.pt        the latest checkpoint (epoch boundary, or mid-epoch after a signal)
    RUN_DIR/best.pt        the checkpoint with the best per-epoch top-1
    RUN_DIR/train.log      the run's log messages
    RUN_DIR/summary.json   the final metrics, once the run has finished
    RUN_DIR/tensorboard/   TensorBoard events (only when tensorboard is installed)
    RUN_DIR/.reslab-run    the marker that makes a directory recognisable as a reslab run
    RUN_DIR/.reslab-lock   held while the run trains (PID and host; :mod:`reslab.training.run_lock`)

metrics.csv: ``lr`` is the mean learning rate over the epoch's optimiser steps (the rate the epoch
trained with; kept exact across a mid-epoch resume). The per-epoch evaluation columns are named after
the split they measure: ``val_loss``/``val_top1``/``val_top5`` (and ``ema_val_*``) when a validation
split was held out, ``test_*`` when there was none and the per-epoch figures (and the choice of
``best.pt``) used the test split.

Nothing of a user's is lost: a new run only goes into an empty or new directory; ``--overwrite``
replaces only a reslab run's own files (:attr:`RunDir.FILES`, ``eval_*`` outputs, ``tensorboard/``, a
``report.html`` that ``reslab report`` wrote),
and only once the new run has written its first checkpoint -- until then they wait in
``RUN_DIR/.replaced-<stamp>/`` and are put back if the new run fails (a kill in between leaves them
there, recoverable by hand).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, ConfigError
from .checkpoint import is_reslab_checkpoint, write_failure
from .config import TrainConfig, save_config
from .run_lock import LOCK, RunLock, check_not_in_use

logger = logging.getLogger(__name__)

#: the marker file a run directory holds from its creation on
MARKER = ".reslab-run"
#: curves.png is redrawn at most this often during a run (seconds; always after its last epoch)
PLOT_INTERVAL_S = 30.0
#: the first line of a run report (``reslab report``): such a report.html belongs to the run
REPORT_MARK = "<!-- reslab run report -->"
#: how much of an existing report.html is read to look for the mark
REPORT_MARK_WINDOW = 512


def is_reslab_report(path: str | Path) -> bool:
    """Whether ``path`` is a page ``reslab report`` wrote (its first line carries :data:`REPORT_MARK`)."""
    try:
        with open(path, "rb") as f:
            return f.read(REPORT_MARK_WINDOW).lstrip().startswith(REPORT_MARK.encode())
    except OSError:
        return False


#: where --overwrite keeps the previous run's files until the new run's first checkpoint
REPLACED_PREFIX = ".replaced-"
#: temporary files of interrupted writes (a kill, a full disk): removed when a run (re)starts
TEMPORARY_PATTERNS = (
    ".last.pt.tmp-*",
    ".best.pt.tmp*",
    "metrics.csv.tmp",
    ".metrics.csv.tmp",
    ".config.yaml.tmp",
    ".summary.json.tmp",
    ".curves.png.tmp",
    f".{MARKER}.tmp",
)


def metric_columns(split: str = "val") -> tuple[str, ...]:
    """The columns of ``metrics.csv``; ``split`` names the per-epoch evaluation split (val or test)."""
    return (
        "epoch",
        "lr",
        "train_loss",
        "train_top1",
        f"{split}_loss",
        f"{split}_top1",
        f"{split}_top5",
        f"ema_{split}_loss",
        f"ema_{split}_top1",
        f"ema_{split}_top5",
        "time",
        "images_per_s",
    )


def quoted(path: str | Path) -> str:
    """A path as a shell word (quoted when it holds spaces or other special characters)."""
    return shlex.quote(str(path))


def replaced_dirs(path: str | Path) -> list[Path]:
    """The ``.replaced-*`` folders an interrupted ``--overwrite`` left in ``path`` (oldest first)."""
    path = Path(path)
    return sorted(p for p in path.glob(REPLACED_PREFIX + "*") if p.is_dir()) if path.is_dir() else []


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a reslab run directory: it holds the marker file, a reslab ``last.pt`` or
    ``best.pt`` (runs of earlier versions have no marker), or an interrupted ``--overwrite``'s files."""
    path = Path(path)
    if (path / MARKER).is_file() or replaced_dirs(path):
        return True
    return any(is_reslab_checkpoint(path / name) for name in ("last.pt", "best.pt"))


def check_writable(path: str | Path, what: str | None = None) -> Path:
    """Check that ``path`` can be created or written into: its nearest existing ancestor (or itself) is a
    writable folder. Returns that existing path.

    Raises:
        ConfigError: an ancestor is a file, or the folder is not writable.
    """
    path = Path(path)
    what = what or f"--out {path}"
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{what}: {existing} is a file, not a directory; choose another --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{what}: {existing} is not writable; choose another --out")
    return existing


#: what a refusal of a run directory in use suggests to a new run
IN_USE_HINT = "wait for that run to end or stop it, or choose another --out"


def check_out(path: str | Path, overwrite: bool, *, locked: bool = False) -> None:
    """Refuse an ``--out`` a new run cannot use, before any data is read or anything is written.

    A new run goes into a missing or empty directory; with ``overwrite``, also into a reslab run
    directory (whose own files it replaces). The directory (or the nearest existing parent) must be
    a writable folder, and no live run may hold it (:mod:`reslab.training.run_lock`; ``locked``: this
    process holds the lock itself).

    Raises:
        ConfigError: ``path`` (or a parent) is a file, is not writable, is in use by a live run, is not
            empty (without ``overwrite``), or is not a reslab run (with ``overwrite``).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path} is a file, not a directory; choose another --out")
    if check_writable(path) != path:
        return
    if not locked:  # a live run's directory: neither --overwrite nor a new run may touch it
        check_not_in_use(path, IN_USE_HINT)
    entries = sorted(p.name for p in path.iterdir() if p.name != LOCK)
    if not entries:
        return
    run = is_run_dir(path)
    if overwrite:
        if not run:
            raise ConfigError(
                f"--out {path} is not a reslab run directory (no reslab checkpoint or {MARKER} in it); "
                "--overwrite only replaces a reslab run's files. Choose another --out."
            )
        return
    if (path / "last.pt").exists() and run:
        if (path / "summary.json").exists():
            raise ConfigError(
                f"{path} already holds a run (finished: summary.json); choose another --out, or pass "
                "--overwrite to replace it."
            )
        raise ConfigError(
            f"{path} already holds a run (last.pt); continue it with `reslab train --resume {quoted(path)}`, "
            "choose another --out, or pass --overwrite to replace it."
        )
    shown = ", ".join(entries[:3]) + (f", ... ({len(entries)} entries)" if len(entries) > 3 else "")
    hint = (
        "choose another --out, or pass --overwrite to replace the run in it"
        if run
        else "choose an empty or new directory with --out"
    )
    raise ConfigError(f"--out {path} is not empty ({shown}); {hint}.")


class RunDir:
    """Writes a run's files under ``path``.

    Args:
        path: the run directory (created by :meth:`open`, or by :meth:`create_unique`).
        eval_split: the split the per-epoch evaluation measures, ``val`` or ``test``; it names the
            metric columns, curves and TensorBoard tags.
        writer: False on the ranks other than 0 of a torchrun job: the object keeps the rows and the
            paths, but writes (and deletes) nothing.
    """

    #: the files a run writes (``--overwrite`` replaces these and nothing else, with eval_* and tensorboard/)
    FILES = ("config.yaml", "metrics.csv", "curves.png", "last.pt", "best.pt", "train.log", "summary.json", MARKER)
    OWN_PATTERNS = ("eval_*_confusion.csv", "eval_*_confusion.png", "eval_*_per_class.csv")

    def __init__(self, path: str | Path, *, eval_split: str = "val", writer: bool = True):
        self.path = Path(path)
        self.writer = writer
        self.eval_split = eval_split
        self.columns = metric_columns(eval_split)
        self.rows: list[dict[str, Any]] = []
        self._tb = None
        self._plotted_at: float | None = None  # time.monotonic() of the last curves.png
        self._plot_pending = False  # epochs recorded since
        self._tb_checked = False
        self._replaced: Path | None = None
        self._lock: RunLock | None = None

    def lock(self, hint: str = IN_USE_HINT) -> None:
        """Take the run directory's lock for the run's lifetime (:meth:`unlock` at its end; no-op when not
        the writer, or held already).

        Raises:
            ConfigError: a live run holds it ("run directory DIR in use by PID N on HOST; ``hint``").
        """
        if self.writer and self._lock is None:
            self._lock = RunLock.acquire(self.path, hint)

    def unlock(self) -> None:
        """Release the lock (the run's training is over)."""
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def open(self, *, overwrite: bool = False, unique: bool = False) -> None:
        """Make ``path`` this run's directory, once :func:`check_out` passed and the data and model are
        ready: create it, or with ``overwrite`` move the previous run's own files aside into
        ``.replaced-<stamp>/`` (deleted by :meth:`commit`, put back by :meth:`restore`).

        ``unique`` (the default run directories): ``path`` is created exclusively, and when it is taken
        ``path-2``, ``path-3``... is used instead, so two runs started in the same second never share one.
        """
        if not self.writer:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        base = self.path
        for n in range(1, 10_000):
            try:
                self.path.mkdir()
                self.lock()
                break
            except FileExistsError:
                if not unique:
                    self.lock()  # before anything is moved: a live run's files stay where it writes them
                    try:
                        check_out(self.path, overwrite, locked=True)  # another process may have written meanwhile
                        self.clean_temporaries()
                        if overwrite:
                            self.keep_replaced()
                            self._move_aside()
                    except BaseException:
                        self.unlock()
                        raise
                    break
                self.path = base.with_name(f"{base.name}-{n + 1}")
        self.mark()

    def mark(self) -> None:
        """Write the marker file that identifies a reslab run directory (with torchrun's job id, by which a
        restarted job knows the directory as its own)."""
        if not self.writer:
            return
        record = {"reslab_run": 1, "created": time.time()}
        if os.environ.get("TORCHELASTIC_RUN_ID"):
            record["job"] = os.environ["TORCHELASTIC_RUN_ID"]
        self._write_text(self.path / MARKER, json.dumps(record) + "\n")

    def _own_files(self) -> list[Path]:
        own = [self.path / name for name in self.FILES if (self.path / name).exists()]
        for pattern in self.OWN_PATTERNS:
            own.extend(sorted(self.path.glob(pattern)))
        if (self.path / "tensorboard").is_dir():
            own.append(self.path / "tensorboard")
        if is_reslab_report(self.path / "report.html"):  # a user's own report.html stays
            own.append(self.path / "report.html")
        return own

    def _move_aside(self) -> None:
        own = self._own_files()
        if not own:
            return
        aside = self.path / f"{REPLACED_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        aside.mkdir()
        for item in own:
            os.replace(item, aside / item.name)
        self._replaced = aside
        logger.debug("moved the previous run's files into %s until the new run's first checkpoint", aside)

    def commit(self) -> None:
        """The run has a checkpoint on disk: the files this run's ``--overwrite`` replaced can go now (only
        those: an earlier, interrupted ``--overwrite``'s folder holds another run's files, and stays)."""
        aside, self._replaced = self._replaced, None
        if aside is not None and self.writer:
            shutil.rmtree(aside, ignore_errors=True)

    def keep_replaced(self) -> None:
        """Say, one line each, that the ``.replaced-*`` folders an interrupted ``--overwrite`` left are kept
        (the files of a run it replaced; nothing deletes them but the user)."""
        if not self.writer:
            return
        for aside in replaced_dirs(self.path):
            if aside != self._replaced:
                logger.warning(
                    "kept %s: the files of a run an --overwrite replaced (stopped before its first checkpoint); "
                    "move them back to resume that run, or delete the folder",
                    aside,
                )

    def restore(self) -> None:
        """The new run failed before its first checkpoint: remove what it wrote and put the previous run's
        files back where they were (no-op unless ``--overwrite`` moved some aside)."""
        if not self.writer:
            return
        aside, self._replaced = self._replaced, None
        if aside is None:
            return
        self.close()
        for item in self._own_files():
            if item.is_dir():
                shutil.rmtree(item)
            else:
                item.unlink()
        for item in aside.iterdir():
            os.replace(item, self.path / item.name)
        aside.rmdir()
        self.clean_temporaries()

    def clean_temporaries(self) -> None:
        """Remove temporary files that interrupted writes (a kill, a full disk) left behind."""
        if not self.writer:
            return
        for pattern in TEMPORARY_PATTERNS:
            for f in self.path.glob(pattern):
                if f.is_file():
                    f.unlink(missing_ok=True)

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

    def write_config(self, config: TrainConfig, comment: str | None = None) -> None:
        """Write ``config.yaml``; ``comment`` (e.g. the global batch of a torchrun job) goes on top as ``# ...``."""
        if not self.writer:
            return
        with _atomic(self.path / "config.yaml") as tmp:
            save_config(config, tmp)
            if comment:
                tmp.write_text(f"# {comment}\n" + tmp.read_text())

    def load_rows(self, up_to_epoch: int, last_row: dict[str, Any] | None = None) -> None:
        """Read ``metrics.csv`` of a resumed run, keeping epochs <= ``up_to_epoch`` (a run killed after
        writing a row but before its checkpoint must not keep that row twice). ``last_row`` is the
        checkpoint's copy of epoch ``up_to_epoch``'s row: a run killed after its checkpoint but before
        the row reached metrics.csv gets it back. Columns of the other split's naming are read too."""
        self.rows = []
        if not self.writer:
            return
        if self.metrics_csv.exists():
            with open(self.metrics_csv, newline="") as f:
                for row in csv.DictReader(f):
                    parsed = {k: _parse(v) for k, v in self.with_columns(row).items() if k in self.columns}
                    if parsed.get("epoch") is not None and parsed["epoch"] <= up_to_epoch:
                        self.rows.append(parsed)
        have = self.rows[-1]["epoch"] if self.rows else 0
        if last_row and last_row.get("epoch") == up_to_epoch and have < up_to_epoch:
            logger.info(
                "metrics.csv lacked epoch %d's row (the run was stopped while writing it): restored from %s",
                up_to_epoch,
                self.last.name,
            )
            self.add_epoch(self.with_columns(last_row))
            return
        self._write_csv()

    def with_columns(self, row: dict[str, Any]) -> dict[str, Any]:
        """``row`` under this run's column names (a row stored under the other split's names is renamed)."""
        other = "test" if self.eval_split == "val" else "val"
        out = {}
        for key, value in row.items():
            if key is not None and key not in self.columns:  # (None: csv's key for surplus fields)
                key = key.replace(other, self.eval_split, 1)
            out[key] = value
        return out

    def add_epoch(self, row: dict[str, Any], *, last: bool = False) -> None:
        """Record one epoch: metrics.csv, TensorBoard scalars and curves.png. Drawing the picture takes a
        few tenths of a second (a tenth of a short epoch), so it is redrawn at most every
        :data:`PLOT_INTERVAL_S` seconds, and always for the ``last`` epoch and when the run closes."""
        self.rows.append({k: row.get(k) for k in self.columns})
        if not self.writer:
            return
        self._write_csv()
        self._plot_pending = True
        if last or self._plotted_at is None or time.monotonic() - self._plotted_at >= PLOT_INTERVAL_S:
            self._draw_pending()
        writer = self._tensorboard()
        if writer is not None:
            with self._tensorboard_write():
                for key, value in row.items():
                    if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                        writer.add_scalar(key.replace("_", "/", 1), value, row["epoch"])
                writer.flush()

    @contextlib.contextmanager
    def _tensorboard_write(self) -> Iterator[None]:
        """TensorBoard's event writer failing (a full disk) is one line, as every other file of the run:
        its background thread's error comes back at the next write or flush as an OSError."""
        try:
            yield
        except OSError as e:
            folder = self.path / "tensorboard"
            self._tb = None  # closing it would raise the same error again
            raise CheckpointError(
                f"could not write {folder}: {write_failure(e, self.path)}; the run's checkpoints are intact"
            ) from None

    def _write_csv(self) -> None:
        with _atomic(self.metrics_csv) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns)
            w.writeheader()
            for row in self.rows:
                w.writerow({k: _format(row.get(k)) for k in self.columns})

    def plot_curves(self) -> None:
        """Draw train and val (or test) loss and accuracy per epoch into ``curves.png`` (matplotlib, Agg)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        s = self.eval_split
        epochs = [r["epoch"] for r in self.rows]
        fig = Figure(figsize=(10, 4), dpi=100)
        FigureCanvasAgg(fig)
        ax_loss, ax_acc = fig.subplots(1, 2)
        for ax, keys, title in (
            (ax_loss, ("train_loss", f"{s}_loss", f"ema_{s}_loss"), "loss"),
            (ax_acc, ("train_top1", f"{s}_top1", f"ema_{s}_top1"), "top-1 accuracy"),
        ):
            for key in keys:
                values = [r.get(key) for r in self.rows]
                if any(v is not None for v in values):
                    ax.plot(
                        epochs,
                        [float("nan") if v is None else v for v in values],
                        marker=".",
                        label=key.replace("_top1", "").replace("_loss", "").replace("_", " "),
                    )
            ax.set_xlabel("epoch")
            ax.set_title(title)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        with _atomic(self.curves_png) as tmp:
            fig.savefig(tmp, format="png")

    def _tensorboard(self):
        # TensorBoard is optional: events are written only when the package can be imported.
        if not self._tb_checked:
            self._tb_checked = True
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                logger.debug("tensorboard is not installed; no event files written")
            else:
                _quiet_event_writer_threads()
                self._tb = SummaryWriter(log_dir=str(self.path / "tensorboard"))
        return self._tb

    def write_summary(self, summary: dict[str, Any]) -> None:
        if not self.writer:
            return
        self._write_text(self.path / "summary.json", json.dumps(summary, indent=2) + "\n")

    def _write_text(self, path: Path, text: str) -> None:
        with _atomic(path) as tmp:
            tmp.write_text(text)

    def _draw_pending(self) -> None:
        if self._plot_pending and self.rows:
            self.plot_curves()
            self._plotted_at = time.monotonic()
        self._plot_pending = False

    def close(self) -> None:
        """Draw curves.png where epochs came since it was drawn; close TensorBoard's writer."""
        if self._plot_pending and self.writer:
            try:
                self._draw_pending()
            except OSError as e:  # the run is ending (perhaps on this very error): its files stay as they are
                self._plot_pending = False
                logger.warning("could not draw %s: %s", self.path / "curves.png", write_failure(e, self.path))
        if self._tb is not None:
            with self._tensorboard_write():
                tb, self._tb = self._tb, None
                tb.close()
        self._tb_checked = False


class RunLogHandler(logging.FileHandler):
    """``train.log``. A write that fails (a full disk) is reported once, in one line on stderr, and the
    log goes on on the console alone -- instead of logging's traceback for every following line."""

    def __init__(self, path: str | Path):
        super().__init__(path, encoding="utf-8")
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        if self.failed:
            return
        self.failed = True
        error = sys.exc_info()[1]
        why = write_failure(error, Path(self.baseFilename).parent) if error is not None else "unknown error"
        sys.stderr.write(
            f"reslab: warning: could not write {self.baseFilename}: {why}; the log goes on on the console only\n"
        )


def _quiet_event_writer_threads() -> None:
    """TensorBoard's event writer thread re-raises a failed write, so ``threading`` prints its traceback,
    although the same error reaches the training thread at the next write (and becomes one line there):
    that one thread's OSErrors are not printed. Installed once; every other thread's errors print as before."""
    import threading

    previous = threading.excepthook
    if getattr(previous, "reslab_event_writer", False):
        return

    def hook(args) -> None:
        if isinstance(args.exc_value, OSError) and type(args.thread).__name__ == "_AsyncWriterThread":
            return
        previous(args)

    hook.reslab_event_writer = True  # type: ignore[attr-defined]
    threading.excepthook = hook


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """Write ``path`` through a temporary file beside it (``.NAME.tmp``), renamed into place when the
    block succeeds: a kill never leaves a half-written file. A failed write (a full disk, say) removes
    the temporary and raises one line."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(
            f"could not write {path}: {write_failure(e, path.parent)}; the run's checkpoints are intact"
        ) from None


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
