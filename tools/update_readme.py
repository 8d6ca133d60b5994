"""`make readme`: regenerate the model catalogue (src/reslab/model_catalog.json) from the registry, then
the model table and the pretrained-weights table in README.md from the catalogue and the weights registry."""

from __future__ import annotations

import sys
from pathlib import Path

from reslab.catalog import markdown_table, write_catalog
from reslab.cli.weights import markdown_table as weights_table

BEGIN, END = "<!-- models:begin -->", "<!-- models:end -->"
WEIGHTS_BEGIN, WEIGHTS_END = "<!-- weights:begin -->", "<!-- weights:end -->"


def _replace(readme: str, begin: str, end: str, table: str) -> str:
    head, rest = readme.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{table}\n{end}{tail}"


def render(readme: str) -> str:
    """``readme`` with its model table replaced by the one the catalogue gives and its weights table by the
    one the weights registry gives."""
    readme = _replace(readme, BEGIN, END, markdown_table())
    return _replace(readme, WEIGHTS_BEGIN, WEIGHTS_END, weights_table())


if __name__ == "__main__":
    print(f"updated {write_catalog()}")
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(render(path.read_text()))
    print(f"updated {path}")
