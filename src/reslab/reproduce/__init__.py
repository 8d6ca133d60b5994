"""``reslab reproduce``: the papers' experiments as grids of ordinary runs, with a report beside the papers'
figures (:func:`run_experiment`; the experiments in :mod:`reslab.reproduce.experiments`, the budgets in
:mod:`reslab.reproduce.budgets`, the published figures in :mod:`reslab.reproduce.papers`)."""

from __future__ import annotations

from .experiments import BUDGETS, EXPERIMENTS, get_experiment, list_experiments
from .runner import ReproductionResult, run_experiment

__all__ = ["BUDGETS", "EXPERIMENTS", "ReproductionResult", "get_experiment", "list_experiments", "run_experiment"]
