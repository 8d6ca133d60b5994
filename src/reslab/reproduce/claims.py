"""Verdicts: does a paper's claim hold on our measured errors? One line per claim.

A claim is checked on the arms' mean errors over seeds: "holds", "does not hold", or "not measured"
(an arm it needs is missing from this grid or has no finished run). Where two compared means differ by
less than the seeds' spread, the verdict says so: at a small budget that ordering is noise.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .experiments import Claim


@dataclass(frozen=True)
class ArmStats:
    """An arm's errors over its finished seeds (fractions), and its parameter count."""

    train: Sequence[float]
    test: Sequence[float]
    params: int | None = None

    def mean(self, metric: str) -> float:
        return statistics.fmean(self.values(metric))

    def std(self, metric: str) -> float:
        values = self.values(metric)
        return statistics.stdev(values) if len(values) > 1 else 0.0

    def values(self, metric: str) -> Sequence[float]:
        return self.train if metric == "train" else self.test


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    status: str  # "holds" | "does not hold" | "not measured"
    detail: str

    def line(self) -> str:
        return f"{self.claim.text}: {self.status} ({self.detail})"


def judge(claim: Claim, stats: Mapping[str, ArmStats]) -> Verdict:
    """The verdict on ``claim`` given ``stats`` (label -> :class:`ArmStats` of the arms with finished runs)."""
    metric = claim.metric
    what = "train error" if metric == "train" else "test error"
    have = [a for a in claim.arms if a in stats and stats[a].values(metric)]
    missing = [a for a in claim.arms if a not in have]
    kind = claim.kind
    ordered = kind in ("decreasing", "increasing", "lowest")
    if (ordered and len(have) < 2) or (not ordered and missing) or (kind == "lowest" and claim.arms[0] in missing):
        return Verdict(
            claim,
            "not measured",
            f"arm{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing from this grid or not finished",
        )
    m = {a: stats[a].mean(metric) for a in have}

    def fmt(a: str) -> str:
        return f"{m[a]:.3f}"

    def noisy(a: str, b: str) -> bool:
        spread = max(stats[a].std(metric), stats[b].std(metric))
        return spread > 0 and abs(m[a] - m[b]) < spread

    note = ""
    if kind in ("worse", "better"):
        a, b = claim.arms
        ok = m[a] > m[b] if kind == "worse" else m[a] < m[b]
        detail = f"{what} {fmt(a)} vs {fmt(b)}"
        pairs = [(a, b)]
    elif kind == "all_better":
        *others, ref = claim.arms
        ok = all(m[a] < m[ref] for a in others)
        detail = f"{what} " + ", ".join(f"{a} {fmt(a)}" for a in others) + f" vs {ref} {fmt(ref)}"
        pairs = [(a, ref) for a in others]
    elif kind in ("decreasing", "increasing"):
        seq = [m[a] for a in have]
        ok = all((x > y) if kind == "decreasing" else (x < y) for x, y in zip(seq, seq[1:]))
        detail = f"{what} " + " -> ".join(f"{fmt(a)}" for a in have) + f" for {', '.join(have)}"
        pairs = list(zip(have, have[1:]))
        if missing:
            note = f"; {', '.join(missing)} not measured"
    elif kind == "lowest":
        first = claim.arms[0]
        best = min(have, key=lambda a: m[a])
        ok = best == first
        runner_up = min((a for a in have if a != first), key=lambda a: m[a])
        other = runner_up if ok else best
        detail = f"{what} {first} {fmt(first)}, " + (
            f"next best {other} {fmt(other)}" if ok else f"lowest {other} {fmt(other)}"
        )
        pairs = [(first, other)]
        if missing:
            note = f"; {', '.join(missing)} not measured"
    elif kind == "better_fewer_params":
        a, b = claim.arms
        pa, pb = stats[a].params, stats[b].params
        if pa is None or pb is None:
            return Verdict(claim, "not measured", f"the parameter count of {a if pa is None else b} is unknown")
        fewer = pa <= 1.1 * pb
        ok = m[a] < m[b] and fewer
        detail = f"{what} {fmt(a)} vs {fmt(b)}, params {pa / 1e6:.2f}M vs {pb / 1e6:.2f}M"
        pairs = [(a, b)]
    else:
        raise ValueError(f"unknown claim kind {kind!r}")
    if any(noisy(a, b) for a, b in pairs):
        note += "; within the seeds' spread"
    return Verdict(claim, "holds" if ok else "does not hold", detail + note)


def judge_all(claims: Sequence[Claim], stats: Mapping[str, ArmStats]) -> list[Verdict]:
    """One verdict per claim, in order."""
    return [judge(c, stats) for c in claims]
