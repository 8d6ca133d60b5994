"""Helpers of the torchrun tests: 2 CPU processes (gloo), one thread each, started the way a user starts
them (``python -m torch.distributed.run`` = ``torchrun``) in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

#: a lenet5 run on synthetic data: 240 training images (a partial last global batch of 48 at 64 per
#: step), 60 validation and 75 test images, 2 epochs
LENET = [
    "--model",
    "lenet5",
    "--data",
    "synthetic",
    "--data-arg",
    "channels=1",
    "--data-arg",
    "num_samples=300",
    "--val-split",
    "0.2",
    "--image-size",
    "32",
    "--epochs",
    "2",
    "--device",
    "cpu",
    "--threads",
    "1",
    "--progress",
    "none",
    "--seed",
    "0",
]


def torchrun(
    args: list[str], *, nproc: int = 2, max_restarts: int = 0, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node N [--max-restarts K] -m reslab ARGS``; returns the process."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        f"--max-restarts={max_restarts}",
        "-m",
        "reslab",
        *args,
    ]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    full_env.pop("RANK", None)
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout)


def weights(run_dir: Path, name: str = "last.pt") -> dict[str, torch.Tensor]:
    return torch.load(run_dir / name, map_location="cpu", weights_only=True)["model"]


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


def run_ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]


@pytest.fixture(scope="package")
def lenet_runs(tmp_path_factory):
    """The same lenet5 run twice: 2 ranks x 32 per rank (torchrun), and 1 process x 64 (in-process)."""
    from reslab.cli import main

    root = tmp_path_factory.mktemp("lenet")
    ddp = root / "ddp"
    run_ok(torchrun(["train", *LENET, "--batch-size", "32", "--out", str(ddp)]))
    single = root / "single"
    assert main(["train", *LENET, "--batch-size", "64", "--out", str(single)]) == 0
    return ddp, single
