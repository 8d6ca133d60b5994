"""The built documentation site in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

The site (built once per session, strict) is served on 127.0.0.1 by an ``http.server`` thread. The home page
must render, the search must find "shortcut", the models reference must show its table, a guide's pictures
must decode (``naturalWidth > 0``), and no request may leave 127.0.0.1; the site also works from a file://
URL (the offline plugin, and the local iframe-worker shim for search). A screenshot of each page is saved in
the test's temporary folder. Playwright drives the system Chromium through ``executable_path`` (no browser
download), launched by ``tests/chromium.py``; skipped, with the reason
shown, where Chromium or the playwright package is missing.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ..chromium import launched, needs_chromium, sync_api

pytestmark = needs_chromium

TIMEOUT_MS = 20_000


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def server(site):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    with launched() as b:
        yield b


class Visit:
    """A page open in Chromium, with every request, console message and script error it caused."""

    def __init__(self, browser, url: str):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.set_default_timeout(TIMEOUT_MS)
        self.requests: list[str] = []
        self.console: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url, wait_until="load")

    def outside(self, prefix: str) -> list[str]:
        return [u for u in self.requests if not u.startswith((prefix, "data:", "blob:", "about:"))]

    def images(self) -> list[dict]:
        return self.page.evaluate(
            "() => Array.from(document.querySelectorAll('article img'), i => "
            "({src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth}))"
        )

    def search(self, text: str) -> list[str]:
        box = self.page.locator("input.md-search__input")
        box.click()  # from a file:// page, opening the search is what loads its index
        sync_api.expect(self.page.locator(".md-search-result__meta")).to_have_text(
            "Type to start searching", timeout=TIMEOUT_MS
        )
        box.press_sequentially(text, delay=30)  # typed as a reader types: Material listens to the keys
        items = self.page.locator(".md-search-result__item")
        items.first.wait_for(state="visible")
        return [items.nth(i).inner_text() for i in range(items.count())]


def test_the_site_in_chromium(browser, server, tmp_path):
    home = Visit(browser, server + "index.html")
    assert home.page.title().startswith("reslab")
    assert home.page.locator("article h1").inner_text().rstrip("¶").strip() == "reslab"
    assert home.page.locator("nav.md-nav--primary").get_by_text("Reproducing the papers").count() > 0
    results = home.search("shortcut")
    assert results and any("shortcut" in r.lower() for r in results), results
    home.page.screenshot(path=str(tmp_path / "home-search.png"), full_page=False)

    models = Visit(browser, server + "reference/models.html")
    rows = models.page.locator("article table tbody tr")
    names = [rows.nth(i).locator("td").first.inner_text().strip() for i in range(rows.count())]
    assert {"resnet20", "resnet50", "preact_resnet1001", "densenet_bc100"} <= set(names)
    assert len(names) >= 45
    models.page.screenshot(path=str(tmp_path / "models.png"), full_page=True)

    guide = Visit(browser, server + "guides/visualize.html")
    images = guide.images()
    assert len(images) >= 8 and any(i["src"].endswith("deconv-vgg-features9.png") for i in images)
    for image in images:
        assert image["complete"] and image["width"] > 0, image
    guide.page.screenshot(path=str(tmp_path / "visualize.png"), full_page=True)

    for visit in (home, models, guide):
        assert visit.outside(server) == [], visit.outside(server)  # nothing fetched beyond 127.0.0.1
        assert visit.errors == [] and [m for m in visit.console if m.startswith("error")] == []
        visit.page.close()
    assert (tmp_path / "home-search.png").stat().st_size > 0


def test_the_site_from_a_file_url(browser, site, tmp_path):
    """`make docs` then open site/index.html: links, pictures and search work without a server."""
    home = Visit(browser, (site / "index.html").as_uri())
    results = home.search("shortcut")
    assert results and any("shortcut" in r.lower() for r in results), results
    home.page.keyboard.press("Escape")  # close the search
    home.page.get_by_role("link", name="Quickstart").first.click()
    home.page.wait_for_url("**/quickstart.html")
    assert home.page.locator("article h1").inner_text().rstrip("¶").strip() == "Quickstart"
    assert all(i["width"] > 0 for i in Visit(browser, (site / "guides" / "reproduce.html").as_uri()).images())
    home.page.screenshot(path=str(tmp_path / "file-quickstart.png"))
    assert home.outside(site.as_uri()) == []
    assert home.errors == []


def test_the_request_check_sees_an_outside_request(browser, tmp_path):
    """The check above can fail: a page that loads an outside script is seen (the request fails offline)."""
    page = tmp_path / "outside.html"
    page.write_text('<html><body><script src="https://unpkg.com/iframe-worker/shim"></script></body></html>')
    visit = Visit(browser, page.as_uri())
    assert visit.outside(tmp_path.as_uri()) == ["https://unpkg.com/iframe-worker/shim"]
    visit.page.close()
