"""Where a reslab training epoch's time goes: its phases and the operators inside them.

Runs ``reslab.train`` (resnet20 by default) on cifar10-mini from ../shared/data (else 4,096 synthetic
32x32 images) for ``--epochs`` epochs and profiles the last one with ``torch.profiler``. The trainer's
phases are marked from outside (its methods wrapped in ``record_function`` for this script only):

* data: taking the next batch from the loader (on-device crop + flip);
* forward+backward: the network, the loss and autograd;
* optimizer: the SGD step, the schedule and the EMA update;
* evaluation: the end-of-epoch passes over the held-out split (the model, and the EMA where it is on);
* checkpoint: writing ``last.pt`` / ``best.pt`` and the epoch's row;
* other: the rest of the epoch's wall time (the loop's own bookkeeping).

It prints one Markdown table of the phases (wall seconds and share of the epoch) and one of the
operator families by self CPU time (convolution forward and backward, BatchNorm, elementwise, copies,
the optimiser's kernels), so two runs -- say ``--amp none --channels-last off`` (reslab's fp32 before
channels-last was chosen for it) and the default -- can be set side by side.

    python benchmarks/profile_train.py [--model resnet20] [--epochs 2] [--amp auto|none|bf16]
        [--channels-last auto|on|off] [--ema on|off] [--threads N] [--limit N]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

ROOT = Path(__file__).resolve().parents[1]
CIFAR10_MINI = ROOT.parent / "shared" / "data" / "cifar10-mini"
PHASES = ("data", "forward+backward", "optimizer", "evaluation", "checkpoint")

#: operator families: the first whose any substring is in the operator's name
FAMILIES = (
    ("convolution backward", ("convolution_backward", "conv_backward", "mkldnn_convolution_backward")),
    ("convolution forward", ("mkldnn_convolution", "conv2d", "convolution", "_convolution")),
    ("BatchNorm backward", ("batch_norm_backward", "native_batch_norm_backward")),
    ("BatchNorm forward", ("batch_norm",)),
    ("ReLU / add (forward and backward)", ("relu", "threshold_backward", "aten::add", "clamp")),
    ("copies and layout", ("copy_", "contiguous", "to_dense", "clone", "_to_copy", "empty_like")),
    ("optimiser kernels", ("_foreach", "sgd", "lerp", "addcmul", "mul_", "add_")),
    ("pooling / linear / loss", ("pool", "addmm", "mm", "linear", "cross_entropy", "log_softmax", "nll_loss")),
)


def family(name: str) -> str:
    low = name.lower()
    for label, keys in FAMILIES:
        if any(k in low for k in keys):
            return label
    return "other operators"


@contextlib.contextmanager
def marked_phases(totals: dict[str, float]):
    """Wrap the trainer's phases in ``record_function`` ranges and wall-clock them (into ``totals``)."""
    from reslab.training import trainer as T

    originals = {}

    def wrap(owner, name: str, label: str):
        original = getattr(owner, name)
        originals[(owner, name)] = original

        def timed(*args, **kwargs):
            start = time.perf_counter()
            with record_function(f"reslab::{label}"):
                try:
                    return original(*args, **kwargs)
                finally:
                    totals[label] += time.perf_counter() - start

        setattr(owner, name, timed)

    wrap(T.Trainer, "_forward_backward", "forward+backward")
    wrap(T.Trainer, "_optimizer_step", "optimizer")
    wrap(T.Trainer, "_evaluate", "evaluation")
    wrap(T.Trainer, "_save_last", "checkpoint")
    wrap(T, "_copy_atomic", "checkpoint")
    original_train_epoch = T.Trainer._train_epoch

    def train_epoch(self, *args, **kwargs):  # the loader's batches: time spent in next()
        loader = self.bundle.train
        real_iter = type(loader).__iter__

        def timed_batches():
            it = real_iter(loader)
            while True:
                start = time.perf_counter()
                with record_function("reslab::data"):
                    try:
                        batch = next(it)
                    except StopIteration:
                        return
                totals["data"] += time.perf_counter() - start
                yield batch

        self.bundle.train = _Iterating(loader, timed_batches)
        try:
            return original_train_epoch(self, *args, **kwargs)
        finally:
            self.bundle.train = loader

    T.Trainer._train_epoch = train_epoch
    originals[(T.Trainer, "_train_epoch")] = original_train_epoch
    try:
        yield
    finally:
        for (owner, name), original in originals.items():
            setattr(owner, name, original)


class _Iterating:
    """A loader whose iteration goes through ``batches`` (everything else is the loader's)."""

    def __init__(self, loader, batches):
        self._loader, self._batches = loader, batches

    def __iter__(self):
        return self._batches()

    def __len__(self):
        return len(self._loader)

    def __getattr__(self, name):
        return getattr(self._loader, name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--epochs", type=int, default=2, help="the last one is profiled (the first warms up)")
    p.add_argument("--amp", default="auto", help="auto | none | bf16")
    p.add_argument("--channels-last", default="auto", choices=["auto", "on", "off"])
    p.add_argument("--ema", default="on", choices=["on", "off"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--limit", type=int, default=None, help="train on this many images (default: all)")
    p.add_argument("--top", type=int, default=12, help="also list this many operators by self CPU time")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from reslab.data import build_data
    from reslab.training import train

    if (CIFAR10_MINI / "cifar-10-batches-py").is_dir():
        source, what = {"name": "cifar10", "data_dir": str(CIFAR10_MINI)}, "cifar10-mini"
    else:
        source, what = {"name": "synthetic", "num_samples": 4096}, "4,096 synthetic images"
    if args.limit:
        source["limit" if source["name"] == "cifar10" else "num_samples"] = args.limit
    bundle = build_data(**source, batch_size=128)
    amp = None if args.amp == "none" else args.amp
    cl = {"auto": "auto", "on": True, "off": False}[args.channels_last]
    totals: dict[str, float] = defaultdict(float)
    epoch_wall: list[float] = []
    chosen: list[str] = []
    profiled: dict[str, float] = defaultdict(float)
    prof = profile(activities=[ProfilerActivity.CPU])

    from reslab.training import trainer as T

    with tempfile.TemporaryDirectory() as tmp, marked_phases(totals):
        marked_train_epoch, original_end = T.Trainer._train_epoch, T.Trainer._end_epoch

        def train_epoch(self, *a, **k):  # profile and time the last epoch only
            if self.epoch + 1 == args.epochs:
                chosen.append(f"amp {self.config.amp or 'fp32'}, channels-last {self.config.channels_last}")
                totals.clear()
                prof.start()
                epoch_wall.append(time.perf_counter())
            return marked_train_epoch(self, *a, **k)

        def end_epoch(self, *a, **k):
            try:
                return original_end(self, *a, **k)
            finally:
                if self.epoch == args.epochs and epoch_wall:
                    epoch_wall[0] = time.perf_counter() - epoch_wall[0]
                    prof.stop()
                    profiled.update(totals)  # the final test evaluation after the epoch is not counted

        T.Trainer._train_epoch, T.Trainer._end_epoch = train_epoch, end_epoch
        try:
            train(
                model=args.model,
                bundle=bundle,
                epochs=args.epochs,
                batch_size=128,
                lr=0.1,
                ema=args.ema == "on",
                amp=amp,
                channels_last=cl,
                out=str(Path(tmp) / "run"),
                progress="none",
            )
        finally:
            T.Trainer._end_epoch = original_end
    wall = epoch_wall[0]
    n_train = bundle.train.num_samples
    n_eval = getattr(bundle, "test", None) or getattr(bundle, "val", None)
    print(
        f"{args.model} on {what} ({n_train:,} training images, {n_eval.num_samples if n_eval else 0:,} evaluated "
        f"{'twice (model and EMA)' if args.ema == 'on' else 'once'}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {chosen[0]}; epoch {args.epochs} profiled: {wall:.2f} s wall"
    )
    print()
    print("| phase | seconds | share |")
    print("|---|---:|---:|")
    known = 0.0
    for phase in PHASES:
        known += profiled[phase]
        print(f"| {phase} | {profiled[phase]:.2f} | {profiled[phase] / wall:.0%} |")
    print(f"| other | {max(wall - known, 0.0):.2f} | {max(wall - known, 0.0) / wall:.0%} |")
    print()
    by_family: dict[str, float] = defaultdict(float)
    rows = [e for e in prof.key_averages() if not e.key.startswith("reslab::")]
    for e in rows:
        by_family[family(e.key)] += e.self_cpu_time_total / 1e6
    total = sum(by_family.values())
    print("| operator family (self CPU time over all threads' ops) | seconds | share |")
    print("|---|---:|---:|")
    for label, secs in sorted(by_family.items(), key=lambda kv: -kv[1]):
        print(f"| {label} | {secs:.2f} | {secs / total:.0%} |")
    print()
    print(f"top {args.top} operators by self CPU time:")
    for e in sorted(rows, key=lambda e: -e.self_cpu_time_total)[: args.top]:
        print(f"  {e.key:<45} {e.self_cpu_time_total / 1e6:7.2f} s  {e.count:6d} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
