"""``reslab list`` and ``reslab summary``: the model registry on the command line."""

from __future__ import annotations

import argparse

import torch

from ..models import create_model, get_model_entry, list_models, summary
from ..models.registry import FAMILIES


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


def format_macs(macs: int) -> str:
    """Multiply-accumulates with a unit: ``4.09G``, ``40.6M``, ``416K``."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if macs >= scale:
            return f"{macs / scale:.3g}{unit}"
    return str(macs)


def meta_summary(name: str, num_classes: int | None = None, input_size=None):
    """Summary of a registered model built on the meta device: shapes and counts, no memory, no compute."""
    entry = get_model_entry(name)
    input_size = tuple(input_size) if input_size else entry.input_size
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes, in_chans=input_size[0])
    return summary(model, input_size)


def markdown_table(pattern: str = "*") -> str:
    """The README's model table, generated from the registry (names, counts, MACs, published figures)."""
    lines = [
        "| model | family | input | params | MACs | published params | published reference |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for name in list_models(pattern):
        e = get_model_entry(name)
        s = meta_summary(name)
        ref = "; ".join(x for x in (e.accuracy, f"params: {e.params_source}" if e.params_source else "") if x)
        published = f"{e.params:,}" if e.params is not None else ""
        lines.append(
            f"| `{name}` | {e.family} | {'x'.join(map(str, e.input_size))} | {s.total_params:,} | "
            f"{format_macs(s.macs)} | {published} | {ref} |"
        )
    return "\n".join(lines)


def run_list(args: argparse.Namespace) -> int:
    names = list_models(args.pattern, family=args.family)
    if not names:
        print(f"no model matches {args.pattern!r}")
        return 1
    if args.markdown:
        print(markdown_table(args.pattern))
        return 0
    rows = [("name", "params", "MACs", "input", "family")]
    for name in names:
        entry = get_model_entry(name)
        s = meta_summary(name)
        rows.append((name, f"{s.total_params:,}", format_macs(s.macs), "x".join(map(str, entry.input_size)),
                     entry.family))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.rjust(w) if i in (1, 2) else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return 0


def run_summary(args: argparse.Namespace) -> int:
    print(meta_summary(args.model, args.num_classes, args.input_size))
    return 0
