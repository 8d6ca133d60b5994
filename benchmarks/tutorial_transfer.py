"""Tutorial 001's transfer run, two ways, in one run: reslab (``--config transfer_cifar10``: the frozen backbone's
features computed once, CIFAR JPEGs cached at 32 px and resized to 224 on the device) against the tutorial's loop
(a per-sample PIL pipeline resized to 224 every epoch, the frozen network's full forward pass every batch, Adam
on the new head). Both train the same network on the same number of images for the same epochs, batch 32; the
total seconds and the training images per second of each are printed, and their ratio.

    python benchmarks/tutorial_transfer.py [--data ../shared/data/cifar10-jpeg/train.zip] [--per-class 30]
        [--epochs 5] [--model resnet50] [--image-size 224] [--pretrained FILE] [--threads N] [--device cpu|cuda]
        [--json OUT.json]

The images: ``--per-class`` of each class of the zip (the first ones of each class folder), copied into a small
zip; reslab holds out 10% of them for its per-epoch evaluation (the tutorial evaluates nothing during training), so
the tutorial's loop trains on as many images as reslab's training split. ``--pretrained`` (a torchvision-layout
ResNet-50 file, e.g. ``resnet50-0676ba61.pth``) loads real weights into both; without it both start from the same
random initialisation -- the timing does not depend on the weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

DEFAULT_ZIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg" / "train.zip"


def small_zip(source: Path, per_class: int, out: Path) -> tuple[Path, list[tuple[str, int]]]:
    """The first ``per_class`` images of every class folder of ``source``, as a zip; with (member, label)."""
    members: list[tuple[str, int]] = []
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(out, "w") as dst:
        by_class: dict[str, list[str]] = defaultdict(list)
        for name in sorted(src.namelist()):
            if name.lower().endswith((".jpg", ".jpeg", ".png")) and "/" in name:
                by_class[name.split("/")[0]].append(name)
        for label, cls in enumerate(sorted(by_class)):
            for name in by_class[cls][:per_class]:
                dst.writestr(name, src.read(name))
                members.append((name, label))
    return out, members


def network(model: str, pretrained: str | None, num_classes: int, device: torch.device):
    """The tutorial's network: every parameter frozen, a new classifier (``resnet.fc = Linear(2048, 10)``)."""
    from reslab import create_model

    torch.manual_seed(0)
    net = create_model(model, pretrained=pretrained) if pretrained else create_model(model)
    for p in net.parameters():
        p.requires_grad = False
    net.reset_classifier(num_classes)
    return net.to(device)


class TutorialDataset(torch.utils.data.Dataset):
    """What the tutorial's ``transforms.Compose([Scale([224, 224]), ToTensor()])`` does, per image, every epoch."""

    def __init__(self, zip_path: Path, members: list[tuple[str, int]], size: int):
        self.zip_path, self.members, self.size, self._zip = zip_path, members, size, None

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, i: int):
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.zip_path)
        name, label = self.members[i]
        with self._zip.open(name) as f:
            img = Image.open(f).convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR)
        x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255)
        return x, label


def tutorial_loop(zip_path, members, args, device) -> dict:
    """The tutorial's training loop: the model in train mode, a forward pass through everything each batch,
    the loss's backward into the head, Adam at 1e-4 on the head; running figures every 2 batches (not printed)."""
    net = network(args.model, args.pretrained, 10, device)
    optimizer = torch.optim.Adam(net.get_classifier().parameters(), lr=1e-4)
    loader = torch.utils.data.DataLoader(
        TutorialDataset(zip_path, members, args.image_size), batch_size=32, shuffle=True, num_workers=0
    )
    net.train()
    seen, start = 0, time.perf_counter()
    for _ in range(args.epochs):
        running_loss, running_correct = 0.0, 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            out = net(x)
            pred = out.detach().argmax(1)
            optimizer.zero_grad()
            loss = F.cross_entropy(out, y)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            running_correct += int((pred == y).sum())
            seen += len(y)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "images": seen, "images_per_s": seen / seconds}


def reslab_run(zip_path, args, work: Path) -> dict:
    """``reslab.train("transfer_cifar10", ...)`` on the subset: the whole run, feature pass and evaluations included."""
    import reslab
    from reslab.data import build_data

    train_images = build_data("folder", zip_path, image_size=args.image_size, val_split=0.1).train.num_samples
    overrides = dict(
        model=args.model,
        pretrained=args.pretrained or "none",
        data="folder",
        data_dir=str(zip_path),
        epochs=args.epochs,
        image_size=args.image_size,
        device=args.device,
        out=str(work / "reslab-run"),
        val_split=0.1,
    )
    if args.threads:
        overrides["threads"] = args.threads
    start = time.perf_counter()
    result = reslab.train("transfer_cifar10", progress="none", **overrides)
    seconds = time.perf_counter() - start
    log = (Path(result.run_dir) / "train.log").read_text()
    seen = train_images * args.epochs
    return {
        "seconds": seconds,
        "train_images": train_images,
        "images": seen,
        "images_per_s": seen / seconds,
        "feature_cache": "frozen-backbone feature cache: the backbone ran once" in log,
        "val_top1": result.best_top1,
        "per_epoch_s": [round(r["time"], 2) for r in result.history],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data", type=Path, default=DEFAULT_ZIP, help="a zip of class folders (default: the CIFAR-10 JPEGs)"
    )
    p.add_argument("--per-class", type=int, default=30)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--model", default="resnet50")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--pretrained", help="a weights file for --model (default: random initialisation)")
    p.add_argument("--threads", type=int)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args(argv)
    if not args.data.is_file():
        print(f"error: no data at {args.data}: give --data ZIP (class folders of images)", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        zip_path, members = small_zip(args.data, args.per_class, work / "subset.zip")
        ours = reslab_run(zip_path, args, work)
        # the tutorial trains on as many images as reslab's training split (reslab held out 10% to evaluate)
        rng = np.random.default_rng(0)
        keep = sorted(rng.choice(len(members), size=ours["train_images"], replace=False))
        theirs = tutorial_loop(zip_path, [members[i] for i in keep], args, device)
    ratio = ours["images_per_s"] / theirs["images_per_s"]
    print(f"{args.model} at {args.image_size} px, {ours['train_images']} training images x {args.epochs} epochs")
    tut = f"{theirs['seconds']:8.1f} s  {theirs['images_per_s']:7.1f} images/s"
    print(f"  tutorial loop (per-epoch full forward, PIL resize): {tut}")
    cache = "on" if ours["feature_cache"] else "OFF"
    ours_line = f"{ours['seconds']:8.1f} s  {ours['images_per_s']:7.1f} images/s  (per epoch: {ours['per_epoch_s']} s)"
    print(f"  reslab (feature cache {cache}, device resize):        {ours_line}")
    print(f"  reslab / tutorial: {ratio:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"tutorial": theirs, "reslab": ours, "ratio": ratio}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
