"""``reslab list`` and ``reslab summary``: the model registry on the command line.

``list`` reads the generated model catalogue (:mod:`reslab.catalog`) and never imports torch, so it
answers at once; ``summary`` builds the model.
"""

from __future__ import annotations

import argparse

from ..catalog import FAMILIES, find_models, format_macs
from ..errors import ConfigError
from .arguments import key_value, one_line_errors

MODEL_ARG_HELP = "a constructor argument, e.g. widths=[8,16,32] or shortcut=B (repeatable; VALUE is YAML)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the registered models with parameters and MACs")
    one_line_errors(p)
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*' (default: all)")
    p.add_argument("--family", choices=FAMILIES, help="only models designed for this data-set family")
    p.add_argument("--markdown", action="store_true", help="a Markdown table with the published references")
    p.add_argument(
        "--model-arg",
        dest="model_args",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help=MODEL_ARG_HELP + "; the counts are then measured (the models that take the arguments are built)",
    )
    p.set_defaults(func=run_list)

    p = sub.add_parser("summary", help="layer-by-layer table of a model: output shapes, parameters, MACs")
    one_line_errors(p)
    p.add_argument("model", help="registered model name (see `reslab list`)")
    p.add_argument("--input-size", nargs=3, type=int, metavar=("C", "H", "W"), help="default: the model's")
    p.add_argument("--num-classes", type=int, help="classifier outputs (default: the model's)")
    p.add_argument(
        "--model-arg",
        dest="model_args",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help=MODEL_ARG_HELP,
    )
    p.set_defaults(func=run_summary)


def meta_summary(name: str, num_classes: int | None = None, input_size=None, model_args: dict | None = None):
    """Summary of a registered model built on the meta device: shapes and counts, no memory, no compute.

    Raises:
        UnknownModelError, ConfigError: an unknown model or constructor argument (one line).
    """
    import torch

    from ..models import build_model, get_model_entry, summary

    entry = get_model_entry(name)
    input_size = tuple(input_size) if input_size else entry.input_size
    with torch.device("meta"):
        model = build_model(name, num_classes=num_classes, in_chans=input_size[0], **(model_args or {}))
    return summary(model, input_size)


def source_of(paper: str) -> str:
    """Where a model comes from, in a few words: ``He et al. 2015``, ``tutorial 004 (Keras)``."""
    return paper.split(":", 1)[0].split(",", 1)[0].strip()


def _measured(entries: list[dict], model_args: dict) -> list[dict]:
    """The catalogue ``entries`` measured again with ``model_args``: the models that take every argument."""
    from ..models.registry import check_overrides

    out = []
    for e in entries:
        try:
            check_overrides(e["name"], model_args)
        except ConfigError as err:
            if "unknown model_args key" in str(err) and len(entries) > 1:
                continue  # a pattern's other models: this one has no such argument
            raise
        s = meta_summary(e["name"], model_args=model_args)
        out.append({**e, "params": s.total_params, "macs": s.macs})
    if not out:
        keys = ", ".join(model_args)
        raise ConfigError(f"no model matching the pattern takes --model-arg {keys}")
    return out


def run_list(args: argparse.Namespace) -> int:
    entries = find_models(args.pattern, family=args.family)
    if not entries:
        print(f"no model matches {args.pattern!r}")
        return 1
    if args.model_args:
        entries = _measured(entries, dict(args.model_args))
    if args.markdown:
        from .tables import models_table

        print(models_table(args.pattern, entries=entries))
        return 0
    rows = [("name", "params", "MACs", "input", "family", "source")]
    for e in entries:
        rows.append(
            (
                e["name"],
                f"{e['params']:,}",
                format_macs(e["macs"]),
                "x".join(map(str, e["input_size"])),
                e["family"],
                source_of(e["paper"]),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.rjust(w) if i in (1, 2) else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return 0


def run_summary(args: argparse.Namespace) -> int:
    print(meta_summary(args.model, args.num_classes, args.input_size, dict(args.model_args)))
    return 0
