"""The Markdown tables of the models and of the published weights (``reslab list --markdown``,
``reslab weights list --markdown``; the documentation's reference pages are made from them).

Both read static data only -- the model catalogue (:mod:`reslab.catalog`) and the weights registry -- so
neither imports torch.
"""

from __future__ import annotations

from typing import Any

from ..catalog import find_models, format_macs
from ..weights.registry import WeightsEntry, get_weights, list_weights


def models_table(pattern: str = "*", entries: list[dict[str, Any]] | None = None) -> str:
    """The models table (names, counts, MACs, published figures), from the catalogue."""
    lines = [
        "| model | family | input | params | MACs | published params | published reference |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for e in find_models(pattern, entries=entries):
        ref = "; ".join(x for x in (e["accuracy"], f"params: {e['params_source']}" if e["params_source"] else "") if x)
        published = f"{e['published_params']:,}" if e["published_params"] is not None else ""
        lines.append(
            f"| `{e['name']}` | {e['family']} | {'x'.join(map(str, e['input_size']))} | {e['params']:,} | "
            f"{format_macs(e['macs'])} | {published} | {ref} |"
        )
    return "\n".join(lines)


def input_size_text(entry: WeightsEntry) -> str:
    """The weights' input size, ``3x224x224``."""
    return "x".join(str(v) for v in entry.preprocessing.input_size)


def metric_text(entry: WeightsEntry, key: str) -> str:
    """A published figure as published (``76.13``), ``-`` where there is none."""
    value = entry.metrics.get(key)
    return "-" if value is None else f"{value:g}"  # as published, no rounding


def weights_table(pattern: str = "*") -> str:
    """The weights table: every registered entry matching ``pattern``, with its published figures."""
    lines = [
        "| weights | top-1 % | top-5 % | classes | input | preprocessing | layout | license |",
        "|---|--:|--:|---|---|---|---|---|",
    ]
    sources: list[str] = []
    for name in list_weights(pattern):
        e = get_weights(name)
        p = e.preprocessing
        how = f"resize {p.resize}, crop" if p.crop == "center" else "squash"
        default = " (default)" if e.default else ""
        top1, top5 = metric_text(e, "top1"), metric_text(e, "top5")
        lines.append(
            f"| `{e.name}`{default} | {top1} | {top5} | {e.classes} | {input_size_text(e)} "
            f"| {how}, {p.interpolation}, {p.mode} | {e.layout} | {e.license} |"
        )
        if e.metrics_source not in sources:
            sources.append(e.metrics_source)
    lines.append("")
    lines.append("Figures as published: " + "; ".join(sources) + ".")
    return "\n".join(lines)
