"""``reslab reproduce``: parsing and dispatch only (the work is :func:`reslab.reproduce.run_experiment`)."""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from .arguments import one_line_errors, path_arg, positive_int, setup_logging


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce",
        help="re-run a paper's experiment (a grid of runs) and report it beside the paper's figures",
        description="Run (or continue) a paper's experiment as a grid of ordinary runs and write results.csv, "
        "report.md and figures. Complete runs are skipped, interrupted ones resumed. `--list` shows the experiments.",
    )
    p.add_argument("experiment", nargs="?", metavar="EXPERIMENT", help="experiment name (see --list)")
    p.add_argument("--list", action="store_true", help="list the experiments and their arms per budget")
    p.add_argument(
        "--budget",
        default="quick",
        metavar="quick|standard|paper",
        help="quick (CPU minutes, cifar10-mini), standard (GPU, whole training set), paper (the papers' "
        "recipes); default quick",
    )
    p.add_argument("--seeds", type=int, default=None, metavar="N", help="seeds 0..N-1 per arm (default 2; paper: 1)")
    p.add_argument(
        "--data-dir",
        type=path_arg,
        default=None,
        metavar="PATH",
        help="CIFAR-10 python batches (cifar10-mini, the official set) or class folders / a .zip of them "
        "(default: $RESLAB_DATA_DIR, else ./data)",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument(
        "--out",
        type=path_arg,
        default=None,
        metavar="DIR",
        help="report directory; runs go in DIR/runs (default reproductions/EXPERIMENT-BUDGET)",
    )
    p.add_argument("--epochs", type=positive_int, default=None, help="override the budget's epochs (trying out)")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N", help="train on the first N images only")
    p.add_argument("--only", default=None, metavar="LABEL[,LABEL]", help="run only these arms of the grid")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch")
    p.add_argument(
        "--progress",
        choices=("auto", "bar", "plain", "none"),
        default="plain",
        help="per-run progress, as reslab train's (default: one line per epoch)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and the report's path")
    p.set_defaults(func=run_reproduce)
    one_line_errors(p)


def run_reproduce(args: argparse.Namespace) -> int:
    from ..reproduce import BUDGETS, EXPERIMENTS, run_experiment

    if args.list:
        for exp in EXPERIMENTS.values():
            print(f"{exp.name}: {exp.title}")
            for budget in BUDGETS:
                print(f"  {budget}: {', '.join(exp.grid(budget).labels())}")
        return 0
    if args.experiment is None:
        raise ConfigError(f"give an EXPERIMENT ({', '.join(EXPERIMENTS)}) or --list")
    if args.seeds is not None and args.seeds < 1:
        raise ConfigError(f"--seeds must be a whole number >= 1, got {args.seeds}")
    setup_logging(args.quiet)
    result = run_experiment(
        args.experiment,
        budget=args.budget,
        seeds=args.seeds,
        data_dir=args.data_dir,
        device=args.device,
        out=args.out,
        epochs=args.epochs,
        limit=args.limit,
        only=args.only,
        threads=args.threads,
        progress="none" if args.quiet else args.progress,
    )
    if result.report is not None:
        print(f"report: {result.report}")
        for line in result.report.read_text().splitlines():
            if line.startswith("- ") and any(f": {v} (" in line for v in ("holds", "does not hold", "not measured")):
                print(line)
    if result.interrupted:
        return 130 if result.interrupted == "SIGINT" else 143
    return 0
