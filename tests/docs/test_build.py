"""The documentation site builds strictly, fetches nothing from the network when viewed, and fails to build,
naming the page, when a link, a page or a documented Python object is missing."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from .conftest import mkdocs_build
from .runnable import DOCS, ROOT

CONFIG = yaml.safe_load((ROOT / "mkdocs.yml").read_text())


def _nav_pages(nav) -> list[str]:
    pages = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_the_site_builds_strictly(site_build):
    assert site_build.returncode == 0, f"mkdocs build --strict failed:\n{site_build.output}"
    assert "Documentation built" in site_build.output


def test_every_page_is_in_the_nav_and_built(site):
    nav = _nav_pages(CONFIG["nav"])
    sources = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(nav) == sources  # (mkdocs would also fail on a page left out: validation.omitted_files)
    for page in nav:  # the offline plugin: pages are FILE.html, not FILE/index.html
        assert (site / page).with_suffix(".html").is_file(), page
    models = (site / "reference" / "models.html").read_text()
    assert "<td><code>resnet20</code></td>" in models and "<td><code>resnet50</code></td>" in models
    api = (site / "reference" / "api.html").read_text()
    assert 'id="reslab.factory.create_model"' in api and "Build a registered model" in api  # mkdocstrings ran
    assert (site / "visualize" / "filters-vgg.png").is_file()  # the pictures the pages link to are copied


# -- offline ------------------------------------------------------------------------------------------------
#: (tag, attribute) pairs whose URL a browser fetches when it renders the page (<a href> is only a link)
FETCHED = {
    ("script", "src"),
    ("img", "src"),
    ("img", "srcset"),
    ("iframe", "src"),
    ("source", "src"),
    ("source", "srcset"),
    ("video", "src"),
    ("video", "poster"),
    ("audio", "src"),
    ("embed", "src"),
    ("object", "data"),
    ("input", "src"),
    ("track", "src"),
}
LINK_FETCHED = {"stylesheet", "icon", "preload", "modulepreload", "prefetch", "preconnect", "dns-prefetch", "manifest"}
OUTSIDE = re.compile(r"^\s*(https?:)?//", re.I)
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)|@import\s+['"]([^'"]+)""", re.I)


class _Fetched(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name, value in attrs.items():
            if value is None:
                continue
            if (tag, name) in FETCHED:
                self.urls += [part.split()[0] for part in value.split(",") if part.strip()]
            elif tag == "link" and name == "href" and LINK_FETCHED & set((attrs.get("rel") or "").lower().split()):
                self.urls.append(value)
            elif name == "style":
                self.urls += [a or b for a, b in CSS_URL.findall(value)]
        if tag == "div" and "mermaid" in (attrs.get("class") or "").split():
            self.urls.append("https://unpkg.com/mermaid (a mermaid diagram: Material loads mermaid.js)")
        if attrs.get("data-md-component") == "source":
            self.urls.append("https://api.github.com (repo_url: Material fetches the repository's facts)")


def outside_fetches(site: Path) -> list[str]:
    """``FILE: URL`` for every URL outside the site that a browser would fetch to show the built pages."""
    found = []
    for page in sorted(site.rglob("*.html")):
        parser = _Fetched()
        parser.feed(page.read_text(encoding="utf-8"))
        found += [f"{page.relative_to(site)}: {u}" for u in parser.urls if OUTSIDE.match(u)]
        for style in re.findall(r"<style[^>]*>(.*?)</style>", page.read_text(encoding="utf-8"), re.S):
            found += [f"{page.relative_to(site)}: {a or b}" for a, b in CSS_URL.findall(style) if OUTSIDE.match(a or b)]
    for sheet in sorted(site.rglob("*.css")):
        for a, b in CSS_URL.findall(sheet.read_text(encoding="utf-8")):
            if OUTSIDE.match(a or b):
                found.append(f"{sheet.relative_to(site)}: {a or b}")
    for script in sorted((site / "assets" / "javascripts").glob("*.js")):  # our own scripts, not Material's
        if script.name.startswith("iframe-worker"):
            code = re.sub(r"/\*.*?\*/|//[^\n]*", "", script.read_text(encoding="utf-8"), flags=re.S)
            found += [f"{script.relative_to(site)}: {u}" for u in re.findall(r"https?://[^\s'\"]+", code)]
    return found


def test_nothing_is_fetched_from_outside_the_site(site):
    assert outside_fetches(site) == []


def test_the_offline_check_sees_what_material_would_fetch(tmp_path):
    """The check above can fail: Material's defaults (Google Fonts, the offline plugin's unpkg shim) are seen."""
    page = tmp_path / "index.html"
    page.write_text(
        '<html><head><link rel="preconnect" href="https://fonts.gstatic.com" crossorigin>'
        '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">'
        '<script src="https://unpkg.com/iframe-worker/shim"></script>'
        '<link rel="stylesheet" href="assets/main.css"><style>body{background:url("//cdn.example/x.png")}</style>'
        '</head><body><a href="https://squidfunk.github.io/mkdocs-material/">a link, not fetched</a>'
        '<img src="data:image/png;base64,AAAA" srcset="pic.png 1x, https://cdn.example/pic.png 2x"></body></html>'
    )
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "main.css").write_text('@import "https://cdn.example/a.css"; p{background:url(b.png)}')
    assert outside_fetches(tmp_path) == [
        "index.html: https://fonts.gstatic.com",
        "index.html: https://fonts.googleapis.com/css?family=Roboto",
        "index.html: https://unpkg.com/iframe-worker/shim",
        "index.html: https://cdn.example/pic.png",
        "index.html: //cdn.example/x.png",
        "assets/main.css: https://cdn.example/a.css",
    ]


# -- strictness ---------------------------------------------------------------------------------------------
def _mini_site(tmp_path: Path, pages: dict[str, str]) -> Path:
    """The project's mkdocs.yml (theme, plugins, validation, strict) over ``pages`` instead of docs/."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in pages.items():
        (docs / name).write_text(text)
    config = copy.deepcopy(CONFIG)
    config.update(docs_dir=str(docs), nav=[p for p in pages if p != "left-out.md"])
    config.pop("extra", None)
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            plugin["mkdocstrings"]["handlers"]["python"]["paths"] = [str(ROOT / "src")]
    path = tmp_path / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.usefixtures("site_build")  # mkdocs and its plugins are installed
def test_a_broken_link_or_a_page_left_out_fails_the_build_naming_the_page(tmp_path):
    config = _mini_site(
        tmp_path,
        {
            "index.md": "# Home\n\n[a guide](guide.md#no-such-section)\n",
            "guide.md": "# Guide\n\n[gone](nowhere.md)\n",
            "left-out.md": "# Not in the nav\n",
        },
    )
    proc = mkdocs_build(config, tmp_path / "site", timeout=120)
    assert proc.returncode != 0
    assert "Aborted with 3 warnings in strict mode" in proc.stdout, proc.stdout
    assert "Doc file 'guide.md' contains a link 'nowhere.md'" in proc.stdout
    assert "Doc file 'index.md' contains a link 'guide.md#no-such-section'" in proc.stdout
    assert "left-out.md" in proc.stdout and 'not included in the "nav"' in proc.stdout


@pytest.mark.usefixtures("site_build")
def test_a_documented_object_that_no_longer_exists_fails_the_build_naming_the_page(tmp_path):
    config = _mini_site(
        tmp_path,
        {
            "index.md": "# Home\n\n::: reslab.factory.create_model\n",
            "api.md": "# API\n\n::: reslab.models.no_such_thing\n",
        },
    )
    proc = mkdocs_build(config, tmp_path / "site", timeout=120)
    assert proc.returncode != 0
    assert "Error reading page 'api.md'" in proc.stdout, proc.stdout
    assert "Could not collect 'reslab.models.no_such_thing'" in proc.stdout


def test_the_readme_is_short_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    assert "make demo" in readme and "make test" in readme and "make docs" in readme
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    assert len(targets) >= 15
    for target in targets:
        assert not OUTSIDE.match(target) and (ROOT / target).is_file(), target
