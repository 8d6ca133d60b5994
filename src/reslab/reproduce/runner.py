"""The grid of ordinary runs behind a reproduction, and :func:`run_experiment`.

Every run is an ordinary run directory ``OUT/runs/<label>-seed<k>``. Before anything trains, each is
classified: a complete run (``summary.json``) whose stored configuration equals what the grid asks for is
skipped; an interrupted one (``last.pt``) is resumed exactly; one that was stopped before its first
checkpoint (a reslab run directory without ``last.pt``) is restarted; one whose configuration differs is
never silently reused (a one-line :class:`ConfigError` names it and the keys). So an interrupted
reproduction continues where it stopped, and nothing is lost.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..training.config import RUNTIME_KEYS, config_differences, config_from_dict, merge_overrides, resolve_config
from .budgets import DataChoice, budget_config, detect_data
from .experiments import BUDGETS, Arm, Experiment, Grid, get_experiment

logger = logging.getLogger("reslab.reproduce")

#: default seeds per budget
DEFAULT_SEEDS = {"quick": 2, "standard": 2, "paper": 1}
PROGRESS = ("auto", "bar", "plain", "none")


@dataclass
class PlannedRun:
    """One arm x seed: its run directory, the configuration the grid asks for, and what will happen."""

    arm: Arm
    seed: int
    run_dir: Path
    config: dict[str, Any]
    state: str = "new"  # new | done | resume | restart
    notes: list[str] = field(default_factory=list)


@dataclass
class ReproductionResult:
    """What :func:`run_experiment` did: the report directory, the runs, and whether a signal stopped it."""

    out: Path
    runs: list[PlannedRun]
    report: Path | None = None
    interrupted: str | None = None
    trained: int = 0
    skipped: int = 0
    resumed: int = 0


def default_out(experiment: str, budget: str, epochs: int | None = None, limit: int | None = None) -> Path:
    """``reproductions/<experiment>-<budget>`` (with ``-e<epochs>`` / ``-n<limit>`` for the overrides, so a
    try-out never collides with the budget's own runs)."""
    suffix = (f"-e{epochs}" if epochs is not None else "") + (f"-n{limit}" if limit is not None else "")
    return Path("reproductions") / f"{experiment}-{budget}{suffix}"


def select_arms(grid: Grid, only: str | Sequence[str] | None) -> list[Arm]:
    """The arms ``only`` names (comma-separated labels or a list), in grid order; all when None.

    Raises:
        ConfigError: a label the grid does not have (the message lists its labels).
    """
    if only is None:
        return list(grid.arms)
    wanted = [s.strip() for s in (only.split(",") if isinstance(only, str) else only) if s.strip()]
    if not wanted:
        raise ConfigError(f"--only names no arm; arms: {', '.join(grid.labels())}")
    for label in wanted:
        if label not in grid.labels():
            raise ConfigError(f"--only {label!r} is not an arm of this grid; arms: {', '.join(grid.labels())}")
    return [a for a in grid.arms if a.label in wanted]


def plan_runs(
    experiment: Experiment,
    budget: str,
    arms: Sequence[Arm],
    seeds: int,
    out: Path,
    data: DataChoice | None,
    *,
    epochs: int | None = None,
    limit: int | None = None,
    device: str = "auto",
    threads: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    on_gpu: bool = False,
) -> list[PlannedRun]:
    """Every arm x seed with its resolved configuration (validated, model arguments checked) and its state.

    Raises:
        ConfigError: a bad configuration or model argument, or a run directory that cannot be used.
    """
    from ..models.registry import check_overrides

    plans = []
    for arm in arms:
        base, notes = budget_config(budget, arm.recipe, data, epochs=epochs, limit=limit, on_gpu=on_gpu)
        for seed in range(seeds):
            run_dir = out / "runs" / f"{arm.label}-seed{seed}"
            values = merge_overrides(
                base,
                {
                    "model": arm.model,
                    "model_args": dict(arm.model_args),
                    "seed": seed,
                    "device": device,
                    "out": str(run_dir),
                },
            )
            if threads is not None:
                values["threads"] = threads
            if overrides:
                values = merge_overrides(values, dict(overrides))
            cfg = resolve_config(values)  # validates every key before anything trains
            check_overrides(cfg.model, cfg.model_args)
            plan = PlannedRun(arm, seed, run_dir, cfg.to_dict(), notes=list(notes))
            plan.state = run_state(run_dir, plan.config)
            plans.append(plan)
    return plans


def run_state(run_dir: Path, wanted: Mapping[str, Any]) -> str:
    """``new`` (no directory, or an empty one), ``done`` (finished with this configuration), ``resume``
    (interrupted, this configuration) or ``restart`` (a reslab run stopped before its first checkpoint).

    Raises:
        ConfigError: the directory holds a run of another configuration (naming the keys), or files
            that are not a reslab run's.
    """
    from ..training.run_dir import is_run_dir

    if not run_dir.exists():
        return "new"
    if not run_dir.is_dir():
        raise ConfigError(
            f"{run_dir} is a file where the reproduction's run directory goes; move it or choose another --out"
        )
    if not any(run_dir.iterdir()):
        return "new"
    has_last, has_summary = (run_dir / "last.pt").is_file(), (run_dir / "summary.json").is_file()
    if has_last or has_summary:
        saved = _stored_config(run_dir)
        diffs = config_differences(saved, {k: v for k, v in wanted.items() if k not in RUNTIME_KEYS})
        if diffs:
            old = saved.to_dict()
            detail = "; ".join(f"{k}: run has {old.get(k)!r}, grid asks {wanted.get(k)!r}" for k in diffs)
            raise ConfigError(
                f"{run_dir} holds a run of another configuration ({detail}); it is not reused: "
                "move it away or choose another --out"
            )
        if has_last:
            _check_network_revision(run_dir, wanted)
        return "done" if has_summary and has_last else "resume"
    if is_run_dir(run_dir):
        return "restart"
    shown = ", ".join(sorted(p.name for p in run_dir.iterdir())[:3])
    raise ConfigError(
        f"{run_dir} is not a reslab run directory ({shown}); the reproduction will not write into "
        "it: move it away or choose another --out"
    )


def _check_network_revision(run_dir: Path, wanted: Mapping[str, Any]) -> None:
    """Refuse a run whose network a later reslab computes differently (same configuration, same keys)."""
    import torch

    from ..models import build_model
    from ..training.checkpoint import peek_checkpoint

    ckpt = peek_checkpoint(run_dir / "last.pt")
    if ckpt is None:
        return
    with torch.device("meta"):  # only its structure is needed
        model = build_model(
            wanted["model"],
            num_classes=ckpt.get("num_classes"),
            in_chans=ckpt.get("in_chans"),
            **(ckpt.get("model_args") or wanted.get("model_args") or {}),
        )
    if hasattr(model, "check_weights_revision"):
        model.check_weights_revision(ckpt.get("arch_revision"), str(run_dir))


def _stored_config(run_dir: Path):
    path = run_dir / "config.yaml"
    try:
        if path.is_file():
            return config_from_dict(yaml.safe_load(path.read_text()) or {}, str(path))
        from ..training.checkpoint import checkpoint_config, load_checkpoint

        return checkpoint_config(load_checkpoint(run_dir / "last.pt"))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read the configuration of {run_dir}: {e}") from None


def _on_gpu(device: str) -> bool:
    from ..training.runtime import resolve_device

    return resolve_device(device).type == "cuda"


def check_seeds(seeds: Any) -> int:
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"--seeds must be a whole number >= 1, got {seeds!r}")
    return seeds


def run_experiment(
    name: str,
    *,
    budget: str = "quick",
    seeds: int | None = None,
    data_dir: str | Path | None = None,
    device: str = "auto",
    out: str | Path | None = None,
    epochs: int | None = None,
    limit: int | None = None,
    only: str | Sequence[str] | None = None,
    threads: int | None = None,
    progress: str = "plain",
    overrides: Mapping[str, Any] | None = None,
    report: bool = True,
) -> ReproductionResult:
    """Run (or continue) a reproduction: the experiment's grid at ``budget``, ``seeds`` seeds (0..N-1), then
    its report (``results.csv``, ``report.md``, figures) in ``out``.

    Args:
        name: an experiment (:func:`reslab.reproduce.list_experiments`).
        budget: ``quick``, ``standard`` or ``paper`` (:mod:`reslab.reproduce.budgets`).
        seeds: seeds per arm (default 2; 1 at the paper budget).
        data_dir: CIFAR-10 python batches (cifar10-mini, the official set) or class folders / an archive of
            them (default: ``$RESLAB_DATA_DIR``, else ``./data``).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        out: the report directory (default ``reproductions/<experiment>-<budget>``); runs go in ``out/runs``.
        epochs, limit: override the budget's epochs and the number of training images (for trying things
            out); only: a subset of the grid's arm labels (comma-separated or a list).
        threads: CPU threads for torch. progress: as ``reslab train``'s.
        overrides: further configuration keys for every run (``model_args`` / ``data_args`` merge), e.g. a
            synthetic data set and narrow widths in tests; they replace the detected data.
        report: write the report at the end (also after an interruption, for the finished runs).

    Returns:
        :class:`ReproductionResult`.

    Raises:
        ConfigError: an unknown experiment, budget or arm label, a bad seed count or data directory, a run
            directory holding another configuration. All before anything trains.
        DataError, TrainingError, CheckpointError: from the runs.
    """
    from ..training import train

    started = time.time()
    experiment = get_experiment(name)
    if budget not in BUDGETS:
        raise ConfigError(f"unknown budget {budget!r}; budgets: {', '.join(BUDGETS)}")
    seeds = DEFAULT_SEEDS[budget] if seeds is None else check_seeds(seeds)
    for key, value in (("epochs", epochs), ("limit", limit), ("threads", threads)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"--{key} must be a whole number >= 1, got {value!r}")
    if progress not in PROGRESS:
        raise ConfigError(f"progress must be one of {', '.join(PROGRESS)}, got {progress!r}")
    arms = select_arms(experiment.grid(budget), only)
    data = None if overrides and "data" in overrides else detect_data(data_dir)
    out = Path(out) if out is not None else default_out(name, budget, epochs, limit)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; --out takes a directory")
    on_gpu = _on_gpu(device)
    plans = plan_runs(
        experiment,
        budget,
        arms,
        seeds,
        out,
        data,
        epochs=epochs,
        limit=limit,
        device=device,
        threads=threads,
        overrides=overrides,
        on_gpu=on_gpu,
    )
    out.mkdir(parents=True, exist_ok=True)
    result = ReproductionResult(out, plans)
    _write_invocation(out, experiment, budget, seeds, data, device, epochs, limit, overrides, threads)
    counts = {s: sum(p.state == s for p in plans) for s in ("new", "restart", "resume", "done")}
    logger.info(
        "%s (%s budget): %d runs in %s: %d to train, %d to restart, %d to resume, %d complete",
        name,
        budget,
        len(plans),
        out,
        counts["new"],
        counts["restart"],
        counts["resume"],
        counts["done"],
    )
    for i, plan in enumerate(plans, 1):
        if plan.state == "done":
            result.skipped += 1
            logger.info("[%d/%d] %s: complete, skipped", i, len(plans), plan.run_dir.name)
            continue
        logger.info(
            "[%d/%d] %s: %s",
            i,
            len(plans),
            plan.run_dir.name,
            {"new": "training", "restart": "restarting (stopped before its first checkpoint)", "resume": "resuming"}[
                plan.state
            ],
        )
        for note in plan.notes:
            logger.info("  %s", note)
        t0 = time.time()
        if plan.state == "resume":
            runtime = {k: plan.config[k] for k in ("device", "threads", "data_dir") if plan.config.get(k) is not None}
            res = train(resume=plan.run_dir, progress=progress, **runtime)
            result.resumed += 1
        else:
            res = train(plan.config, progress=progress, overwrite=plan.state == "restart")
            result.trained += 1
        _add_wall_time(out, time.time() - t0)
        if res.interrupted:
            result.interrupted = res.interrupted
            logger.warning(
                "reproduction stopped by %s; run the same command again to continue where it stopped", res.interrupted
            )
            break
    _add_wall_time(out, 0.0, invocation=time.time() - started)
    if report:
        from .report import write_report

        result.report = write_report(out, experiment, budget, plans, data)
    return result


def _write_invocation(
    out: Path,
    experiment: Experiment,
    budget: str,
    seeds: int,
    data: DataChoice | None,
    device: str,
    epochs: int | None,
    limit: int | None,
    overrides: Mapping[str, Any] | None,
    threads: int | None,
) -> None:
    """``reproduction.json``: what was asked, on which hardware (kept across continuations: wall time adds)."""
    path = out / "reproduction.json"
    old = _read_json(path)
    info = {
        "experiment": experiment.name,
        "budget": budget,
        "seeds": seeds,
        "epochs_override": epochs,
        "limit": limit,
        "device": device,
        "hardware": hardware(device, threads),
        "data": data.description if data is not None else str((overrides or {}).get("data")),
        "training_wall_s": old.get("training_wall_s", 0.0),
        "invocations_wall_s": old.get("invocations_wall_s", 0.0),
    }
    path.write_text(json.dumps(info, indent=2) + "\n")


def _add_wall_time(out: Path, training: float, invocation: float = 0.0) -> None:
    path = out / "reproduction.json"
    info = _read_json(path)
    info["training_wall_s"] = round(info.get("training_wall_s", 0.0) + training, 1)
    info["invocations_wall_s"] = round(info.get("invocations_wall_s", 0.0) + invocation, 1)
    path.write_text(json.dumps(info, indent=2) + "\n")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def hardware(device: str, threads: int | None = None) -> str:
    """The device in words: the GPU's name, or the CPU model, its cores and torch's threads (``threads``, else
    torch's current count)."""
    import os
    import platform

    import torch

    from ..training.runtime import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda":
        return f"{torch.cuda.get_device_name(dev)} (CUDA)"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"CPU: {cpu}, {cores} cores, {threads or torch.get_num_threads()} torch threads"
