"""Wall time of ``reslab list`` (a fresh process, as a user runs it) against ``import torch`` alone.

``reslab list`` reads the generated model catalogue and never imports torch; the reference is the
cost it avoids. Each command runs ``--repeats`` times in a fresh interpreter; the medians are printed
with their ratio.

    .venv/bin/python benchmarks/list_speed.py --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def wall_time(argv: list[str], repeats: int) -> float:
    """Median wall time (s) of running ``argv`` to completion ``repeats`` times."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    listing = wall_time([sys.executable, "-m", "reslab", "list"], args.repeats)
    torch_import = wall_time([sys.executable, "-c", "import torch"], args.repeats)
    print(f"reslab list: {listing:.3f} s (median of {args.repeats})")
    print(f"import torch alone: {torch_import:.3f} s (median of {args.repeats})")
    print(f"ratio list / import torch: {listing / torch_import:.3f}")


if __name__ == "__main__":
    main()
