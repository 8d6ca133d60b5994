"""Headless Chromium for the browser tests (the run report, the documentation site): Debian's ``chromium``
driven by Playwright through ``executable_path`` (no browser download). Importing this module skips the
importing test module, with the reason shown, where the playwright package is missing; ``needs_chromium``
(its ``pytestmark``) where Chromium is."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import pytest


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


CHROMIUM = _chromium()
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="the playwright package is not installed (pip install "
    "playwright; it drives the system Chromium, no browser download)",
)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")


@contextlib.contextmanager
def launched() -> Iterator:
    """A headless Chromium browser, closed at the end of the block."""
    with sync_api.sync_playwright() as p:
        # --no-sandbox: CI and containers run as root, where Chromium's sandbox refuses to start
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()
