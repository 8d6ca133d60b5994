"""Accuracy: reslab's trainer against a careful hand-written PyTorch loop, ResNet-20 on cifar10-mini.

Both train the same network (reslab's registered ``resnet20``, the same initialisation seed) on the same
images (4,065 training / 1,020 validation images of ../shared/data/cifar10-mini) for the same number of
epochs with the same recipe: SGD with Nesterov momentum 0.9, weight decay 5e-4, batch 128, a one-cycle
learning rate peaking at 0.2, label smoothing 0.1, random 4-px-padded crops and horizontal flips.

* reslab: ``reslab.train(config="resnet_cifar10_fast", ...)`` -- the shipped recipe, reslab's defaults (which
  also exempts BN parameters and biases from weight decay and keeps an EMA of the weights; the accuracy
  reported is the trained model's, as ``reslab train`` prints it).
* reference: plain PyTorch written here -- its own CIFAR reader (the python pickles), per-batch crop
  and flip, ``torch.optim.SGD`` + ``torch.optim.lr_scheduler.OneCycleLR`` (its defaults: cosine phases,
  momentum cycled 0.85-0.95), ``nn.CrossEntropyLoss(label_smoothing=0.1)``.

Prints both validation accuracies and their ratio (reslab / reference), measured in one run.

    python benchmarks/accuracy_cifar10_mini.py [--epochs 30] [--data-dir PATH] [--seed 0]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10-mini"
RECIPE = dict(batch_size=128, lr=0.2, momentum=0.9, weight_decay=5e-4, label_smoothing=0.1, pct=0.25)


# -- the reference: plain PyTorch ----------------------------------------------------------------------
def read_cifar(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels) from the CIFAR-10 python pickles, NCHW uint8."""

    def load(name: str) -> tuple[np.ndarray, np.ndarray]:
        with open(folder / name, "rb") as f:
            d = pickle.load(f, encoding="bytes")  # the official format is a pickle (trusted local data)
        return np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(d[b"labels"])

    parts = [load(f"data_batch_{i}") for i in range(1, 6) if (folder / f"data_batch_{i}").exists()]
    x_test, y_test = load("test_batch")
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), x_test, y_test


def reference_run(folder: Path, epochs: int, seed: int, threads: int | None) -> float:
    """Train ResNet-20 with a hand-written loop; returns the final validation top-1."""
    from reslab import create_model  # the same network definition as reslab's run

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    x_train, y_train, x_val, y_val = read_cifar(folder)
    mean = x_train.reshape(-1, 3, 32 * 32).mean((0, 2)) / 255.0
    std = (x_train.reshape(-1, 3, 32 * 32) / 255.0).std((0, 2))
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def normalise(batch: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(batch).float() / 255.0 - mean_t) / std_t

    model = create_model("resnet20", num_classes=10)
    opt = torch.optim.SGD(
        model.parameters(),
        lr=RECIPE["lr"],
        momentum=RECIPE["momentum"],
        nesterov=True,
        weight_decay=RECIPE["weight_decay"],
    )
    bs = RECIPE["batch_size"]
    steps = -(-len(x_train) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=RECIPE["lr"], total_steps=epochs * steps, pct_start=RECIPE["pct"]
    )
    criterion = nn.CrossEntropyLoss(label_smoothing=RECIPE["label_smoothing"])
    padded = np.pad(x_train, ((0, 0), (0, 0), (4, 4), (4, 4)))
    rng = np.random.default_rng(seed)
    for _epoch in range(epochs):
        model.train()
        order = rng.permutation(len(x_train))
        for i in range(steps):
            idx = order[i * bs : (i + 1) * bs]
            dx, dy = rng.integers(0, 9, size=(2, len(idx)))
            flip = rng.random(len(idx)) < 0.5
            batch = np.empty((len(idx), 3, 32, 32), dtype=np.uint8)
            for j, k in enumerate(idx):  # random crop of the zero-padded image, then a random flip
                crop = padded[k, :, dy[j] : dy[j] + 32, dx[j] : dx[j] + 32]
                batch[j] = crop[:, :, ::-1] if flip[j] else crop
            loss = criterion(model(normalise(batch)), torch.from_numpy(y_train[idx]).long())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x_val), 500):
            logits = model(normalise(x_val[i : i + 500]))
            correct += int((logits.argmax(1) == torch.from_numpy(y_val[i : i + 500])).sum())
    return correct / len(x_val)


# -- reslab --------------------------------------------------------------------------------------------
def reslab_run(folder: Path, epochs: int, seed: int, threads: int | None, out: Path) -> float:
    from reslab.training import train

    result = train(
        "resnet_cifar10_fast",
        data_dir=str(folder),
        epochs=epochs,
        seed=seed,
        device="cpu",
        threads=threads,
        out=str(out),
        overwrite=True,
        progress="none",
    )
    return result.final.top1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", type=Path, default=None, help="reslab's run directory (default: a temporary one)")
    args = p.parse_args()
    folder = args.data_dir / "cifar-10-batches-py"
    if not folder.is_dir():
        print(f"no CIFAR-10 data at {folder}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "run"
        t = time.perf_counter()
        ours = reslab_run(args.data_dir, args.epochs, args.seed, args.threads, out)
        t_ours = time.perf_counter() - t
        print(f"reslab    : val top-1 {ours:.4f}  ({t_ours / 60:.1f} min)", flush=True)
        t = time.perf_counter()
        ref = reference_run(folder, args.epochs, args.seed, args.threads)
        t_ref = time.perf_counter() - t
        print(f"reference : val top-1 {ref:.4f}  ({t_ref / 60:.1f} min)", flush=True)
    print(
        f"resnet20, cifar10-mini, {args.epochs} epochs, seed {args.seed}: reslab {ours:.4f} / reference {ref:.4f} "
        f"= {ours / ref:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
