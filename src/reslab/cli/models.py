"""``reslab list`` and ``reslab summary``: the model registry on the command line.

``list`` reads the generated model catalogue (:mod:`reslab.catalog`) and never imports torch, so it
answers at once; ``summary`` builds the model.
"""

from __future__ import annotations

import argparse

from ..catalog import FAMILIES, find_models, format_macs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the registered models with parameters and MACs")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*' (default: all)")
    p.add_argument("--family", choices=FAMILIES, help="only models designed for this data-set family")
    p.add_argument("--markdown", action="store_true", help="a Markdown table with the published references")
    p.set_defaults(func=run_list)

    p = sub.add_parser("summary", help="layer-by-layer table of a model: output shapes, parameters, MACs")
    p.add_argument("model", help="registered model name (see `reslab list`)")
    p.add_argument("--input-size", nargs=3, type=int, metavar=("C", "H", "W"), help="default: the model's")
    p.add_argument("--num-classes", type=int, help="classifier outputs (default: the model's)")
    p.set_defaults(func=run_summary)


def meta_summary(name: str, num_classes: int | None = None, input_size=None):
    """Summary of a registered model built on the meta device: shapes and counts, no memory, no compute."""
    import torch

    from ..models import build_model, get_model_entry, summary

    entry = get_model_entry(name)
    input_size = tuple(input_size) if input_size else entry.input_size
    with torch.device("meta"):
        model = build_model(name, num_classes=num_classes, in_chans=input_size[0])
    return summary(model, input_size)


def run_list(args: argparse.Namespace) -> int:
    entries = find_models(args.pattern, family=args.family)
    if not entries:
        print(f"no model matches {args.pattern!r}")
        return 1
    if args.markdown:
        from .tables import models_table

        print(models_table(args.pattern, entries=entries))
        return 0
    rows = [("name", "params", "MACs", "input", "family")]
    for e in entries:
        rows.append(
            (e["name"], f"{e['params']:,}", format_macs(e["macs"]), "x".join(map(str, e["input_size"])), e["family"])
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.rjust(w) if i in (1, 2) else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return 0


def run_summary(args: argparse.Namespace) -> int:
    print(meta_summary(args.model, args.num_classes, args.input_size))
    return 0
