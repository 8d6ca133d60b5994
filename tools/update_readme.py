"""Regenerate the model table in README.md from the registry (`make readme`)."""

from __future__ import annotations

import sys
from pathlib import Path

from reslab.cli.models import markdown_table

BEGIN, END = "<!-- models:begin -->", "<!-- models:end -->"


def render(readme: str) -> str:
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{markdown_table()}\n{END}{tail}"


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(render(path.read_text()))
    print(f"updated {path}")
