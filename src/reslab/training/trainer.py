"""The training loop: one class that trains a model on a data bundle and keeps its run directory.

Resuming is exact: shuffling and augmentation are a pure function of (seed, epoch) (the loader's
``set_epoch``), and checkpoints hold every other state that the next step depends on (weights,
optimiser, scheduler, scaler, EMA, all random generators, the running train metrics).

Signals: SIGINT/SIGTERM finish the current step, then ``last.pt`` is saved *at that step* (its
``step`` field says how many batches of the epoch were consumed) and the run stops. Resuming
skips those batches of the epoch (the loader reproduces the same order) and restores the random
generators after skipping, so the continued run equals an uninterrupted one bit for bit on the
same machine. A second signal stops at once (the last checkpoint on disk stays intact). During the
final evaluation a signal stops at once too; ``last.pt`` then holds the complete training and a
resume only evaluates and writes ``summary.json``.

torchrun (:mod:`reslab.training.distributed`): the model trains in DistributedDataParallel, each rank
on its shard of every global batch; the ranks agree on every stop (a signal, a non-finite loss) at the
same optimiser step, evaluation is sharded and its sums all-reduced, and rank 0 alone writes files.
With ``accum_steps`` K, the optimiser steps once per K batches (DDP's gradient all-reduce only on the
last), each batch's loss weighted by its share of the step's samples.

Crash safety: an epoch ends with three writes (``last.pt``, the ``best.pt`` copy, the ``metrics.csv``
row). ``last.pt`` goes first and carries the epoch's row and best epoch, so a run killed between them
is repaired when it resumes (:meth:`Trainer._load_state`).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, TrainingError
from ..models.base import AuxLogits
from .checkpoint import load_checkpoint, peek_checkpoint, rng_state, save_checkpoint, set_rng_state, write_failure
from .config import TrainConfig
from .distributed import DistContext, no_sync
from .ema import ModelEma
from .evaluation import evaluate_model
from .feature_cache import FeatureData, build_feature_data, cache_decision
from .metrics import EvalMetrics
from .optim import build_optimizer, build_scheduler, load_optimizer_state
from .precision import choose_precision
from .progress import EpochProgress, bar_safe_logging, epoch_line, use_bar
from .run_dir import RunDir, RunLogHandler, quoted
from .runtime import (
    as_layout,
    autocast,
    check_amp,
    compile_model,
    host_sync_interval,
    make_grad_scaler,
    prepare_model,
)

logger = logging.getLogger("reslab.training")


@dataclass
class TrainResult:
    """The outcome of :func:`reslab.train`.

    Attributes:
        run_dir: the run directory. epochs_done: completed epochs. finished: all epochs done.
        interrupted: ``"SIGINT"`` / ``"SIGTERM"`` when a signal stopped the run (``last.pt`` holds
            the state to resume from), else None.
        best_top1, best_epoch: best per-epoch top-1 and its epoch (``best.pt``), measured on
            ``selection_split``: "val", or "test" when no validation split was held out.
        final: metrics on ``final_split`` at the end of a finished run: "test" (the test split, or
            the per-epoch split where that was the test split) or "val" (a held-out validation split
            and no test split: the images ``best.pt`` was chosen on, so not a test score).
        history: the per-epoch metric rows (as in ``metrics.csv``).
    """

    run_dir: Path
    epochs_done: int
    finished: bool
    interrupted: str | None = None
    best_top1: float | None = None
    best_epoch: int | None = None
    final: EvalMetrics | None = None
    final_split: str = "test"
    selection_split: str = "val"
    history: list[dict[str, Any]] = field(default_factory=list)

    def summary_line(self) -> str:
        """The line ``reslab train`` prints at the end (the demo relies on its form)."""
        if self.final is None:
            return f"stopped after {self.epochs_done} epochs — run directory: {self.run_dir}"
        return f"{self.final_split} accuracy: {self.final.top1:.4f} (n={self.final.n}) — run directory: {self.run_dir}"


def compute_loss(
    output: torch.Tensor | AuxLogits, labels: torch.Tensor, label_smoothing: float, aux_weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy (with label smoothing) of the logits; for an :class:`AuxLogits` output, plus
    ``aux_weight`` times each auxiliary classifier's loss (0.3 in the GoogLeNet paper, Section 5).
    Returns (loss, main logits)."""
    if isinstance(output, AuxLogits):
        loss = F.cross_entropy(output.logits, labels, label_smoothing=label_smoothing)
        for aux in (output.aux1, output.aux2):
            loss = loss + aux_weight * F.cross_entropy(aux, labels, label_smoothing=label_smoothing)
        return loss, output.logits
    return F.cross_entropy(output, labels, label_smoothing=label_smoothing), output


class StopRequested(BaseException):
    """Raised by :class:`StopSignals` in ``raise_now`` mode (a BaseException, as KeyboardInterrupt is, so
    that no ``except Exception`` on the way swallows it)."""

    def __init__(self, signal_name: str):
        super().__init__(signal_name)
        self.signal_name = signal_name


class StopSignals:
    """Within the ``with`` block, SIGINT/SIGTERM set :attr:`received` instead of killing the process;
    the previous handlers come back after the first signal (so a second one stops at once) and on exit.
    With :attr:`raise_now` set (the final evaluation, which has no step boundary to stop at), the signal
    also raises :class:`StopRequested` at once. Outside the main thread (where Python cannot install
    handlers) it does nothing."""

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self):
        self.received: str | None = None
        self.raise_now = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:
        self.received = signal.Signals(signum).name
        self._restore()
        if self.raise_now:
            raise StopRequested(self.received)

    def _restore(self) -> None:
        for signum, previous in self._previous.items():
            with contextlib.suppress(Exception):
                signal.signal(signum, previous)
        self._previous = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                signum = getattr(signal, name, None)
                if signum is not None:
                    self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()


class Trainer:
    """Trains ``model`` on ``bundle`` with ``config``, writing ``run_dir``.

    Args:
        config: the validated configuration.
        model: the network (on any device; it is moved to ``device``).
        bundle: a ``reslab.data.DataBundle`` (or any object with ``train``/``val``/``test`` loaders,
            ``num_classes``, ``class_names``, ``input_size`` and ``info``) whose loaders yield batches
            on ``device``.
        run_dir: where the run's files go.
        device: the device the loaders deliver to.
        model_spec: ``{"model_name", "model_args", "num_classes", "in_chans"}`` for the checkpoints.
        progress: ``auto`` | ``bar`` | ``plain`` | ``none``.
        resume: a checkpoint (from :func:`reslab.training.checkpoint.load_checkpoint`) to continue.
        notes: lines for the run's log at the start (e.g. which fine-tuning defaults applied).
        warnings: lines the run's log gives as warnings at the start (settings likely not meant as they run).
        dist: the torchrun context (default: a single process); the loaders must be sharded for it.
    """

    def __init__(
        self,
        config: TrainConfig,
        model: nn.Module,
        bundle: Any,
        run_dir: RunDir,
        *,
        device: torch.device,
        model_spec: dict[str, Any],
        progress: str = "auto",
        resume: dict[str, Any] | None = None,
        notes: list[str] | None = None,
        warnings: list[str] | None = None,
        dist: DistContext | None = None,
    ):
        self.config = config
        self.warnings = list(warnings or [])
        self.dist = dist or DistContext()
        self._faults = _injected_faults(self.dist.rank)
        self.notes = list(notes or [])
        self.bundle = bundle
        self.run_dir = run_dir
        self.device = device
        self.model_spec = model_spec
        self.progress = progress
        self.num_classes = int(bundle.num_classes)
        self.steps_per_epoch = len(bundle.train)  # (global) batches; with accum_steps K, K per optimiser step
        if self.steps_per_epoch == 0:
            raise TrainingError("the training split yields no batches (is it empty?)")
        self.accum_steps = int(config.accum_steps)
        self.optimizer_steps_per_epoch = math.ceil(self.steps_per_epoch / self.accum_steps)
        self.global_batch = int(config.batch_size) * self.dist.world_size * self.accum_steps

        # amp / channels_last "auto": chosen for this machine and network, recorded in the config (precision.py)
        precision = None
        if self.dist.is_main:  # rank 0 chooses (its probe alone), every rank runs its choice
            precision = choose_precision(
                config.amp,
                config.channels_last,
                device,
                model=model,
                input_shape=tuple(bundle.input_size),
                batch_size=int(config.batch_size),
            )
        precision = self.dist.broadcast(precision)
        config.amp, config.channels_last = precision.amp, precision.channels_last
        if precision.reason:
            self.notes.append(f"precision: {precision.reason}")
        self.amp_dtype = check_amp(config.amp, device)
        if config.sync_bn and self.dist.active:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = prepare_model(model, device, config.channels_last)
        self.ddp_model = self.dist.wrap(self.model)
        self.train_model = compile_model(self.ddp_model) if config.compile else self.ddp_model
        self.optimizer = build_optimizer(self.model, config)
        # schedules count optimiser steps
        self.scheduler = build_scheduler(self.optimizer, config, self.optimizer_steps_per_epoch)
        self.scaler = make_grad_scaler(device, self.amp_dtype)
        self.ema = ModelEma(self.model, config.ema_decay) if config.ema else None
        # a frozen backbone without augmentation: its features computed once (feature_cache.py)
        self._cache_features, why = cache_decision(config, self.model, bundle, distributed=self.dist.active)
        if why:
            self.notes.append(why)
        merged = getattr(bundle.train, "last_batch_note", lambda: None)()
        if merged:  # a last batch too small for BatchNorm joins the one before
            self.notes.append(merged)
        self._features: FeatureData | None = None

        self.epoch = 0  # completed epochs
        self.step = 0  # batches of epoch ``self.epoch`` already consumed (non-zero after a signal)
        self.global_step = 0
        self.best_top1: float | None = None
        self.best_epoch: int | None = None
        self._partial = _new_partial()
        self._resume_rng: dict[str, Any] | None = None
        self._resume_threads: int | None = None
        if resume is not None:
            self._load_state(resume)

    # -- checkpoint state -------------------------------------------------------------------------
    def _load_state(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        load_optimizer_state(self.optimizer, ckpt["optimizer"])  # this device's fused/foreach choice
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(ckpt["ema"])
        self.epoch = int(ckpt["epoch"])
        self.step = int(ckpt.get("step", 0))
        self.global_step = int(ckpt["global_step"])
        self.best_top1 = ckpt.get("best_top1")
        self.best_epoch = ckpt.get("best_epoch")
        if self.step and self.dist.is_main:  # the epoch's sums so far (over all ranks) restart on rank 0
            self._partial = {**_new_partial(), **ckpt["partial"]}
        elif self.step:
            self._partial = {**_new_partial(), "train_time": ckpt["partial"].get("train_time", 0.0)}
        self._resume_rng = ckpt["rng"]
        ranks = ckpt.get("rng_ranks")
        if ranks and len(ranks) == self.dist.world_size:  # the same world size: each rank's own generators
            self._resume_rng = ranks[self.dist.rank]
        self._resume_threads = ckpt.get("num_threads")
        # a run killed between its epoch-end writes (last.pt, best.pt, metrics.csv) is repaired from last.pt
        self.run_dir.load_rows(self.epoch, ckpt.get("metrics"))
        if self.dist.is_main:
            self._repair_best(ckpt)

    def _repair_best(self, ckpt: dict[str, Any]) -> None:
        """Bring best.pt in line with last.pt's ``best_epoch`` when a kill came between the two writes."""
        if ckpt.get("step") or not self.epoch:
            return  # mid-epoch: the last epoch boundary's writes had all completed
        expected = ckpt.get("best_epoch") if ckpt.get("best_epoch") is not None else self.epoch
        if expected != self.epoch or not self.run_dir.last.exists():
            return  # best.pt was written at an earlier epoch, whose writes all completed
        current = (peek_checkpoint(self.run_dir.best) or {}).get("epoch")  # None: missing or unreadable
        if current != self.epoch:
            logger.info(
                "best.pt lagged behind last.pt (the run was stopped between the two writes): copied "
                "epoch %d's checkpoint to best.pt",
                self.epoch,
            )
            _copy_atomic(self.run_dir.last, self.run_dir.best)

    def state(
        self, *, interrupted: str | None = None, finished: bool = False, rng_ranks: list[Any] | None = None
    ) -> dict[str, Any]:
        """Everything needed to continue (or evaluate) the run, as tensors and plain types (the unwrapped
        model's state dict: no DDP ``module.`` prefix). ``rng_ranks``: every rank's generators (torchrun)."""
        return {
            **self.model_spec,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_state(),
            "epoch": self.epoch,
            "step": self.step,
            "steps_per_epoch": self.steps_per_epoch,
            "global_step": self.global_step,
            "partial": dict(self._partial) if self.step else None,
            "interrupted": interrupted,
            "finished": finished,
            "best_top1": self.best_top1,
            "best_epoch": self.best_epoch,
            "num_threads": torch.get_num_threads(),
            "world_size": self.dist.world_size,
            "global_batch": self.global_batch,
            "rng_ranks": rng_ranks,
            "config": self.config.to_dict(),
            "class_names": [str(c) for c in self.bundle.class_names],
            "input_size": [int(s) for s in self.bundle.input_size],
            "data_info": _plain_info(getattr(self.bundle, "info", {}) or {}),
            "metrics": dict(self.run_dir.rows[-1]) if self.run_dir.rows else None,
        }

    def _weights_finite(self) -> bool:
        tensors = [t for t in self.model.state_dict().values() if t.is_floating_point()]
        return bool(torch.stack([t.float().abs().sum() for t in tensors]).isfinite().all()) if tensors else True

    def _save_last(self, **flags: Any) -> Path:
        """Write ``last.pt`` (rank 0; every rank calls this, and every rank raises if the write failed)."""
        # the checkpoint holds rank 0's weights: bring the others' BatchNorm statistics in line with them
        self.dist.broadcast_module(self.model)
        rng_ranks = self.dist.gather(rng_state()) if self.dist.active else None
        with self.dist.all_or_none("saving last.pt"):
            if not self._weights_finite():
                kept = (
                    f"{self.run_dir.last} keeps the last good state"
                    if self.run_dir.last.exists()
                    else "no checkpoint was written yet"
                )
                raise TrainingError(
                    f"non-finite weights at epoch {self.epoch + (1 if self.step else 0)} step {self.step}; {kept}. "
                    "Try a lower --lr, --grad-clip or no --amp"
                )
            if self.dist.is_main:
                save_checkpoint(self.state(**flags, rng_ranks=rng_ranks), self.run_dir.last)
                self.run_dir.commit()  # the run has a checkpoint: files an --overwrite replaced can go now
        return self.run_dir.last

    # -- the loop -----------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train the remaining epochs; returns a :class:`TrainResult`.

        Raises:
            TrainingError: a non-finite loss (naming epoch and step; ``last.pt``/``best.pt`` keep the
                last good state).
        """
        cfg = self.config
        bar = use_bar(self.progress) and self.dist.is_main
        # torchrun: rank 0 alone writes train.log (and the bar); the others create no file
        handler = RunLogHandler(self.run_dir.path / "train.log") if self.run_dir.writer else logging.NullHandler()
        root = logging.getLogger("reslab")
        root.addHandler(handler)
        old_level = logger.level
        # (ranks other than 0 keep the WARNING level DistContext.init set)
        unconfigured = logger.level == root.level == logging.NOTSET
        if self.dist.is_main and logger.getEffectiveLevel() > logging.INFO and unconfigured:
            # nobody configured reslab's logging: let INFO reach train.log (the console shows only
            # warnings through logging's last-resort handler)
            logger.setLevel(logging.INFO)
        redirect = bar_safe_logging(root, logging.getLogger()) if bar else contextlib.nullcontext()
        try:
            with redirect, StopSignals() as signals:
                return self._fit(cfg, bar, signals)
        finally:
            root.removeHandler(handler)
            handler.close()
            logger.setLevel(old_level)
            self.run_dir.close()

    def _fit(self, cfg: TrainConfig, bar: bool, signals: StopSignals) -> TrainResult:
        if self.epoch >= cfg.epochs:
            logger.info("finishing %s: its training is complete, the final evaluation is not", self.run_dir.path)
            return self._finish_or_stop(signals)
        if self.epoch or self.step:
            logger.info(
                "resuming %s at epoch %d step %d/%d", self.run_dir.path, self.epoch + 1, self.step, self.steps_per_epoch
            )
        else:
            logger.info(
                "training %s on %s for %d epochs (%d steps each) on %s; run directory %s",
                self.model_spec["model_name"],
                getattr(self.bundle, "name", "data"),
                cfg.epochs,
                self.steps_per_epoch,
                self.device,
                self.run_dir.path,
            )
        self._log_start()
        if self._cache_features and self._features is None:
            self._features = build_feature_data(self.model, self.bundle, self.amp_dtype, self.device)
            self.train_model = self.model.get_classifier()  # the loop trains the head on the features
            logger.info("%s", self._features.describe())
        if self.step == 0 and self._resume_rng is not None:
            set_rng_state(self._resume_rng)  # an epoch boundary: restore before the loader starts
            self._resume_rng = None
        while self.epoch < cfg.epochs:
            stopped = self._train_epoch(bar, signals)
            if stopped:
                path = self._save_last(interrupted=stopped)
                logger.warning(
                    "interrupted by %s at epoch %d step %d/%d; saved %s. Resume with: %s.",
                    stopped,
                    self.epoch + 1,
                    self.step,
                    self.steps_per_epoch,
                    path,
                    self._resume_command(),
                )
                return self._result(interrupted=stopped)
            self._end_epoch()
            if self.dist.active:  # a signal that came during the epoch's end: every rank stops, or none
                signals.received = self.dist.agree_step(
                    torch.ones((), dtype=torch.bool, device=self.device), signals.received
                )[1]
            if signals.received:
                if self.epoch < cfg.epochs:
                    logger.warning(
                        "interrupted by %s after epoch %d; saved %s. Resume with: %s.",
                        signals.received,
                        self.epoch,
                        self.run_dir.last,
                        self._resume_command(),
                    )
                else:
                    logger.warning(
                        "interrupted by %s after the last epoch (%d); saved %s. Finish the run (final "
                        "evaluation, summary.json) with: %s.",
                        signals.received,
                        self.epoch,
                        self.run_dir.last,
                        self._resume_command(),
                    )
                return self._result(interrupted=signals.received)
        return self._finish_or_stop(signals)

    def _resume_command(self) -> str:
        return f"reslab train --resume {quoted(self.run_dir.path)}"

    def _log_start(self) -> None:
        """Log what the run's figures mean and the data layer's decisions (at every start, resumes too)."""
        if self._resume_threads is not None and self._resume_threads != torch.get_num_threads():
            now = torch.get_num_threads()
            logger.warning(
                "resuming with %d thread%s; the run had %d thread%s: the result will differ slightly from an "
                "uninterrupted run (not bit-exact). Resume with --threads %d for an exact continuation.",
                now,
                "" if now == 1 else "s",
                self._resume_threads,
                "" if self._resume_threads == 1 else "s",
                self._resume_threads,
            )
        if self.run_dir.eval_split == "test":
            logger.info(
                "no validation split held out: per-epoch figures and best.pt use the test split; hold one "
                "out with --val-split 0.1 (the ResNet paper's 45k/5k)"
            )
        for line in self.warnings:
            logger.warning("%s", line)
        for note in [*self.notes, *(getattr(self.bundle, "notes", None) or [])]:
            logger.info("%s", note)
        if self.dist.active or self.accum_steps > 1:
            logger.info("%s", self.batch_line())

    def batch_line(self) -> str:
        """What one optimiser step sees: the global batch, which the learning rate refers to."""
        return (
            f"global batch {self.global_batch} = {self.config.batch_size} per rank x {self.dist.world_size} "
            f"rank{'s' if self.dist.world_size > 1 else ''} x {self.accum_steps} accumulation step"
            f"{'s' if self.accum_steps > 1 else ''} (the learning rate {self.config.lr:g} refers to it)"
        )

    def _finish_or_stop(self, signals: StopSignals) -> TrainResult:
        """The final evaluation, which a signal stops at once (last.pt stays valid; a resume finishes)."""
        try:
            signals.raise_now = True
            if signals.received:  # a signal that came while the last epoch was being written
                raise StopRequested(signals.received)
            return self._finish()
        except StopRequested as e:
            stop = e.signal_name
        finally:
            signals.raise_now = False
        logger.warning(
            "interrupted by %s during the final evaluation; %s holds the complete training. Finish the "
            "run (final evaluation, summary.json) with: %s.",
            stop,
            self.run_dir.last,
            self._resume_command(),
        )
        return self._result(interrupted=stop)

    def _train_epoch(self, bar: bool, signals: StopSignals) -> str | None:
        """One epoch (or its remainder after a mid-epoch resume); returns a signal name if stopped."""
        cfg, device = self.config, self.device
        loader = (self._features or self.bundle).train
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(self.epoch)
        self.train_model.train()
        batches = iter(loader)
        for _ in range(self.step):  # resumed mid-epoch: the same order; skip what was trained on
            next(batches)
        if self._resume_rng is not None:
            set_rng_state(self._resume_rng)
            self._resume_rng = None

        p = self._partial
        loss_sum = torch.tensor(p["loss_sum"], dtype=torch.float64, device=device)
        correct = torch.tensor(p["correct"], dtype=torch.int64, device=device)
        count = int(p["count"])
        lr_sum, lr_steps = float(p["lr_sum"]), int(p["lr_steps"])  # the rates this epoch's steps trained with
        # Non-finite losses are tracked on the device and checked at sync points, so a CUDA loop does
        # not wait for the GPU every step; `good` counts steps before the first non-finite loss.
        all_finite = torch.ones((), dtype=torch.bool, device=device)
        good = torch.zeros((), dtype=torch.int64, device=device)
        sync_every = host_sync_interval(device)  # in optimiser steps
        first_step = self.step
        progress = EpochProgress(self.epoch + 1, cfg.epochs, self.steps_per_epoch, initial=first_step, enabled=bar)
        shown = first_step
        start = time.perf_counter()
        try:
            for images, labels in batches:
                micro = self.step % self.accum_steps
                last = self.step + 1 == self.steps_per_epoch
                boundary = micro == self.accum_steps - 1 or last  # this batch ends an optimiser step
                if micro == 0:
                    self.optimizer.zero_grad(set_to_none=True)
                lr_sum += self.optimizer.param_groups[0]["lr"]
                lr_steps += 1
                loss, logits = self._forward_backward(images, labels, skip_sync=not boundary)
                if boundary:
                    self._optimizer_step()

                n = labels.shape[0]
                with torch.no_grad():
                    detached = loss.detach().float()
                    all_finite &= detached.isfinite()
                    good += all_finite
                    loss_sum += detached.double() * n
                    correct += (logits.detach().argmax(1) == labels).sum()
                count += n
                self.step += 1
                self.global_step += 1
                if cfg.log_every and self.step % cfg.log_every == 0 and self.dist.is_main:
                    logger.info(
                        "epoch %d batch %d/%d: running train loss %.4f acc %.4f",
                        self.epoch + 1,
                        self.step,
                        self.steps_per_epoch,
                        float(loss_sum) / count,
                        int(correct) / count,
                    )
                if self._faults:
                    self._test_hooks()

                stop = signals.received
                if not boundary:
                    continue  # a stop waits for the end of the optimiser step (gradients are not saved)
                # torchrun: every rank checks at the same steps (a collective), so all stop together
                check = last or (stop and not self.dist.active)
                check = check or ((self.step - first_step) // self.accum_steps) % sync_every == 0
                if check:
                    finite, stop = self.dist.agree_step(all_finite, stop)
                    if not finite:
                        bad = first_step + int(good) + 1
                        raise TrainingError(
                            f"non-finite loss at epoch {self.epoch + 1} step {bad}/{self.steps_per_epoch} "
                            f"(lr {self.optimizer.param_groups[0]['lr']:.3g}); stopped, keeping the last good "
                            f"checkpoint {self.run_dir.last if self.run_dir.last.exists() else '(none yet)'}. "
                            "Try a lower --lr, --grad-clip or no --amp"
                        )
                    elapsed = p["train_time"] + time.perf_counter() - start
                    if bar:
                        progress.update(
                            self.step - shown,
                            float(loss_sum) / count,
                            int(correct) / count,
                            (count * self.dist.world_size) / max(elapsed, 1e-9),
                        )
                        shown = self.step
                else:
                    stop = None
                if stop:
                    signals.received = signals.received or stop  # a rank that got no signal stops too
                if stop and not last:
                    loss_total, correct_total, count_total = self.dist.sum_numbers(
                        [float(loss_sum), int(correct), count], device
                    )
                    self._partial = {
                        "loss_sum": loss_total,
                        "correct": int(correct_total),
                        "count": int(count_total),
                        "train_time": p["train_time"] + time.perf_counter() - start,
                        "lr_sum": lr_sum,
                        "lr_steps": lr_steps,
                    }
                    return str(stop)
        finally:
            progress.close()
        if count == 0:
            raise TrainingError("the training split yielded no batches")
        train_time = p["train_time"] + time.perf_counter() - start
        # the epoch's figures over all ranks
        loss_total, correct_total, count_total = self.dist.sum_numbers([float(loss_sum), int(correct), count], device)
        self._epoch_train = {
            "train_loss": loss_total / count_total,
            "train_top1": correct_total / count_total,
            "train_time": train_time,
            "images_per_s": count_total / max(train_time, 1e-9),
            "lr": lr_sum / max(lr_steps, 1),
        }
        return None

    def _loss_weight(self, n: int) -> float:
        """The factor on a batch's mean loss that makes the optimiser step's gradient the mean over all of
        its samples: this batch's share of the step's samples (over all ranks and accumulation
        micro-batches), times the world size (DDP averages the ranks' gradients). 1 for full batches
        without accumulation, and always 1 in a single process without it."""
        if self.accum_steps == 1 and not self.dist.active:
            return 1.0
        loader = self.bundle.train
        rows = getattr(loader, "global_batch_rows", None)
        if rows is None:  # a loader without sharding support: nominal full batches
            return 1.0 / self.accum_steps
        first = self.step - self.step % self.accum_steps
        last = min(first + self.accum_steps, self.steps_per_epoch)
        total = sum(rows(i) for i in range(first, last))
        return n * self.dist.world_size / max(total, 1)

    def _forward_backward(self, images: torch.Tensor, labels: torch.Tensor, *, skip_sync: bool):
        """Forward and backward of one (micro-)batch; ``skip_sync``: no DDP gradient all-reduce (a
        non-final accumulation step). Returns the unweighted loss and the logits."""
        cfg = self.config
        images = as_layout(images, cfg.channels_last)
        weight = self._loss_weight(labels.shape[0])
        with no_sync(self.train_model, skip_sync and self.dist.active):
            with autocast(self.device, self.amp_dtype):
                output = self.train_model(images)
                loss, logits = compute_loss(output, labels, cfg.label_smoothing, cfg.aux_weight)
            scaled = loss if weight == 1.0 else loss * weight
            if self.scaler is not None:
                self.scaler.scale(scaled).backward()
            else:
                scaled.backward()
        return loss, logits

    def _optimizer_step(self) -> None:
        """Clip, step the optimiser (and the scaler), the schedule (per optimiser step) and the EMA."""
        cfg = self.config
        if self.scaler is not None:
            if cfg.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)

    def _test_hooks(self) -> None:
        """Test-only fault injection (see :func:`_injected_faults`): act at this global step."""
        act = self._faults.get(self.global_step)
        if act is not None:
            act()

    def _evaluate(self, model: nn.Module, split: str = "val") -> EvalMetrics | None:
        """Metrics of ``model`` on a whole split: under torchrun each rank evaluates its shard (of rank 0's
        weights and statistics) and the sums are added over the ranks."""
        loader = getattr(self._features or self.bundle, split, None)
        if loader is None:
            return None
        if self._features is not None and hasattr(model, "get_classifier"):
            model = model.get_classifier()  # the cached features are what the frozen rest computes
        self.dist.broadcast_module(getattr(model, "module", model))
        reduce = self.dist.reduce_meter if self.dist.active else None
        return evaluate_model(
            model,
            loader,
            self.num_classes,
            device=self.device,
            amp_dtype=self.amp_dtype,
            channels_last=self.config.channels_last and self._features is None,
            confusion=False,
            reduce=reduce,
        )

    def _end_epoch(self) -> None:
        start = time.perf_counter()
        # the plain module: DDP's forward is for training (evaluation sums are reduced by _evaluate)
        val = self._evaluate(self.model if self.dist.active else self.train_model)
        ema_val = self._evaluate(self.ema.module) if self.ema is not None else None
        self.epoch += 1
        self.step = 0
        self._partial = _new_partial()
        tr = self._epoch_train
        s = self.run_dir.eval_split  # "val", or "test" when no validation split was held out
        row = {
            "epoch": self.epoch,
            "lr": tr["lr"],  # the mean rate of the epoch's steps, not the rate after its last one
            "train_loss": tr["train_loss"],
            "train_top1": tr["train_top1"],
            f"{s}_loss": val.loss if val else None,
            f"{s}_top1": val.top1 if val else None,
            f"{s}_top5": val.top5 if val else None,
            f"ema_{s}_loss": ema_val.loss if ema_val else None,
            f"ema_{s}_top1": ema_val.top1 if ema_val else None,
            f"ema_{s}_top5": ema_val.top5 if ema_val else None,
            "time": tr["train_time"] + time.perf_counter() - start,
            "images_per_s": tr["images_per_s"],
        }
        is_best = val is not None and (self.best_top1 is None or val.top1 > self.best_top1)
        if is_best:
            self.best_top1, self.best_epoch = val.top1, self.epoch
        self.run_dir.rows.append(row)  # so the checkpoint's "metrics" is this epoch's row
        finished = self.epoch >= self.config.epochs
        try:
            last = self._save_last(finished=finished)
        finally:
            self.run_dir.rows.pop()
        if (is_best or val is None) and self.run_dir.writer:
            with self.dist.all_or_none("writing best.pt"):
                _copy_atomic(last, self.run_dir.best)
        elif is_best or val is None:
            self.dist.raise_if_any(None, "writing best.pt")
        self.run_dir.add_epoch(row, last=finished)
        logger.info(epoch_line(row, self.config.epochs))

    def _finish(self) -> TrainResult:
        """Evaluate the finished run on its test split (else its validation split) and write ``summary.json``."""
        test_loader = getattr(self.bundle, "test", None)
        split = "test"
        has_best = self.dist.broadcast(self.run_dir.best.exists())  # rank 0's file (other nodes may not see it)
        if test_loader is not None and has_best:
            # model selection was on a separate validation split: report the selected model on test
            selected = copy.deepcopy(self.model)
            with self.dist.all_or_none("reading best.pt"):
                if self.dist.is_main:
                    selected.load_state_dict(load_checkpoint(self.run_dir.best)["model"])
            final = self._evaluate(selected, "test")  # other ranks get rank 0's weights there
        else:
            # no separate test split: report the final model on the per-epoch split, named for what it is
            # ("test" where no validation split was held out, else "val": not a test score)
            split = self.run_dir.eval_split
            final = self._evaluate(self.model if self.dist.active else self.train_model, "val")
        result = self._result(final=final, split=split)
        selection = self.run_dir.eval_split
        summary = {
            "split": split,
            **(final.as_dict() if final else {}),
            "selection_split": selection,  # the split best.pt was chosen on ("test": no validation split)
            f"best_{selection}_top1": self.best_top1,
            "best_epoch": self.best_epoch,
            "epochs": self.epoch,
            "run_dir": str(self.run_dir.path),
            "world_size": self.dist.world_size,
            "global_batch": self.global_batch,
        }
        self.run_dir.write_summary(summary)
        if final is not None:
            logger.info(
                "%s: loss %.4f top-1 %.4f top-%d %.4f (n=%d)",
                split,
                final.loss,
                final.top1,
                final.k,
                final.top5,
                final.n,
            )
        return result

    def _result(
        self, *, interrupted: str | None = None, final: EvalMetrics | None = None, split: str = "test"
    ) -> TrainResult:
        return TrainResult(
            run_dir=self.run_dir.path,
            epochs_done=self.epoch,
            finished=self.epoch >= self.config.epochs and interrupted is None,
            interrupted=interrupted,
            best_top1=self.best_top1,
            best_epoch=self.best_epoch,
            final=final,
            final_split=split,
            selection_split=self.run_dir.eval_split,
            history=[dict(r) for r in self.run_dir.rows],
        )


def _new_partial() -> dict[str, Any]:
    """The running sums of an epoch in progress (stored in a mid-epoch checkpoint)."""
    return {"loss_sum": 0.0, "correct": 0, "count": 0, "train_time": 0.0, "lr_sum": 0.0, "lr_steps": 0}


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(
            f"could not write {dst}: {write_failure(e, dst.parent)}; {src} holds the same state"
        ) from None


def _plain_info(info: Any) -> Any:
    """The data ``info`` as types ``torch.load(weights_only=True)`` accepts."""
    if isinstance(info, dict):
        return {str(k): _plain_info(v) for k, v in info.items()}
    if isinstance(info, (list, tuple)):
        return [_plain_info(v) for v in info]
    if info is None:
        return None
    for kind in (bool, int, float, str):  # subclasses (numpy.str_, ...) become the plain type
        if isinstance(info, kind):
            return kind(info)
    if isinstance(info, Path):
        return str(info)
    if isinstance(info, torch.Tensor):
        return info.detach().cpu()
    if hasattr(info, "tolist"):
        return info.tolist()
    return str(info)


def _injected_faults(rank: int) -> dict[int, Any]:
    """Test-only fault injection (tests/distributed), read once, in the first attempt of a job only:
    ``RESLAB_TEST_EXIT_AT=RANK:STEP`` makes that rank exit at once after that global step (a crash),
    ``RESLAB_TEST_SIGNAL_AT=RANK:STEP`` sends that rank a SIGTERM (a signal only one rank receives).
    Returns {global step: action} for this rank (empty: nothing to do in the step loop)."""
    if os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") != "0":
        return {}
    faults: dict[int, Any] = {}
    for name, act in (
        ("RESLAB_TEST_EXIT_AT", lambda: os._exit(17)),
        ("RESLAB_TEST_SIGNAL_AT", lambda: os.kill(os.getpid(), signal.SIGTERM)),
    ):
        spec = os.environ.get(name)
        if spec:
            at_rank, step = (int(v) for v in spec.split(":"))
            if at_rank == rank:
                faults[step] = act
    return faults
