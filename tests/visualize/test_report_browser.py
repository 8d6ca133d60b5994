"""The run report in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

Playwright drives the system Chromium through ``executable_path`` (no browser download). The page must load
without console messages, page errors or requests beyond its own file, every <img> must decode
(``naturalWidth > 0``), and a full-page screenshot is saved beside the test's report. Skipped, with the reason
shown, where Chromium or the playwright package is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from reslab.cli import main

from ..chromium import launched, needs_chromium
from .report_helpers import read_page, train_digits, train_synthetic

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def browser():
    with launched() as b:
        yield b


def open_in_chromium(browser, page_file: Path, screenshot: Path) -> dict:
    """Load ``page_file`` and report what a reader's browser would meet: console messages, script errors,
    every request made, and each image's decoded width; save a full-page screenshot."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen: dict = {"console": [], "errors": [], "requests": [], "failed": []}
    page.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("requestfailed", lambda r: seen["failed"].append(r.url))
    page.goto(page_file.resolve().as_uri(), wait_until="load")
    seen["images"] = page.evaluate(
        "() => Array.from(document.images, i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth}))"
    )
    page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    return seen


def _check_renders(browser, report: Path) -> dict:
    shot = report.with_suffix(".png")
    seen = open_in_chromium(browser, report, shot)
    assert seen["console"] == [] and seen["errors"] == [] and seen["failed"] == []
    assert seen["requests"] == [report.resolve().as_uri()]  # nothing fetched beyond the page itself
    assert len(seen["images"]) == len(read_page(report).images) > 0
    for image in seen["images"]:
        assert image["complete"] and image["width"] > 0, image
    with Image.open(shot) as picture:  # the screenshot holds the whole page
        assert picture.width == 1280 and picture.height > 900
    return seen


def test_report_of_a_grey_run_renders_in_chromium(tmp_path, browser):
    run = train_digits(tmp_path / "run")
    assert main(["report", str(run), "--device", "cpu"]) == 0
    seen = _check_renders(browser, run / "report.html")
    assert sum(i["alt"].startswith("Grad-CAM") for i in seen["images"]) == 10


def test_report_of_an_rgb_run_renders_in_chromium(tmp_path, browser):
    run = train_synthetic(tmp_path / "run")
    out = tmp_path / "elsewhere" / "synthetic report.html"  # --out, a space in the name
    assert main(["report", str(run), "--out", str(out), "--mistakes", "4", "--device", "cpu"]) == 0
    _check_renders(browser, out)


def test_the_browser_check_sees_a_broken_image_and_a_console_error(tmp_path, browser):
    """The checks above can fail: a truncated PNG does not decode, and a script error is seen."""
    good = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    broken = tmp_path / "broken.html"
    broken.write_text(
        f'<html><body><img alt="ok" src="data:image/png;base64,{good}">'
        f'<img alt="cut" src="data:image/png;base64,{good[:40]}">'
        "<script>console.error('boom')</script></body></html>"
    )
    seen = open_in_chromium(browser, broken, tmp_path / "broken.png")
    assert [(i["alt"], i["width"] > 0) for i in seen["images"]] == [("ok", True), ("cut", False)]
    assert seen["console"] == ["error: boom"]
