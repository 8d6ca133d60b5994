"""The console of `reslab train` on a real terminal (a pseudo-terminal): with the progress bar each log
line appears exactly once, and -q leaves warnings and the final summary only."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

pty = pytest.importorskip("pty", reason="pseudo-terminals need a POSIX system")

ROOT = Path(__file__).resolve().parents[2]
TINY_DIGITS = [
    "--model",
    "resnet20",
    "--model-arg",
    "widths=[4,8,8]",
    "--data",
    "digits",
    "--epochs",
    "1",
    "--threads",
    "1",
    "--device",
    "cpu",
]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_on_terminal(args: list[str], timeout: float = 180) -> tuple[int, str]:
    """Run ``python -m reslab ARGS`` with stdin/stdout/stderr on a pseudo-terminal; (exit status, what
    the terminal received with escape sequences removed and carriage returns as line breaks)."""
    master, slave = os.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reslab", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        rc = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))
    return rc, text.replace("\r\n", "\n").replace("\r", "\n")


@pytest.mark.slow
def test_bar_prints_each_log_line_once(tmp_path):
    rc, text = run_on_terminal(["train", *TINY_DIGITS, "--out", str(tmp_path / "run")])
    assert rc == 0, text
    assert text.count("training resnet20 on digits") == 1, text
    assert text.count("epoch 1/1 | lr") == 1, text  # the epoch's log line (the bar's label is "epoch 1/1:")
    assert text.count("test accuracy: ") == 1, text


@pytest.mark.slow
@pytest.mark.parametrize("progress", ["auto", "bar"])
def test_quiet_prints_warnings_and_summary_only(tmp_path, progress):
    rc, text = run_on_terminal(["train", *TINY_DIGITS, "--out", str(tmp_path / "run"), "-q", "--progress", progress])
    assert rc == 0, text
    assert "training resnet20" not in text and "epoch 1/1 | lr" not in text, text
    assert text.count("test accuracy: ") == 1, text
    log = (tmp_path / "run" / "train.log").read_text()
    assert "training resnet20 on digits" in log and "epoch 1/1 | lr" in log  # the run's log keeps everything
