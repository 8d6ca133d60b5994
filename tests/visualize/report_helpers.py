"""Shared by the report tests: tiny runs of every kind reslab writes, and an HTML reader."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

from PIL import Image

from reslab.training import train

REPO = Path(__file__).resolve().parents[2]
CIFAR10_MINI = REPO.parent / "shared" / "data" / "cifar10-mini"
#: a ResNet-20 small enough to train an epoch on a few hundred images in about a second
TINY = dict(model="resnet20", model_args={"widths": [4, 8, 8]}, device="cpu", progress="none", threads=1)

#: the sections every report has (their element ids)
SECTIONS = ("summary", "curves", "confusion", "per-class", "mistakes", "filters", "config")


def train_digits(out: Path, **kwargs) -> Path:
    """Grey 8x8 digits; no validation split (the per-epoch figures use the test split)."""
    train(data="digits", epochs=1, batch_size=64, out=str(out), **TINY, **kwargs)
    return out


def train_synthetic(out: Path, **kwargs) -> Path:
    """RGB synthetic images with a validation split held out."""
    train(
        data="synthetic",
        image_size=8,
        data_args={"num_classes": 4, "num_samples": 160},
        val_split=0.25,
        epochs=1,
        batch_size=32,
        out=str(out),
        **TINY,
        **kwargs,
    )
    return out


class Page(HTMLParser):
    """What the tests look at in a report: every <img> (src, alt), element ids, tags, and visible text."""

    def __init__(self, text: str):
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.ids: list[str] = []
        self.tags: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "img":
            self.images.append(a)
        for key in ("src", "href"):
            if key in a and tag != "img":
                self.links.append(a[key])

    def handle_data(self, data):
        self.text.append(data)

    @property
    def plain(self) -> str:
        return " ".join(" ".join(self.text).split())


def read_page(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


def decode_png(uri: str) -> Image.Image:
    """The image of a ``data:image/png;base64,`` URI, checked to be a whole PNG."""
    assert uri.startswith("data:image/png;base64,"), uri[:60]
    raw = base64.b64decode(uri.split(",", 1)[1], validate=True)
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    Image.open(io.BytesIO(raw)).verify()  # checks the chunks' CRCs
    image = Image.open(io.BytesIO(raw))
    image.load()
    return image


def mistakes_in(page: Page) -> list[tuple[int, str, str, float, float]]:
    """(image index, true, predicted, p(predicted), p(true)) of each mistake the page shows."""
    found = re.findall(r"#(\d+): true (\S+) , predicted (\S+) p\(predicted\) ([\d.]+), p\(true\) ([\d.]+)", page.plain)
    return [(int(i), t, p, float(pp), float(pt)) for i, t, p, pp, pt in found]
