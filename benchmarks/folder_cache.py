"""Image-folder loading paths: ResNet-20 training epochs on the 50k CIFAR-10 JPEG archive.

* cache: ``build_data("folder", train.zip, cache=True)``: the JPEGs decoded once into the uint8 array
  cache, then trained through the device-resident loader (batched crop + flip).
* arrays: the same uint8 images handed over as in-memory arrays (the path of ``--data cifar10``), with
  the same augmentation: the reference the cached path should match (within 1.1x).
* per-sample: ``cache=False``: every JPEG read from the zip and decoded by Pillow each epoch in
  DataLoader workers (random-resized crop + flip). Timed on ``--per-sample-images`` images and
  extrapolated to the full epoch (said in the output).

Also measured: the one-time decoding cost (cache build) and a cache hit (load). The cache and arrays
epochs run in lockstep in one process (one training step of each in turn, each path's steps timed with
its batch fetch), so that the load of a shared machine weighs on both alike; ``--batches N`` times the
first N batches and extrapolates to the epoch (said in the output). Each path trains its own copy of
the same initial ResNet-20: SGD with Nesterov momentum, batch 128, fp32.

    python benchmarks/folder_cache.py [--archive ../shared/data/cifar10-jpeg/train.zip] [--batches N]
        [--threads 2] [--workers 2] [--per-sample-images 2560] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "data" / "cifar10-jpeg" / "train.zip"
BATCH = 128


def lockstep_epochs(runs: dict[str, tuple[nn.Module, torch.optim.Optimizer, object]], max_batches: int | None):
    """Train each run's model on its own loader, one step of each in turn, and time each run's steps
    (its batch fetch included). Interleaving step by step makes a load change on a shared machine hit
    every path alike. Returns name -> (seconds, images)."""
    loss_fn = nn.CrossEntropyLoss()
    iters = {name: iter(loader) for name, (_, _, loader) in runs.items()}
    totals = {name: [0.0, 0] for name in runs}
    for model, _, _ in runs.values():
        model.train()
    for model, opt, loader in runs.values():  # warm-up step (allocator, thread pool), untimed
        x, y = next(iter(loader))
        loss_fn(model(x), y).backward()
        opt.zero_grad(set_to_none=True)
    step = 0
    names = list(runs)
    while max_batches is None or step < max_batches:
        done = False
        for name in names if step % 2 == 0 else names[::-1]:  # alternate which path goes first
            model, opt, _ = runs[name]
            start = time.perf_counter()
            batch = next(iters[name], None)
            if batch is None:
                done = True
                break
            x, y = batch
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()
            totals[name][0] += time.perf_counter() - start
            totals[name][1] += y.shape[0]
        if done:
            break
        step += 1
    return {name: (t[0], t[1]) for name, t in totals.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archive", type=Path, default=ARCHIVE)
    p.add_argument("--batches", type=int, default=None, help="time the first N batches of the epoch (default: all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--per-sample-images", type=int, default=2560)
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only (quick check)")
    args = p.parse_args(argv)
    if not args.archive.is_file():
        print(f"archive not found: {args.archive}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    from reslab import create_model
    from reslab.data import DeviceLoader, build_data
    from reslab.data.augment import AugmentSpec
    from reslab.data.sources.files import open_tree
    from reslab.data.sources.folder import resolve_layout

    common = dict(image_size=32, batch_size=BATCH, val_split=0.1, seed=0, workers=args.workers, limit=args.limit)
    with tempfile.TemporaryDirectory() as cache_dir:
        start = time.perf_counter()
        cached = build_data("folder", args.archive, cache=True, cache_dir=cache_dir, **common)
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        cached = build_data("folder", args.archive, cache=True, cache_dir=cache_dir, **common)
        hit_s = time.perf_counter() - start
    n_images = len(resolve_layout(open_tree(args.archive)).splits["train"])
    print(f"archive: {args.archive} ({n_images} images); torch threads {args.threads}, device cpu")
    print(
        f"decoding once into the array cache: {build_s:.1f} s ({n_images / build_s:.0f} images/s); "
        f"cache hit: {hit_s:.1f} s"
    )
    print("notes: " + " | ".join(cached.notes))

    # The same uint8 images as plain in-memory arrays, behind the array loader with the same augmentation.
    src = cached.train
    arrays = DeviceLoader(
        src.images.clone(),
        src.labels.clone(),
        batch_size=BATCH,
        mean=src.mean.tolist(),
        std=src.std.tolist(),
        shuffle=True,
        augment=AugmentSpec(crop_padding=4, flip=True),
        seed=0,
    )

    init = create_model("resnet20", num_classes=10).state_dict()

    def fresh():
        model = create_model("resnet20", num_classes=10)
        model.load_state_dict(init)
        return model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)

    runs = {}
    for name, loader in (("cache", cached.train), ("arrays", arrays)):
        model, opt = fresh()
        loader.set_epoch(0)
        runs[name] = (model, opt, loader)
    timed = lockstep_epochs(runs, args.batches)
    for name, (seconds, n) in timed.items():
        print(f"  {name:<7}: {n} images in {seconds:.1f} s ({n / seconds:.0f} images/s)", flush=True)

    per_sample = build_data("folder", args.archive, cache=False, **{**common, "limit": args.per_sample_images})
    model, opt = fresh()
    next(iter(per_sample.train))  # start the workers outside the timing
    per_sample.train.set_epoch(0)
    ps_s, ps_n = lockstep_epochs({"per-sample": (model, opt, per_sample.train)}, None)["per-sample"]

    n_train = cached.train.num_samples
    (cache_s, cache_n), (arrays_s, arrays_n) = timed["cache"], timed["arrays"]
    epoch = {
        "cache": cache_s / cache_n * n_train,
        "arrays": arrays_s / arrays_n * n_train,
        "per-sample": ps_s / ps_n * n_train,
    }
    partial = "" if cache_n == n_train else f"; timed on {cache_n} images each, extrapolated"
    print(f"one epoch of {n_train} training images (resnet20, batch {BATCH}, fp32, {args.threads} threads{partial}):")
    print(f"  array cache        {epoch['cache']:7.1f} s  ({n_train / epoch['cache']:5.0f} images/s)")
    print(f"  in-memory arrays   {epoch['arrays']:7.1f} s  ({n_train / epoch['arrays']:5.0f} images/s)")
    print(
        f"  per-sample folder  {epoch['per-sample']:7.1f} s  ({n_train / epoch['per-sample']:5.0f} images/s; "
        f"timed on {ps_n} images with {args.workers} workers, extrapolated)"
    )
    ratio = epoch["cache"] / epoch["arrays"]
    print(f"ratio cache / arrays epoch time: {ratio:.3f}x (target <= 1.1x)")
    print(f"ratio per-sample / cache epoch time: {epoch['per-sample'] / epoch['cache']:.2f}x")
    print(f"one-time decoding: {build_s:.1f} s = {build_s / epoch['cache']:.2f} cached epochs")
    return 0 if ratio <= 1.1 else 1


if __name__ == "__main__":
    sys.exit(main())
