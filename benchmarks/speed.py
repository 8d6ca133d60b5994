"""Training speed: reslab's trainer against the usual tutorial pipeline, ResNet-20 on CIFAR-shaped data.

* tutorial: a per-sample ``Dataset`` (``PIL.Image.fromarray``, random crop with 4-px zero padding, random
  horizontal flip, ToTensor-like conversion, normalisation -- each sample on its own in Python) behind a
  ``torch.utils.data.DataLoader`` (batch 128, shuffled; ``--workers`` processes, the tutorials' 2 by
  default), a plain fp32 NCHW training step (SGD with Nesterov momentum).
* reslab: ``reslab.train`` with the same model, batch size and optimiser: the data set held on the device
  as uint8 with batched augmentation, with its defaults (``--amp auto --channels-last auto``: what the
  machine runs fastest, probed; see reslab.training.precision). ``--reslab-fp32`` times two fp32 arms as
  well: ``--amp none`` (the layout still chosen by the probe: what a CPU without bf16 instructions gets) and
  ``--amp none --no-channels-last`` (plain fp32 NCHW, the layout of the tutorial loop).

Both are timed over whole training epochs after a warm-up epoch, alternately (``--repeats`` times) in
one process, and the median images/s of each is compared. On CUDA the tutorial epochs are timed with
CUDA events; reslab's trainer times its epochs with a host clock and a device synchronisation at the
end of each epoch (the same interval). Data: cifar10-mini from ../shared/data when present (4,065
images), else 4,096 synthetic 32x32 images -- the same uint8 images for both.

    python benchmarks/speed.py [--device auto|cpu|cuda] [--repeats 3] [--workers 2] [--reslab-fp32]

Set ``RESLAB_CPU_FLAGS=""`` to time the default as it runs on a CPU without native bf16.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
CIFAR10_MINI = ROOT.parent / "shared" / "data" / "cifar10-mini"
BATCH = 128


class TutorialCifar(torch.utils.data.Dataset):
    """The usual per-sample dataset: one PIL image at a time through per-sample transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean, std):
        self.images = images.transpose(0, 2, 3, 1)  # NHWC, as torchvision's CIFAR10 keeps it
        self.labels = labels
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        img = np.asarray(Image.fromarray(self.images[i]))
        img = np.pad(img, ((4, 4), (4, 4), (0, 0)))  # RandomCrop(32, padding=4)
        y0, x0 = np.random.randint(0, 9, size=2)
        img = img[y0 : y0 + 32, x0 : x0 + 32]
        if np.random.rand() < 0.5:  # RandomHorizontalFlip
            img = img[:, ::-1]
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255)  # ToTensor
        return (x - self.mean) / self.std, int(self.labels[i])  # Normalize


def data_source() -> tuple[dict, str]:
    """build_data arguments for the benchmark's images, and their description."""
    if (CIFAR10_MINI / "cifar-10-batches-py").is_dir():
        return {"name": "cifar10", "data_dir": str(CIFAR10_MINI)}, "cifar10-mini (4,065 images)"
    return {"name": "synthetic", "num_samples": 4096}, "4,096 synthetic 32x32 images"


def build(source: dict, device: torch.device):
    from reslab.data import build_data

    return build_data(**source, batch_size=BATCH, device=device)


def tutorial_epoch(model: nn.Module, opt, loader, device: torch.device) -> float:
    """One training epoch of the tutorial loop; returns images/s."""
    model.train()
    n = 0
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
    t = time.perf_counter()
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += len(y)
    if device.type == "cuda":
        end.record()
        torch.cuda.synchronize()
        return n / (start.elapsed_time(end) / 1000)
    return n / (time.perf_counter() - t)


#: reslab's arms: name -> train() options
ARMS = {
    "default": {},
    "fp32": {"amp": None},
    "fp32 NCHW": {"amp": None, "channels_last": False},
}


def reslab_epochs(source: dict, device: torch.device, options: dict, out: Path) -> tuple[float, str]:
    """reslab's trainer, 2 epochs (the first warms up); returns the second epoch's images/s and the
    precision the run trained with."""
    import yaml

    from reslab.training import train

    bundle = build(source, device)  # the trainer converts each batch to the layout it chose
    result = train(
        model="resnet20",
        bundle=bundle,
        epochs=2,
        batch_size=BATCH,
        lr=0.1,
        nesterov=True,
        weight_decay=5e-4,
        schedule="constant",
        device=str(device),
        out=str(out),
        overwrite=True,
        progress="none",
        **options,
    )
    config = yaml.safe_load((Path(out) / "config.yaml").read_text())
    chosen = f"{config['amp'] or 'fp32'}{', channels-last' if config['channels_last'] else ', NCHW'}"
    return result.history[-1]["images_per_s"], chosen


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="tutorial DataLoader workers (tutorials use 2)")
    p.add_argument("--reslab-fp32", action="store_true", help="also time reslab's trainer in fp32 NCHW")
    args = p.parse_args()
    from reslab import create_model
    from reslab.training.runtime import resolve_device

    device = resolve_device(args.device)
    source, what = data_source()
    bundle = build(source, torch.device("cpu"))  # the same uint8 images for the tutorial
    x, y = bundle.train.images.numpy(), bundle.train.labels.numpy()
    mean, std = bundle.mean, bundle.std
    loader = torch.utils.data.DataLoader(
        TutorialCifar(x, y, mean, std),
        batch_size=BATCH,
        shuffle=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=args.workers > 0,
    )
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    tutorial_epoch(model, opt, loader, device)  # warm-up
    arms = [a for a in ARMS if args.reslab_fp32 or a == "default"]
    tutorial: list[float] = []
    ours: dict[str, list[float]] = {a: [] for a in arms}
    chosen: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            tutorial.append(tutorial_epoch(model, opt, loader, device))
            for arm in arms:
                speed, chosen[arm] = reslab_epochs(source, device, ARMS[arm], Path(tmp) / "run")
                ours[arm].append(speed)
            print(
                f"repeat {r + 1}: tutorial {tutorial[-1]:,.0f} img/s, "
                + ", ".join(f"reslab {a} {ours[a][-1]:,.0f} img/s" for a in arms),
                flush=True,
            )
    t = statistics.median(tutorial)
    print(
        f"resnet20 on {what}, batch {BATCH}, {device.type}, torch threads {torch.get_num_threads()}, "
        f"tutorial workers {args.workers}; median of {args.repeats}"
    )
    print(f"tutorial pipeline (fp32, NCHW): {t:,.0f} img/s")
    for arm in arms:
        o = statistics.median(ours[arm])
        print(f"reslab {arm} ({chosen[arm]}): {o:,.0f} img/s = {o / t:.2f}x the tutorial pipeline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
