"""Peak CPU memory of one DenseNet training step, with and without ``memory_efficient=True``.

Each setting runs in a fresh subprocess (so neither inherits the other's allocator state or peak);
the child reads its resident set before training (VmRSS) and its peak after ``--steps`` identical
steps (getrusage ru_maxrss), and reports both with the last step's time. The parent prints the two
measurements and their ratios.

    .venv/bin/python benchmarks/densenet_memory.py                       # densenet121, batch 8, 224x224
    .venv/bin/python benchmarks/densenet_memory.py --model densenet_bc100 --batch 64 --size 32
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _rss_now_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (this benchmark needs Linux)")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(args: argparse.Namespace) -> None:
    import torch

    import reslab

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = reslab.create_model(args.model, memory_efficient=args.memory_efficient).train()
    x = torch.randn(args.batch, 3, args.size, args.size)
    target = torch.randint(0, model.num_classes, (args.batch,))
    before, peak_before = _rss_now_mib(), _peak_rss_mib()
    for _ in range(args.steps):  # identical steps: the first also warms up oneDNN; the last is timed
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), target)
        loss.backward()
        seconds = time.perf_counter() - start
    peak = _peak_rss_mib()
    result = {
        "memory_efficient": args.memory_efficient,
        "rss_before_step_mib": round(before, 1),
        "peak_before_step_mib": round(peak_before, 1),
        "peak_mib": round(peak, 1),
        "step_increase_mib": round(peak - before, 1),
        "seconds": round(seconds, 2),
        "loss": float(loss),
    }
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="densenet121")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--steps", type=int, default=2, help="training steps (the last one is timed)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory-efficient", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    results = {}
    for efficient in (False, True):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--model",
            args.model,
            "--batch",
            str(args.batch),
            "--size",
            str(args.size),
            "--threads",
            str(args.threads),
            "--steps",
            str(args.steps),
        ]
        if efficient:
            cmd.append("--memory-efficient")
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[efficient] = json.loads(out.strip().splitlines()[-1])

    print(f"{args.model}, batch {args.batch}, {args.size}x{args.size}, {args.steps} training steps on CPU")
    head = ("memory_efficient", "RSS before", "peak RSS", "step increase", "time")
    print(f"{head[0]:>16}  {head[1]:>11}  {head[2]:>9}  {head[3]:>13}  {head[4]:>7}  loss")
    for efficient, r in results.items():
        print(
            f"{efficient!s:>16}  {r['rss_before_step_mib']:>8.1f} MiB  {r['peak_mib']:>5.0f} MiB  "
            f"{r['step_increase_mib']:>9.1f} MiB  {r['seconds']:>6.2f}s  {r['loss']:.6f}"
        )
    plain, efficient = results[False], results[True]
    for r in (plain, efficient):
        if r["peak_before_step_mib"] > r["peak_mib"] - 1:
            print("warning: the step did not raise the peak above the start-up peak; use a larger --batch")
    print(f"peak RSS ratio (efficient / plain):      {efficient['peak_mib'] / plain['peak_mib']:.3f}")
    increase = efficient["step_increase_mib"] / plain["step_increase_mib"]
    print(f"step increase ratio (efficient / plain): {increase:.3f}")
    print(f"time ratio, last step (efficient/plain): {efficient['seconds'] / plain['seconds']:.2f}")


if __name__ == "__main__":
    main()
