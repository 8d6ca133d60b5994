"""The weights cache and downloader against a local HTTP server on 127.0.0.1: good and bad hashes, cached
files used with no network, torch.hub's cache, interrupted downloads, the offline message."""

from __future__ import annotations

import hashlib
import http.server
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from reslab.checksum import file_digest, verify_file
from reslab.errors import ChecksumError, DataError
from reslab.weights import hub
from reslab.weights.registry import get_weights


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    truncate: set[str] = set()
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        name = self.path.rsplit("/", 1)[-1]
        self.hits.append(name)
        body = self.files.get(name)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # a server that dies mid-body: announce the full length, send half, close the connection
        self.wfile.write(body[: len(body) // 2] if name in self.truncate else body)
        self.wfile.flush()
        if name in self.truncate:
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A local server; ``base`` is its URL prefix, ``files`` what it serves, ``stop()`` takes it down."""
    _Handler.files, _Handler.truncate, _Handler.hits = {}, set(), []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    class Server:
        base = f"http://127.0.0.1:{httpd.server_address[1]}/models/"
        files, truncate, hits = _Handler.files, _Handler.truncate, _Handler.hits

        @staticmethod
        def stop():
            httpd.shutdown()
            httpd.server_close()

    yield Server
    try:
        Server.stop()
    except OSError:
        pass


def _weights_file(tmp_path: Path) -> tuple[bytes, str]:
    """Random torchvision-layout weights saved with torch.save, and their SHA-256."""
    path = tmp_path / "w.pth"
    torch.save({"fc.weight": torch.randn(10, 8), "fc.bias": torch.randn(10)}, path)
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def _entry(server, name: str, hash_: str):
    return replace(get_weights("resnet18.tv_in1k"), tag="test", url=server.base + name, hash=hash_)


def test_good_hash_downloads_into_reslab_cache(server, tmp_path):
    data, sha = _weights_file(tmp_path)
    name = f"resnet18-{sha[:8]}.pth"
    server.files[name] = data
    path = hub.fetch(_entry(server, name, f"sha256:{sha[:8]}"), progress=False)
    assert path == hub.weights_dir() / name and path.read_bytes() == data
    assert list(path.parent.iterdir()) == [path]  # no temporary file left
    assert torch.load(path, weights_only=True)["fc.bias"].shape == (10,)


def test_md5_hash_as_keras_publishes(server, tmp_path):
    data, _ = _weights_file(tmp_path)
    name = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
    server.files[name] = data
    md5 = hashlib.md5(data).hexdigest()
    assert hub.fetch(_entry(server, name, f"md5:{md5}"), progress=False).read_bytes() == data


def test_bad_hash_deletes_the_download_and_says_so(server, tmp_path):
    data, sha = _weights_file(tmp_path)
    name = "resnet18-00000000.pth"
    server.files[name] = data
    entry = _entry(server, name, "sha256:00000000")
    with pytest.raises(ChecksumError) as err:
        hub.fetch(entry, progress=False)
    message = str(err.value)
    assert entry.url in message and "expected SHA256 00000000" in message and sha in message
    assert "deleted" in message and "\n" not in message
    assert not hub.weights_dir().exists() or list(hub.weights_dir().iterdir()) == []


def test_cached_file_is_used_without_network(server, tmp_path):
    data, sha = _weights_file(tmp_path)
    name = f"resnet18-{sha[:8]}.pth"
    server.files[name] = data
    entry = _entry(server, name, f"sha256:{sha[:8]}")
    first = hub.fetch(entry, progress=False)
    server.stop()
    assert hub.fetch(entry, progress=False) == first
    assert server.hits == [name]  # one download, then the cache


def test_torch_hub_cache_is_used(server, tmp_path, monkeypatch):
    data, sha = _weights_file(tmp_path)
    name = f"resnet18-{sha[:8]}.pth"
    torch_home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    hub_file = torch_home / "hub" / "checkpoints" / name
    hub_file.parent.mkdir(parents=True)
    hub_file.write_bytes(data)
    assert hub.torch_hub_dir() == Path(torch.hub.get_dir()) / "checkpoints"  # the folder torch.hub uses
    server.stop()  # no network at all
    assert hub.fetch(_entry(server, name, f"sha256:{sha[:8]}"), progress=False) == hub_file
    assert hub.cached_path(_entry(server, name, f"sha256:{sha[:8]}")) == hub_file


def test_cached_file_with_wrong_hash_is_not_used_nor_deleted(server, tmp_path, monkeypatch):
    data, sha = _weights_file(tmp_path)
    name = f"resnet18-{sha[:8]}.pth"
    server.files[name] = data
    torch_home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    hub_file = torch_home / "hub" / "checkpoints" / name
    hub_file.parent.mkdir(parents=True)
    hub_file.write_bytes(b"not these weights")
    path = hub.fetch(_entry(server, name, f"sha256:{sha[:8]}"), progress=False)
    assert path == hub.weights_dir() / name and path.read_bytes() == data
    assert hub_file.read_bytes() == b"not these weights"  # the user's file is left alone


def test_interrupted_download_leaves_no_partial_file(server, tmp_path):
    data, sha = _weights_file(tmp_path)
    name = f"resnet18-{sha[:8]}.pth"
    server.files[name] = data
    server.truncate.add(name)
    with pytest.raises(DataError, match="cut short") as err:
        hub.fetch(_entry(server, name, f"sha256:{sha[:8]}"), progress=False)
    assert not isinstance(err.value, ChecksumError)
    assert list(hub.weights_dir().iterdir()) == []


def test_offline_error_names_the_file_the_folders_and_the_url(server, tmp_path):
    entry = _entry(server, "resnet18-f37072fd.pth", "sha256:f37072fd")
    server.stop()
    with pytest.raises(DataError) as err:
        hub.fetch(entry, progress=False)
    message = str(err.value)
    assert "resnet18-f37072fd.pth" in message and entry.url in message
    assert str(hub.weights_dir()) in message and str(hub.torch_hub_dir()) in message
    assert "\n" not in message
    assert not hub.weights_dir().exists() or list(hub.weights_dir().iterdir()) == []


def test_verify_file_full_digest_prefix_and_md5(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"reslab")
    sha, md5 = file_digest(path), file_digest(path, "md5")
    assert verify_file(path, f"sha256:{sha}") == sha and verify_file(path, f"sha256:{sha[:8]}") == sha
    assert verify_file(path, f"md5:{md5}") == md5
    with pytest.raises(ChecksumError, match=f"expected MD5 {'0' * 32}, got {md5}"):
        verify_file(path, "md5:" + "0" * 32)
    with pytest.raises(ChecksumError, match="expected SHA256 prefix 00000000"):
        verify_file(path, "sha256:00000000")


def test_the_suite_never_touches_the_users_cache():
    for folder in hub.cache_dirs():
        assert Path.home() / ".cache" not in folder.parents
