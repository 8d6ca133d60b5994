"""Per-image training cost of fine-tuning with a frozen backbone against full training, in one run.

The same network (ResNet-50 by default, 224 px, batch 16) trains with reslab's optimiser set-up
(``reslab.training.optim.build_optimizer``: Adam) two ways: *full* (every parameter trained, BatchNorm in
training mode) and *frozen* (``reslab.training.freeze.freeze_model(model, "backbone")``: the backbone's
parameters have ``requires_grad=False`` and its modules stay in eval mode, so autograd records nothing
below the head and the backward pass is the head's alone). Steps alternate between the two (``--repeats``
rounds of ``--steps`` steps after one warm-up step each); the median seconds per image of each are
compared and the ratio printed.

    python benchmarks/frozen_cost.py [--model resnet50] [--size 224] [--batch 16] [--steps 3] [--repeats 3]
                                     [--threads N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from reslab import create_model
from reslab.training.config import TrainConfig
from reslab.training.freeze import freeze_model
from reslab.training.optim import build_optimizer


def make(model: str, frozen: bool, device: torch.device):
    torch.manual_seed(0)
    net = create_model(model, num_classes=10).to(device)
    if frozen:
        freeze_model(net, "backbone")
    net.train()  # the trainer's call each epoch: frozen modules stay in eval mode
    cfg = TrainConfig(optimizer="adam", lr=1e-4, weight_decay=0.0).validate()
    return net, build_optimizer(net, cfg)


def step(net, opt, x, y) -> None:
    loss = F.cross_entropy(net(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def timed(net, opt, x, y, steps: int, device: torch.device) -> float:
    """Seconds per image over ``steps`` steps."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step(net, opt, x, y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / (steps * x.shape[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet50")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=g).to(device)
    y = torch.randint(0, 10, (args.batch,), generator=g).to(device)
    runs = {name: make(args.model, name == "frozen", device) for name in ("full", "frozen")}
    for net, opt in runs.values():
        step(net, opt, x, y)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, (net, opt) in runs.items():
            times[name].append(timed(net, opt, x, y, args.steps, device))
    full, frozen = statistics.median(times["full"]), statistics.median(times["frozen"])
    print(
        f"{args.model} {args.size}px batch {args.batch} on {device} ({torch.get_num_threads()} threads), "
        f"median of {args.repeats} x {args.steps} steps:"
    )
    print(f"  full training:   {full * 1e3:8.1f} ms/image")
    print(f"  frozen backbone: {frozen * 1e3:8.1f} ms/image")
    print(f"  frozen / full = {frozen / full:.3f} (frozen is {full / frozen:.2f}x cheaper per image)")


if __name__ == "__main__":
    main()
