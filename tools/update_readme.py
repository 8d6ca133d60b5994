"""`make readme`: regenerate the model catalogue (src/reslab/model_catalog.json) from the registry, then
the model table in README.md from the catalogue."""

from __future__ import annotations

import sys
from pathlib import Path

from reslab.catalog import markdown_table, write_catalog

BEGIN, END = "<!-- models:begin -->", "<!-- models:end -->"


def render(readme: str) -> str:
    """``readme`` with its model table replaced by the one the catalogue gives."""
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{markdown_table()}\n{END}{tail}"


if __name__ == "__main__":
    print(f"updated {write_catalog()}")
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(render(path.read_text()))
    print(f"updated {path}")
