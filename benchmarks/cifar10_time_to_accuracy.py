"""Time to accuracy: resnet20 trained for 30 epochs on the whole CIFAR-10 training set, as a user runs it.

The run is the command line a user types (``reslab train``, in a subprocess), on the 50,000 CIFAR-10
JPEGs in ``../shared/data/cifar10-jpeg/train.zip`` with 10% held out for validation (45,000 / 5,000):

    reslab train --model resnet20 --data folder --data-dir train.zip --val-split 0.1 --epochs 30 \\
        --device cuda --amp bf16 --channels-last --compile --out OUT --progress plain

(the default recipe otherwise: ``resnet_cifar10_fast``). The zip is decoded once into reslab's array
cache (32x32 images: ``$RESLAB_CACHE_DIR``, default ``~/.cache/reslab/arrays``), then trained from the
device. Printed: the device, the command's wall time (Python start, data, compilation, 30 epochs,
evaluations), the sum of the epochs' times from ``metrics.csv``, and the validation accuracy from
``summary.json``. Goal on one H100: the 30 epochs under 30 seconds.

    python benchmarks/cifar10_time_to_accuracy.py [--device auto|cpu|cuda] [--epochs 30] [--data ZIP]
        [--limit N] [--quick] [--out DIR] [--json FILE] [-- EXTRA reslab train FLAGS]

``--quick``: 1 epoch on the first 512 training images (the whole validation split), which proves the
pipeline on a CPU. ``--amp auto`` (the default) leaves the precision to ``reslab train``'s own ``auto`` (bf16
and channels-last on CUDA; on the CPU bf16 only with native bf16 instructions and channels-last, each where its
probe finds it faster); ``--compile auto``: on CUDA only.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CIFAR10_ZIP = ROOT.parent / "shared" / "data" / "cifar10-jpeg" / "train.zip"


def reslab_command(args: argparse.Namespace, device: str, out: Path, extra: list[str]) -> list[str]:
    """The ``reslab train`` command line (run as ``python -m reslab``)."""
    cuda = device.startswith("cuda")
    cmd = [
        sys.executable,
        "-m",
        "reslab",
        "train",
        "--model",
        "resnet20",
        "--data",
        "folder",
        "--data-dir",
        str(args.data),
        "--val-split",
        "0.1",
        "--epochs",
        str(args.epochs),
        "--device",
        device,
        "--out",
        str(out),
        "--progress",
        "plain",
    ]
    if args.amp == "bf16":
        cmd += ["--amp", "bf16", "--channels-last"]
    elif args.amp == "none":
        cmd += ["--amp", "none", "--no-channels-last"]
    # auto: reslab train's own default (bf16 + channels-last on CUDA; on the CPU where native and faster)
    if args.compile == "on" or (args.compile == "auto" and cuda):
        cmd += ["--compile"]
    if args.limit:
        cmd += ["--data-arg", f"limit={args.limit}"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    return cmd + extra


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    p.add_argument("--epochs", type=int, default=None, help="30 (--quick: 1)")
    p.add_argument("--data", type=Path, default=CIFAR10_ZIP, help=f"the CIFAR-10 JPEG zip (default {CIFAR10_ZIP})")
    p.add_argument("--limit", type=int, default=None, help="train on the first N training images (--quick: 512)")
    p.add_argument("--amp", default="auto", choices=("auto", "bf16", "none"))
    p.add_argument("--compile", default="auto", choices=("auto", "on", "off"))
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads for the run")
    p.add_argument("--quick", action="store_true", help="1 epoch on 512 images: proves it runs (CPU)")
    p.add_argument("--out", type=Path, default=None, help="the run directory (default: a temporary one)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = p.parse_args(argv)
    args.epochs = args.epochs or (1 if args.quick else 30)
    if args.quick and args.limit is None:
        args.limit = 512
    if not args.data.is_file():
        print(
            f"cifar10_time_to_accuracy: error: {args.data} is not a file (the CIFAR-10 JPEG zip; pass --data ZIP)",
            file=sys.stderr,
        )
        return 2

    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    what = torch.cuda.get_device_name(0) if device.startswith("cuda") else f"cpu ({os.cpu_count()} cores)"
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "run"
        cmd = reslab_command(args, device, out, extra)
        print(f"device: {device}: {what}, torch {torch.__version__}", flush=True)
        print("command: " + shlex.join(["reslab", *cmd[3:]]), flush=True)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
        }
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            print(
                f"cifar10_time_to_accuracy: error: reslab train exited with status {proc.returncode}", file=sys.stderr
            )
            return proc.returncode
        rows = list(csv.DictReader(open(out / "metrics.csv")))
        summary = json.loads((out / "summary.json").read_text())
    epochs_time = sum(float(r["time"]) for r in rows)
    result = {
        "device": device,
        "device_name": what,
        "epochs": len(rows),
        "limit": args.limit,
        "wall_s": wall,
        "epochs_s": epochs_time,
        "split": summary["split"],
        "top1": summary["top1"],
        "n": summary["n"],
        "command": shlex.join(["reslab", *cmd[3:]]),
    }
    goal = " (goal on one H100: under 30 s)" if args.epochs == 30 and not args.limit else ""
    print(
        f"resnet20, {len(rows)} epochs{f' on {args.limit} images' if args.limit else ''} on {device}: "
        f"epochs {epochs_time:.1f} s{goal}, whole command {wall:.1f} s; "
        f"{summary['split']} accuracy {summary['top1']:.4f} (n={summary['n']})"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
