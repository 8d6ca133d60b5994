"""``reslab report RUN_DIR``: parsing and dispatch only (the work is :func:`reslab.visualize.report.write_report`)."""

from __future__ import annotations

import argparse

from .arguments import non_negative_int, one_line_errors, path_arg, positive_int, setup_logging


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="one self-contained HTML page of a training run (curves, confusion, mistakes, Grad-CAM, filters)",
        description="Write one self-contained HTML page of a run (every picture embedded, no script, nothing "
        "fetched): its configuration, curves, confusion matrix, per-class accuracy, most confident mistakes "
        "with their Grad-CAM, and first-layer filters. A file that is not a previous reslab report is never "
        "replaced. Prints the page's path.",
    )
    p.add_argument("run_dir", type=path_arg, metavar="RUN_DIR", help="a run directory written by reslab train")
    p.add_argument(
        "--out", type=path_arg, default=None, metavar="FILE", help="the HTML file (default RUN_DIR/report.html)"
    )
    p.add_argument(
        "--split",
        choices=("val", "test"),
        default=None,
        help="the split evaluated (default: val where the run held one out, else test)",
    )
    p.add_argument(
        "--mistakes",
        type=non_negative_int,
        default=10,
        metavar="N",
        help="how many of the most confident mistakes to show (default 10)",
    )
    p.add_argument(
        "--data-dir", type=path_arg, default=None, metavar="PATH", help="where the data lives (default: the run's)"
    )
    p.add_argument("--batch-size", type=positive_int, default=None, help="evaluation batch size (default: the run's)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    p.set_defaults(func=run_report)
    one_line_errors(p)


def run_report(args: argparse.Namespace) -> int:
    from ..visualize.report import write_report

    setup_logging(quiet=True)
    path = write_report(
        args.run_dir,
        args.out,
        split=args.split,
        device=args.device,
        data_dir=args.data_dir,
        batch_size=args.batch_size,
        mistakes=args.mistakes,
    )
    print(path)
    return 0
