"""Transfer learning on real data: does a backbone pretrained on some CIFAR-10 classes help to learn the
others from 50 images per class?

1. Source task: resnet20 trained on 5 classes of the CIFAR-10 training set (airplane, automobile, bird,
   cat, deer: 25,000 JPEGs of ``../shared/data/cifar10-jpeg/train.zip``, 10% held out for validation),
   with reslab's default recipe.
2. Target task: the other 5 classes (dog, frog, horse, ship, truck) from ``--shots`` images per class,
   scored on ``--test-per-class`` held-out images per class (disjoint from the shots). Three arms, the
   same epochs and batch size, over ``--seeds`` draws of the shots:
   - frozen: the pretrained backbone frozen, a new head trained (``--freeze backbone``);
   - finetune: the pretrained network, every layer trained (``--freeze none``);
   - scratch: the same network from random initialisation, reslab's default recipe.
   The arms' optimiser settings are whatever ``reslab train`` uses by default for them (the fine-tuning
   defaults when ``--pretrained`` is given; ``--arm-args`` adds options to an arm, for measuring others).

Every run is an ordinary ``reslab.train`` run directory under ``--work`` (the pretraining is reused when
it finished before). ``--tiny`` runs the same pipeline on ``cifar10-mini`` in a few minutes (CI).

    python benchmarks/transfer.py [--archive ZIP] [--work DIR] [--pretrain-epochs 15] [--shots 50]
        [--test-per-class 500] [--epochs 20] [--seeds 3] [--threads 2] [--tiny]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "data" / "cifar10-jpeg" / "train.zip"
MINI = ROOT.parent / "shared" / "data" / "cifar10-mini"
SOURCE = ("airplane", "automobile", "bird", "cat", "deer")
TARGET = ("dog", "frog", "horse", "ship", "truck")
ARMS = ("frozen", "finetune", "scratch")


def _write_tree(root: Path, files: dict[str, list[tuple[str, bytes]]]) -> None:
    """``root/<class>/<name>`` for each (name, bytes); written to a temporary folder, then renamed, so an
    interrupted preparation never leaves a half tree behind."""
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for cls, items in files.items():
        (tmp / cls).mkdir(parents=True)
        for name, data in items:
            (tmp / cls / name).write_bytes(data)
    tmp.rename(root)


def _archive_images(archive: Path) -> dict[str, list[tuple[str, bytes]]]:
    with zipfile.ZipFile(archive) as z:
        out: dict[str, list[tuple[str, bytes]]] = {}
        for name in sorted(z.namelist()):
            if name.endswith(".jpg"):
                cls, file = name.split("/", 1)
                out.setdefault(cls, []).append((file, z.read(name)))
        return out


def _mini_images() -> dict[str, list[tuple[str, bytes]]]:
    """cifar10-mini's training and test images as PNG bytes per class (train first, then test)."""
    import pickle

    from PIL import Image

    base = MINI / "cifar-10-batches-py" if (MINI / "cifar-10-batches-py").is_dir() else MINI
    names = pickle.loads((base / "batches.meta").read_bytes(), encoding="latin1")["label_names"]
    out: dict[str, list[tuple[str, bytes]]] = {n: [] for n in names}
    files = sorted(p for p in base.iterdir() if p.name.startswith("data_batch")) + [base / "test_batch"]
    for f in files:
        batch = pickle.loads(f.read_bytes(), encoding="latin1")
        images = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        for i, (img, label) in enumerate(zip(images, batch["labels"])):
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            out[names[label]].append((f"{f.name}-{i:05d}.png", buf.getvalue()))
    return out


def prepare(work: Path, images: dict[str, list[tuple[str, bytes]]], shots: int, test_per_class: int, seeds: int):
    """The source tree and, per seed, a target tree (``train``: the shots, ``val``: the held-out images)."""
    source = work / "source"
    if not source.is_dir():
        _write_tree(source, {c: images[c] for c in SOURCE})
    roots = []
    for seed in range(seeds):
        root = work / f"target-{shots}shot-seed{seed}"
        if not root.is_dir():
            rng = np.random.default_rng(seed)
            train, val = {}, {}
            for c in TARGET:
                items = images[c]
                val[c] = items[:test_per_class]  # the same held-out images for every seed
                rest = items[test_per_class:]
                pick = rng.choice(len(rest), size=shots, replace=False)
                train[c] = [rest[i] for i in sorted(pick)]
            tmp = root.with_name(root.name + ".parts")
            shutil.rmtree(tmp, ignore_errors=True)
            _write_tree(tmp / "train", train)
            _write_tree(tmp / "val", val)
            tmp.rename(root)
        roots.append(root)
    return source, roots


def run(**kw):
    import reslab

    t0 = time.perf_counter()
    result = reslab.train(progress="none", overwrite=True, **kw)
    return result, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archive", type=Path, default=ARCHIVE)
    p.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".transfer")
    p.add_argument("--pretrain-epochs", type=int, default=15)
    p.add_argument("--shots", type=int, default=50)
    p.add_argument("--test-per-class", type=int, default=500)
    p.add_argument("--epochs", type=int, default=20, help="epochs of each target-task run")
    p.add_argument("--batch-size", type=int, default=50, help="batch size of the target-task runs")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--arm-args", default="{}", help='JSON: {"frozen": {"lr": 1e-3}, ...} added to the arms')
    p.add_argument("--label", default="", help="added to the target runs' directory names (to compare settings)")
    p.add_argument("--tiny", action="store_true", help="cifar10-mini, few epochs: a smoke run for CI")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    if args.tiny:
        if not MINI.is_dir():
            print(f"cifar10-mini not found at {MINI}", file=sys.stderr)
            return 1
        images = _mini_images()
        args.work = args.work.with_name(args.work.name + "-tiny")
        args.pretrain_epochs, args.shots, args.test_per_class = min(args.pretrain_epochs, 8), min(args.shots, 20), 100
        args.epochs, args.seeds = min(args.epochs, 10), min(args.seeds, 1)
    else:
        if not args.archive.is_file():
            print(f"archive not found: {args.archive}", file=sys.stderr)
            return 1
        images = _archive_images(args.archive)
    args.work.mkdir(parents=True, exist_ok=True)
    source, targets = prepare(args.work, images, args.shots, args.test_per_class, args.seeds)
    common = {"model": "resnet20", "data": "folder", "threads": args.threads, "device": "cpu"}

    pre_dir = args.work / f"pretrain-{args.pretrain_epochs}ep"
    ckpt = pre_dir / "best.pt"
    if (pre_dir / "summary.json").is_file():
        pre = json.loads((pre_dir / "summary.json").read_text())
        print(f"pretraining: reused {pre_dir}")
    else:
        # tiny: ~2,000 images, 8 short epochs: the default recipe's peak lr 0.2 diverges in so few steps, and an
        # EMA of the weights at 0.999 would not leave its initialisation
        tiny = {"ema": False, "lr": 0.05, "batch_size": 64} if args.tiny else {}
        result, secs = run(
            **common, data_dir=str(source), epochs=args.pretrain_epochs, val_split=0.1, out=str(pre_dir), **tiny
        )
        pre = json.loads((pre_dir / "summary.json").read_text())
        print(f"pretraining: {args.pretrain_epochs} epochs on {source} in {secs / 60:.1f} min")
    print(f"pretraining: source-task {pre['split']} top-1 {pre['top1']:.4f} (n={pre['n']})")

    extra = json.loads(args.arm_args)
    arm_cfg = {
        "frozen": {"pretrained": str(ckpt), "freeze": "backbone"},
        "finetune": {"pretrained": str(ckpt), "freeze": "none"},
        "scratch": {},
    }
    scores: dict[str, list[float]] = {}
    for arm in [a for a in args.arms.split(",") if a]:
        for seed, root in enumerate(targets):
            out = args.work / f"{arm}{args.label}-{args.shots}shot-seed{seed}"
            kw = {
                **common,
                "data_dir": str(root),
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "seed": seed,
                "out": str(out),
                **arm_cfg[arm],
                **extra.get(arm, {}),
            }
            result, secs = run(**kw)
            top1 = float(result.final.top1)
            scores.setdefault(arm, []).append(top1)
            print(f"{arm:9s} seed {seed}: held-out top-1 {top1:.4f} ({secs:.0f} s)", flush=True)

    n_test = args.test_per_class * len(TARGET)
    print(f"\n{args.shots} images per class, {n_test} held-out images, {args.epochs} epochs, {args.seeds} seed(s)")
    print(f"{'arm':10s} {'top-1 mean':>10s} {'std':>7s}  per seed")
    for arm, values in scores.items():
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{arm:10s} {statistics.mean(values):10.4f} {std:7.4f}  {' '.join(f'{v:.4f}' for v in values)}")
    if "scratch" in scores:
        for arm in ("frozen", "finetune"):
            if arm in scores:
                ratio = statistics.mean(scores[arm]) / statistics.mean(scores["scratch"])
                print(f"{arm} / scratch: {ratio:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "scores": scores}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
