"""The report's figures (matplotlib, Agg): the degradation panels in the style of Deep Residual Learning
Figure 6, error curves per arm, and final test errors ours vs the paper's."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .papers import C10, figure


def _figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    fig.tight_layout()
    fig.savefig(tmp, format="png")
    tmp.replace(path)
    return path


def _mean_curves(records: Sequence[Any]) -> tuple[list[int], list[float], list[float]]:
    """Epochs and the per-epoch mean over seeds of training and per-epoch eval error (in %)."""
    n = min(len(r.epochs) for r in records)
    epochs = records[0].epochs[:n]
    train = [100 * statistics.fmean(r.train_error[i] for r in records) for i in range(n)]
    curve = [100 * statistics.fmean(r.curve_error[i] for r in records) for i in range(n)]
    return epochs, train, curve


def _by_arm(records: Sequence[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in records:
        out.setdefault(r.arm.label, []).append(r)
    return out


def degradation_figure(path: Path, records: Sequence[Any], curve_split: str) -> Path:
    """Figure 6 style: plain (left) and residual (right) side by side; thin dashed training error, bold
    test error, one colour per depth (the same depth, the same colour in both panels)."""
    fig = _figure((12, 4.5))
    panels = dict(zip(("plain", "residual"), fig.subplots(1, 2, sharey=True)))
    groups = _by_arm(records)
    depths = sorted({r.arm.depth for r in records if r.arm.depth is not None})
    colours = {d: f"C{i}" for i, d in enumerate(depths)}
    for runs in groups.values():
        arm = runs[0].arm
        ax = panels.get(arm.family)
        if ax is None:
            continue
        epochs, train, curve = _mean_curves(runs)
        name = f"{'plain' if arm.family == 'plain' else 'ResNet'}-{arm.depth}"
        ax.plot(epochs, train, "--", lw=1, marker=".", ms=4, color=colours[arm.depth])
        ax.plot(epochs, curve, "-", lw=2.5, marker="o", ms=4, color=colours[arm.depth], label=name)
    for family, ax in panels.items():
        _integer_epochs(ax)
        ax.set_title("plain networks" if family == "plain" else "residual networks")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(title=f"dashed: training, bold: {_held_out(curve_split)}")
    panels["plain"].set_ylabel("error (%)")
    fig.suptitle(
        f"training and {_held_out(curve_split)} error per epoch (mean over seeds); {_held_out(curve_split)} "
        f"= {_short(curve_split)}",
        fontsize=9,
    )
    return _save(fig, path)


def curves_figure(path: Path, experiment: Any, records: Sequence[Any], curve_split: str) -> Path:
    """Error per epoch, one colour per arm: thin dashed training error, bold test error."""
    fig = _figure((8, 5))
    ax = fig.subplots()
    for i, (label, runs) in enumerate(_by_arm(records).items()):
        epochs, train, curve = _mean_curves(runs)
        ax.plot(epochs, train, "--", lw=1, marker=".", ms=4, color=f"C{i % 10}")
        ax.plot(epochs, curve, "-", lw=2.5, marker="o", ms=4, color=f"C{i % 10}", label=label)
    _integer_epochs(ax)
    ax.set_xlabel("epoch")
    ax.set_ylabel("error (%)")
    ax.grid(alpha=0.3)
    ax.legend(title=f"dashed: training, bold: {_held_out(curve_split)}", fontsize=8)
    ax.set_title(
        f"{experiment.name}: error per epoch (mean over seeds)\n{_held_out(curve_split)} = {_short(curve_split)}",
        fontsize=9,
    )
    return _save(fig, path)


def bar_chart(path: Path, experiment: Any, arms: Sequence[Any], stats: Mapping[str, Any]) -> Path | None:
    """Final test error per arm, ours (mean, std as error bar) beside the paper's where it has a number;
    None when no arm has a paper number. A paper figure on another data set is labelled so."""
    papers = {a.label: figure(a.paper) for a in arms}
    if not any(f is not None and f.percent is not None for f in papers.values()):
        return None
    measured = [a for a in arms if a.label in stats]
    if not measured:
        return None
    other = {f.dataset for f in papers.values() if f is not None and f.percent is not None and f.dataset != C10}
    fig = _figure((max(6, 1.2 * len(measured) + 2), 4.5))
    ax = fig.subplots()
    xs = range(len(measured))
    ours = [100 * stats[a.label].mean("test") for a in measured]
    errs = [100 * stats[a.label].std("test") for a in measured]
    ax.bar([x - 0.2 for x in xs], ours, 0.4, yerr=errs, label="ours", color="C0")
    paper = [
        papers[a.label].percent if papers[a.label] is not None and papers[a.label].percent is not None else float("nan")
        for a in measured
    ]
    ax.bar(
        [x + 0.2 for x in xs],
        paper,
        0.4,
        label="paper" + (" (ImageNet, another data set)" if other else ""),
        color="C1",
        hatch="//" if other else None,
    )
    ax.set_xticks(list(xs))
    ax.set_xticklabels([a.label for a in measured], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("final test error (%)")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(f"{experiment.name}: final test error, ours vs paper", fontsize=9)
    return _save(fig, path)


def _integer_epochs(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _held_out(curve_split: str) -> str:
    """What the bold curves are: validation error where a split was held out, else test error."""
    return "validation" if "validation" in curve_split else "test"


def _short(text: str) -> str:
    return text if len(text) < 90 else text[:87] + "..."
