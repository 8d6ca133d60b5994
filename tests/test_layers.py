"""The architecture's layers hold: data flows one way (cli -> training -> data + factory -> weights -> models),
no module reaches back up, and no two modules import each other in a circle.

Two checks: every import statement in src/reslab (module level and inside functions, read with ``ast``)
against the table of what each layer may use, and each sub-package imported alone in a fresh interpreter
(what it pulls in at import time).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
#: modules at the root of the package that every layer may use (no reslab imports of their own but each other)
UTILITIES = {"errors", "arguments", "checksum", "lazy", "catalog"}
#: each layer and the layers it may import (besides itself and the utilities)
ALLOWED = {
    "models": set(),
    "weights": {"models"},
    "data": set(),
    "factory": {"models", "weights"},
    "training": {"models", "weights", "data", "factory"},
    "reproduce": {"models", "weights", "data", "factory", "training"},
    "visualize": {"models", "weights", "data", "factory", "training"},
    "export": {"models", "weights", "data", "factory", "training"},
    "cli": {"models", "weights", "data", "factory", "training", "reproduce", "visualize", "export"},
    "__main__": {"cli"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "reslab").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The reslab modules ``name`` imports anywhere in its file (``from . import x`` counts as ``x``)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: level 1 is the module's own package
                parts = package[: len(package) - node.level + 1] + ([node.module] if node.module else [])
                base = ".".join(parts)
            else:
                base = node.module or ""
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            targets = subs if len(subs) == len(node.names) else [base, *subs]
        else:
            continue
        for target in targets:
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != name and target.startswith("reslab"):
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


def test_no_layer_imports_a_layer_above_it():
    wrong = []
    for module, targets in GRAPH.items():
        layer = _layer(module)
        if layer == "(root)":
            continue
        for target in targets:
            other = _layer(target)
            if other == layer or other in UTILITIES or target == "reslab":  # the root: __version__, lazy names
                continue
            if layer in UTILITIES:
                wrong.append(f"{module} -> {target} (a utility imports a layer)")
            elif other not in ALLOWED[layer]:
                wrong.append(f"{module} -> {target} ({layer} may not import {other})")
    assert not wrong, "layering violated:\n" + "\n".join(sorted(wrong))


def test_no_import_circles():
    """Tarjan's strongly connected components over every import (a package's ``__init__`` importing its own
    children is not a circle: the children never import the package back)."""
    index, low, stack, on, circles, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


@pytest.mark.parametrize("package", ["models", "weights", "data", "factory", "training", "export", "visualize"])
def test_each_subpackage_imports_alone_without_the_layers_above(package):
    code = (
        f"import sys, json; import reslab.{package}; "
        "print(json.dumps(sorted({m.split('.')[1] for m in sys.modules if m.startswith('reslab.')})))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1])) - UTILITIES - {package}
    allowed = ALLOWED[package]
    assert loaded <= allowed, f"importing reslab.{package} imported {sorted(loaded - allowed)}"
