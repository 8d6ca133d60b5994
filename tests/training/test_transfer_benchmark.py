"""The transfer benchmark's pipeline on real images, small enough for CI (``benchmarks/transfer.py --tiny``):
pretraining on 5 CIFAR-10 classes of cifar10-mini, then the other 5 from 20 images per class, frozen /
fine-tuned / from scratch. The full-size run and its figures are in docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CIFAR10_MINI

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(
    not (CIFAR10_MINI / "cifar-10-batches-py").is_dir(),
    reason=f"the CIFAR-10 subset is not at {CIFAR10_MINI} (a checkout without ../shared/data)",
)
def test_tiny_transfer_benchmark_runs_every_arm_on_real_images(tmp_path):
    out = tmp_path / "scores.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "transfer.py"),
            "--tiny",
            "--threads",
            "1",
            "--work",
            str(tmp_path / "work"),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = json.loads(out.read_text())["scores"]
    assert set(scores) == {"frozen", "finetune", "scratch"}
    assert all(0.0 <= v <= 1.0 for values in scores.values() for v in values)
    # what the pretraining learnt carries over: fine-tuning beats the same budget from scratch by a margin,
    # and a linear head on the frozen features is well above chance (10 classes). Frozen vs scratch is not
    # asserted: at this size it goes either way (measured: frozen 0.294 / 0.248, fine-tuned 0.448 / 0.436,
    # scratch 0.246 / 0.306 on 500 held-out images, on two machines)
    assert scores["finetune"][0] > scores["scratch"][0] + 0.1, proc.stdout
    assert scores["frozen"][0] > 0.18, proc.stdout
    assert "pretraining: source-task" in proc.stdout and "frozen / scratch" in proc.stdout
