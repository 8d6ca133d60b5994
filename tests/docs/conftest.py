"""The documentation site, built once per test session (``mkdocs build --strict`` into a temporary folder).

Under pytest-xdist the workers share one build: the first to get the lock builds, the others read its result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .runnable import ROOT

BUILD_TIMEOUT = 300


@dataclass
class Build:
    site: Path
    returncode: int
    output: str


def mkdocs_build(config: Path, site: Path, timeout: float = BUILD_TIMEOUT) -> subprocess.CompletedProcess:
    """``mkdocs build --strict`` of ``config`` into ``site``: stdout and stderr together."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONPATH=str(ROOT / "src"))
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def site_build(tmp_path_factory) -> Build:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    pytest.importorskip("material", reason="mkdocs-material is not installed (pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings is not installed (pip install -e '.[docs]')")
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the session's folder, common to the workers
    site, result = shared / "docs-site", shared / "docs-site.json"
    with FileLock(str(shared / "docs-site.lock")):
        if not result.exists():
            proc = mkdocs_build(ROOT / "mkdocs.yml", site)
            result.write_text(json.dumps({"returncode": proc.returncode, "output": proc.stdout}))
    done = json.loads(result.read_text())
    return Build(site=site, returncode=done["returncode"], output=done["output"])


@pytest.fixture(scope="session")
def site(site_build) -> Path:
    """The built site's folder; the build must have passed (``test_build.py`` reports why it did not)."""
    if site_build.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed:\n{site_build.output}")
    return site_build.site
