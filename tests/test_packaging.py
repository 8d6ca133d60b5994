"""What a pip-installed reslab carries: the data files the package reads at run time must be listed as
package data (an editable install reads src/ and would hide a missing entry)."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "reslab"


def _package_data_files() -> set[Path]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["reslab"]
    return {p for pattern in patterns for p in PACKAGE.glob(pattern)}


def test_recipes_and_model_catalogue_are_package_data():
    shipped = _package_data_files()
    needed = set((PACKAGE / "configs").glob("*.yaml")) | {PACKAGE / "model_catalog.json"}
    assert len(needed) >= 8  # the recipes the docs name, and the catalogue `reslab list` reads
    assert needed <= shipped, sorted(str(p.relative_to(PACKAGE)) for p in needed - shipped)


def test_every_package_data_pattern_matches_a_file():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for pattern in config["tool"]["setuptools"]["package-data"]["reslab"]:
        assert list(PACKAGE.glob(pattern)), f"package-data pattern {pattern!r} matches nothing under src/reslab"
