"""Shared fixtures: a local HTTP server for download tests, and the real cifar10-mini location."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest

#: <repo>/../shared/data/cifar10-mini (the real data; read only)
CIFAR10_MINI = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cifar10-mini"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@pytest.fixture
def http_dir(tmp_path):
    """(folder, base_url): files written into folder are served at base_url by a thread on 127.0.0.1."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def cifar10_mini():
    folder = CIFAR10_MINI / "cifar-10-batches-py"
    if not (folder / "batches.meta").is_file():
        pytest.skip(f"real cifar10-mini not found at {folder.resolve()}")
    return CIFAR10_MINI
