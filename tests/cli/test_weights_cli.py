"""`reslab weights list | info | download` (the generated weights table in docs/reference/weights.md is checked by
tests/docs/test_generated.py)."""

from __future__ import annotations

import hashlib
import http.server
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from reslab.cli import main
from reslab.weights import hub, registry
from reslab.weights.registry import get_weights, register_weights


def test_list_shows_the_table_with_default_marker(capsys):
    assert main(["weights", "list", "resnet50"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "model", "top-1", "classes", "input", "layout", "default", "cached"]
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert list(rows) == ["resnet50.tv_in1k", "resnet50.tv2_in1k", "resnet50.timm_a1_in1k"]
    assert rows["resnet50.tv2_in1k"][1:] == ["resnet50", "80.858", "imagenet", "3x224x224", "torchvision", "*"]
    assert rows["resnet50.tv_in1k"][-1] == "torchvision"  # not the default, not cached


def test_list_without_matches(capsys):
    assert main(["weights", "list", "nothing*"]) == 1
    assert "no weights match" in capsys.readouterr().out


def test_info_prints_every_field(capsys):
    assert main(["weights", "info", "googlenet.tv_in1k"]) == 0
    out = capsys.readouterr().out
    expected = [
        "url:           https://download.pytorch.org/models/googlenet-1378be20.pth",
        "hash:          sha256:1378be20",
        "model args:    transform_input=True",
        "classes:       imagenet (1000)",
        "top1 69.778, top5 89.53",
        "3x224x224 (resize 256, centre crop, bilinear)",
        "license:       BSD-3-Clause",
        "not cached",
    ]
    for text in expected:
        assert text in out, text


@pytest.mark.parametrize(
    "argv,message",
    [
        (["weights", "info", "resnet50.tv3_in1k"], "resnet50 has: tv_in1k, tv2_in1k, timm_a1_in1k"),
        (["weights", "info", "resnt20.akamaster_cifar10"], "did you mean resnet20.akamaster_cifar10"),
        (["weights", "download", "vgg16.nope"], "unknown weights 'vgg16.nope'"),
    ],
)
def test_unknown_names_are_one_line_errors_with_suggestions(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("reslab: error: ") and message in err and err.count("\n") == 1


class _Serve(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_download_prints_the_path_and_list_marks_it_cached(monkeypatch, capsys, tmp_path):
    _Serve.body = b"weights bytes"
    sha = hashlib.sha256(_Serve.body).hexdigest()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Serve)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(registry, "_WEIGHTS", dict(registry._WEIGHTS))
        url = f"http://127.0.0.1:{httpd.server_address[1]}/resnet18-{sha[:8]}.pth"
        register_weights(
            replace(get_weights("resnet18.tv_in1k"), tag="served", url=url, hash=f"sha256:{sha[:8]}", default=False)
        )
        assert main(["weights", "download", "resnet18.served", "--quiet"]) == 0
    finally:
        httpd.shutdown()
        httpd.server_close()
    path = Path(capsys.readouterr().out.strip())
    assert path == hub.weights_dir() / f"resnet18-{sha[:8]}.pth" and path.read_bytes() == _Serve.body
    assert main(["weights", "list", "resnet18.served"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[-1] == "cached"
    assert main(["weights", "info", "resnet18.served"]) == 0
    assert f"cache:         {path}" in capsys.readouterr().out


def test_download_offline_is_one_line_naming_file_and_folders(capsys):
    entry = get_weights("resnet20.akamaster_cifar10")
    code = (
        "import sys, socket\n"
        "def refuse(*a, **k): raise OSError('network is unreachable')\n"
        "socket.create_connection = refuse\n"
        "from reslab.cli import main; sys.exit(main(['weights', 'download', 'resnet20.akamaster_cifar10']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and entry.file_name in proc.stderr and entry.url in proc.stderr
    assert str(hub.weights_dir()) in proc.stderr and str(hub.torch_hub_dir()) in proc.stderr


def test_list_and_info_do_not_import_torch():
    code = (
        "import sys; from reslab.cli import main; rc = main(['weights', 'list']) + main(['weights', 'info', "
        "'resnet50.tv2_in1k']); print('torch imported' if 'torch' in sys.modules else 'no torch'); sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "resnet20.akamaster_cifar10" in proc.stdout and "resnet50-11ad3fa6.pth" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "no torch"
