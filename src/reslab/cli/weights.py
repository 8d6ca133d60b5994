"""``reslab weights list | info | download``: the published weights on the command line.

``list`` and ``info`` read the registry and look at the cache folders only (no torch import, no hashing);
``download`` fetches a file into the cache, hash-checked, and prints its path.
"""

from __future__ import annotations

import argparse

from ..weights.classes import class_names
from ..weights.hub import cache_dirs, cached_path, download
from ..weights.registry import get_weights, list_weights
from .tables import input_size_text, metric_text, weights_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="published pretrained weights: list, describe, download")
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION")
    wsub.required = True

    q = wsub.add_parser("list", help="the registered weights (default marked *, cached ones marked)")
    q.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern or model name, e.g. 'resnet50*'")
    q.add_argument("--markdown", action="store_true", help="a Markdown table (the README's)")
    q.set_defaults(func=run_list)

    q = wsub.add_parser("info", help="every field of one set of weights, and whether it is cached")
    q.add_argument("name", metavar="MODEL.TAG", help="e.g. resnet50.tv2_in1k (see `reslab weights list`)")
    q.set_defaults(func=run_info)

    q = wsub.add_parser("download", help="download weights into the cache (hash-checked); prints the path")
    q.add_argument("name", metavar="MODEL.TAG", help="e.g. resnet20.akamaster_cifar10")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=run_download)


def run_list(args: argparse.Namespace) -> int:
    names = list_weights(args.pattern)
    if not names:
        print(f"no weights match {args.pattern!r}")
        return 1
    if args.markdown:
        print(weights_table(args.pattern))
        return 0
    rows = [("name", "model", "top-1", "classes", "input", "layout", "default", "cached")]
    for name in names:
        e = get_weights(name)
        rows.append(
            (
                e.name,
                e.model,
                metric_text(e, "top1"),
                e.classes,
                input_size_text(e),
                e.layout,
                "*" if e.default else "",
                "cached" if cached_path(e) else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.rjust(w) if i == 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return 0


def run_info(args: argparse.Namespace) -> int:
    e = get_weights(args.name)
    cached = cached_path(e)
    if cached:
        cache = f"{cached} (its hash is checked when it is used)"
    else:
        cache = f"not cached (`reslab weights download {e.name}`; looked in {', '.join(map(str, cache_dirs()))})"
    metrics = ", ".join(f"{k} {v}" for k, v in e.metrics.items())
    model_args = ", ".join(f"{k}={v!r}" for k, v in e.model_args.items()) or "none"
    fields = [
        ("model", e.model),
        ("tag", e.tag + (" (the model's default: pretrained=True)" if e.default else "")),
        ("url", e.url),
        ("file", e.file_name),
        ("hash", e.hash),
        ("layout", e.layout),
        ("preprocessing", e.preprocessing.describe()),
        ("classes", f"{e.classes} ({len(class_names(e.classes))})"),
        ("model args", model_args),
        ("metrics", f"{metrics} ({e.metrics_source})"),
        ("license", e.license),
        ("notes", e.notes or "-"),
        ("cache", cache),
    ]
    print(e.name)
    for key, value in fields:
        print(f"  {key + ':':<15}{value}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    print(download(get_weights(args.name), progress=not args.quiet))
    return 0
