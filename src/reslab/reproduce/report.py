"""The report of a reproduction: ``results.csv`` (one row per finished run), ``report.md`` (the table beside the
paper's, the figures, one verdict per claim, budget / data / seeds / hardware / wall time) and the figures.

Errors are fractions. ``final_train_error``: 1 - the last epoch's training top-1 (with augmentation, as the
papers' training curves). ``final_test_error``: 1 - the top-1 of the run's final evaluation (summary.json:
on a test split the model chosen on the validation split, else the last epoch's model on the per-epoch
split). ``best_test_error``: the lowest per-epoch error on the per-epoch split. ``test_split`` says what the
final figure was measured on, ``curve_split`` what the per-epoch figures were.
"""

from __future__ import annotations

import csv
import json
import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError
from .budgets import DataChoice
from .claims import ArmStats, judge_all
from .experiments import Arm, Experiment
from .papers import figure

logger = logging.getLogger("reslab.reproduce")

COLUMNS = (
    "experiment",
    "label",
    "model",
    "variant",
    "seed",
    "epochs",
    "final_train_error",
    "final_test_error",
    "best_test_error",
    "paper_error",
    "paper_source",
    "paper_note",
    "test_split",
    "curve_split",
    "budget",
    "params",
    "train_time_s",
    "run_dir",
)


@dataclass
class RunRecord:
    """A finished run's figures and curves."""

    arm: Arm
    seed: int
    run_dir: Path
    epochs: list[int]
    train_error: list[float]
    curve_error: list[float]
    final_test_error: float
    final_split: str
    params: int | None
    train_time: float


def read_run(arm: Arm, seed: int, run_dir: Path) -> RunRecord | None:
    """The records of a finished run (None if it has no summary.json yet).

    Raises:
        DataError: summary.json or metrics.csv cannot be read (naming the file).
    """
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        return None
    try:
        return _read_run(arm, seed, run_dir, summary_path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"cannot read the records of {run_dir} ({type(e).__name__}: {e})") from None


def _read_run(arm: Arm, seed: int, run_dir: Path, summary_path: Path) -> RunRecord:
    summary = json.loads(summary_path.read_text())
    epochs, train, curve, time_s = [], [], [], 0.0
    with open(run_dir / "metrics.csv", newline="") as f:
        for row in csv.DictReader(f):
            split = "val" if row.get("val_top1") not in (None, "") else "test"
            epochs.append(int(row["epoch"]))
            train.append(1.0 - float(row["train_top1"]))
            curve.append(1.0 - float(row[f"{split}_top1"]))
            time_s += float(row.get("time") or 0.0)
    return RunRecord(
        arm,
        seed,
        run_dir,
        epochs,
        train,
        curve,
        1.0 - float(summary["top1"]),
        summary.get("split", ""),
        _params(run_dir),
        time_s,
    )


_PARAMS: dict[tuple, int] = {}


def _params(run_dir: Path) -> int | None:
    """The network's parameter count, rebuilt from its checkpoint's model name and arguments."""
    from ..models import build_model
    from ..training.checkpoint import load_checkpoint

    try:
        ckpt = load_checkpoint(run_dir / "last.pt")
        key = (
            ckpt["model_name"],
            json.dumps(ckpt.get("model_args") or {}, sort_keys=True),
            ckpt["num_classes"],
            ckpt.get("in_chans"),
        )
        if key not in _PARAMS:
            net = build_model(key[0], num_classes=key[2], in_chans=key[3], **(ckpt.get("model_args") or {}))
            _PARAMS[key] = sum(p.numel() for p in net.parameters())
        return _PARAMS[key]
    except Exception:  # noqa: BLE001 - a count is a nicety; the report goes on without it
        return None


def write_report(out: Path, experiment: Experiment, budget: str, plans: Sequence[Any], data: DataChoice | None) -> Path:
    """Write results.csv, the figures and report.md into ``out``; returns report.md's path."""
    records, unreadable = [], []
    for p in plans:
        try:
            record = read_run(p.arm, p.seed, p.run_dir)
        except DataError as e:  # one damaged run must not cost the report of the others
            logger.warning("%s; left out of the report", e)
            unreadable.append(str(e))
            continue
        if record is not None:
            records.append(record)
    curve_split, test_split = data.splits(budget) if data is not None else ("held-out split", "held-out split")
    _write_csv(out / "results.csv", experiment, budget, records, test_split, curve_split)
    arms = list({p.arm.label: p.arm for p in plans}.values())
    stats = {}
    for arm in arms:
        mine = [r for r in records if r.arm.label == arm.label]
        if mine:
            stats[arm.label] = ArmStats(
                [r.train_error[-1] for r in mine], [r.final_test_error for r in mine], mine[0].params
            )
    grid = experiment.grid(budget)
    verdicts = judge_all(grid.claims, stats)
    figures = []
    if records:
        from .figures import bar_chart, curves_figure, degradation_figure

        if experiment.style == "degradation":
            figures.append(degradation_figure(out / "degradation.png", records, curve_split))
        else:
            figures.append(curves_figure(out / "curves.png", experiment, records, curve_split))
        bars = bar_chart(out / "final_errors.png", experiment, arms, stats)
        if bars is not None:
            figures.append(bars)
    info = _read_json(out / "reproduction.json")
    path = out / "report.md"
    text = _markdown(
        experiment, budget, arms, plans, records, stats, verdicts, figures, info, data, test_split, curve_split
    )
    if unreadable:
        text += "\n## Left out (records unreadable)\n\n" + "".join(f"- {u}\n" for u in unreadable)
    path.write_text(text)
    return path


def _write_csv(
    path: Path, experiment: Experiment, budget: str, records: list[RunRecord], test_split: str, curve_split: str
) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in records:
            fig = figure(r.arm.paper)
            w.writerow(
                {
                    "experiment": experiment.name,
                    "label": r.arm.label,
                    "model": r.arm.model,
                    "variant": r.arm.variant,
                    "seed": r.seed,
                    "epochs": r.epochs[-1] if r.epochs else 0,
                    "final_train_error": f"{r.train_error[-1]:.4f}",
                    "final_test_error": f"{r.final_test_error:.4f}",
                    "best_test_error": f"{min(r.curve_error):.4f}",
                    "paper_error": "" if fig is None or fig.error is None else f"{fig.error:.4f}",
                    "paper_source": "" if fig is None else f"{fig.paper}, {fig.where}; {fig.dataset}",
                    "paper_note": "" if fig is None else fig.note,
                    "test_split": test_split if r.final_split == "test" else curve_split,
                    "curve_split": curve_split,
                    "budget": budget,
                    "params": r.params if r.params is not None else "",
                    "train_time_s": f"{r.train_time:.1f}",
                    "run_dir": str(r.run_dir),
                }
            )
    tmp.replace(path)


def _mean_std(values: Sequence[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f} (1 seed)"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def _markdown(
    experiment, budget, arms, plans, records, stats, verdicts, figures, info, data, test_split, curve_split
) -> str:
    from .budgets import __doc__ as budgets_doc

    seeds = sorted({p.seed for p in plans})
    lines = [
        f"# Reproduction: {experiment.name} ({budget} budget)",
        "",
        experiment.about,
        "",
        f"- **Budget**: {budget}: {_recipe_line(budgets_doc, budget)}",
        f"- **Data**: {data.description if data is not None else info.get('data', '?')}",
        f"- **Test figures measured on**: {test_split}; per-epoch curves on {curve_split}",
        f"- **Seeds**: {len(seeds)} ({', '.join(map(str, seeds))}); ours = mean ± std over seeds",
        f"- **Hardware**: {info.get('hardware', '?')}",
        f"- **Wall time**: {info.get('training_wall_s', 0.0) / 60:.1f} min training (all runs, all invocations); "
        f"{info.get('invocations_wall_s', 0.0) / 60:.1f} min of `reslab reproduce` in all",
        "",
        "## Results",
        "",
        "| arm | model | variant | params | seeds | train error | test error | best test error | paper | "
        "paper source |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in arms:
        mine = [r for r in records if r.arm.label == arm.label]
        fig = figure(arm.paper)
        params = mine[0].params if mine and mine[0].params else None
        shown = f"{params / 1e6:.2f}M" if params else "-"
        lines.append(
            f"| {arm.label} | {arm.model} | {arm.variant} | {shown} | {len(mine)} | "
            f"{_mean_std([r.train_error[-1] for r in mine])} | {_mean_std([r.final_test_error for r in mine])} | "
            f"{_mean_std([min(r.curve_error) for r in mine])} | {fig.shown() if fig else '-'} | "
            f"{fig.source if fig else '-'} |"
        )
    lines += ["", "Errors are fractions (ours); the paper's are percentages as printed.", "", "## Claims", ""]
    lines += [f"- {v.line()}" for v in verdicts] or ["- (no claims)"]
    if figures:
        lines += ["", "## Figures", ""] + [f"![{p.stem}]({p.name})" for p in figures]
    unfinished = [p for p in plans if not (p.run_dir / "summary.json").is_file()]
    if unfinished:
        lines += ["", "## Not finished", "", "Run the same command again to continue these:", ""]
        lines += [f"- {p.run_dir}" for p in unfinished]
    return "\n".join(lines) + "\n"


def _recipe_line(doc: str | None, budget: str) -> str:
    """The budget's paragraph of :mod:`reslab.reproduce.budgets`' docstring, on one line."""
    text = doc or ""
    start = text.find(f"{budget} (")
    if start < 0:
        return "see reslab.reproduce.budgets"
    end = min(
        (i for i in (text.find(f"\n{b} (", start + 1) for b in ("quick", "standard", "paper")) if i > 0),
        default=len(text),
    )
    body = " ".join(text[start:end].split())
    return body[len(budget) + 1 :].strip() if body.startswith(f"{budget} ") else body


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
