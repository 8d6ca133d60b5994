"""`make readme` (the former name of `make docs-gen`): regenerate the model catalogue
(src/reslab/model_catalog.json, tools/build_catalog.py), then the reference pages generated from the code.

The model and weights tables used to sit in README.md; they now live in docs/reference/models.md and
docs/reference/weights.md, written by tools/gen_docs.py (see its docstring)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_docs import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--catalog", *sys.argv[1:]]))
