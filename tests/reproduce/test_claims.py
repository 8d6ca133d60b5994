"""Claim verdicts on made-up numbers: holds, does not hold, not measured, and the seeds' spread."""

from __future__ import annotations

import pytest

from reslab.reproduce.claims import ArmStats, judge
from reslab.reproduce.experiments import Claim


def stats(test, train=None, params=None) -> ArmStats:
    test = test if isinstance(test, list) else [test]
    return ArmStats(train if train is not None else test, test, params)


def test_worse_holds_with_the_papers_example_line():
    claim = Claim("plain-56 trains worse than plain-20", "worse", ("plain56", "plain20"), "train")
    v = judge(claim, {"plain56": stats(0.5, [0.312]), "plain20": stats(0.4, [0.245])})
    assert v.line() == "plain-56 trains worse than plain-20: holds (train error 0.312 vs 0.245)"


def test_worse_does_not_hold_and_missing_arm_is_not_measured():
    claim = Claim("c", "worse", ("a", "b"), "test")
    assert judge(claim, {"a": stats(0.2), "b": stats(0.3)}).status == "does not hold"
    v = judge(claim, {"a": stats(0.2)})
    assert v.status == "not measured" and "b missing" in v.detail


def test_better_uses_the_mean_over_seeds_and_flags_noise():
    claim = Claim("c", "better", ("a", "b"))
    v = judge(claim, {"a": stats([0.10, 0.30]), "b": stats([0.21, 0.22])})
    assert v.status == "holds" and "0.200 vs 0.215" in v.detail and "within the seeds' spread" in v.detail
    v = judge(claim, {"a": stats([0.10, 0.11]), "b": stats([0.21, 0.22])})
    assert v.status == "holds" and "spread" not in v.detail


@pytest.mark.parametrize(
    ("kind", "values", "status"),
    [
        ("decreasing", [0.3, 0.2, 0.1], "holds"),
        ("decreasing", [0.3, 0.1, 0.2], "does not hold"),
        ("increasing", [0.1, 0.2, 0.3], "holds"),
        ("increasing", [0.1, 0.3, 0.2], "does not hold"),
    ],
)
def test_orderings(kind, values, status):
    claim = Claim("c", kind, ("a", "b", "c"))
    assert judge(claim, {k: stats(v) for k, v in zip("abc", values)}).status == status


def test_ordering_on_the_measured_arms_says_which_are_missing():
    claim = Claim("c", "decreasing", ("a", "b", "c"))
    v = judge(claim, {"a": stats(0.3), "c": stats(0.1)})
    assert v.status == "holds" and "b not measured" in v.detail
    assert judge(claim, {"a": stats(0.3)}).status == "not measured"


def test_lowest():
    claim = Claim("e best", "lowest", ("e", "a", "b"))
    v = judge(claim, {"e": stats(0.1), "a": stats(0.2), "b": stats(0.3)})
    assert v.line() == "e best: holds (test error e 0.100, next best a 0.200)"
    v = judge(claim, {"e": stats(0.25), "a": stats(0.2), "b": stats(0.3)})
    assert v.line() == "e best: does not hold (test error e 0.250, lowest a 0.200)"
    assert judge(claim, {"a": stats(0.2), "b": stats(0.3)}).status == "not measured"  # the claimed arm is missing


def test_all_better():
    claim = Claim("all beat plain", "all_better", ("a", "b", "plain"))
    assert judge(claim, {"a": stats(0.1), "b": stats(0.2), "plain": stats(0.3)}).status == "holds"
    assert judge(claim, {"a": stats(0.1), "b": stats(0.4), "plain": stats(0.3)}).status == "does not hold"
    assert judge(claim, {"a": stats(0.1), "plain": stats(0.3)}).status == "not measured"


def test_better_with_fewer_params():
    claim = Claim("dense beats res", "better_fewer_params", ("dense", "res"))
    good = {"dense": stats(0.05, params=1_000_000), "res": stats(0.06, params=1_700_000)}
    v = judge(claim, good)
    assert v.status == "holds" and "params 1.00M vs 1.70M" in v.detail
    assert judge(claim, {**good, "dense": stats(0.05, params=3_000_000)}).status == "does not hold"
    assert judge(claim, {**good, "dense": stats(0.07, params=1_000_000)}).status == "does not hold"
    assert judge(claim, {**good, "dense": stats(0.05)}).status == "not measured"
