"""Helpers for the trainer tests: tiny models and tiny in-memory data bundles (fast on 2 CPU cores)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import torch
from torch import nn

from reslab.data import DataBundle, build_data
from reslab.models.base import AuxLogits

REPO = Path(__file__).resolve().parents[2]
CIFAR10_MINI = REPO.parent / "shared" / "data" / "cifar10-mini"


class TinyNet(nn.Module):
    """conv-BN-ReLU-dropout-pool-linear: small enough to train in well under a second; its dropout
    draws from the global RNG, so exact resume must restore the generator states."""

    model_name = "tiny"

    def __init__(self, in_chans: int = 3, num_classes: int = 4, width: int = 8, dropout: float = 0.1):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(width, num_classes)
        self.train_forwards = 0

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        return self.drop(x.mean((2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.train_forwards += 1
        return self.fc(self.features(x))


class AuxNet(TinyNet):
    """Returns :class:`AuxLogits` in training mode (as GoogLeNet does), plain logits in eval mode."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.aux1 = nn.Linear(self.fc.in_features, self.fc.out_features)
        self.aux2 = nn.Linear(self.fc.in_features, self.fc.out_features)

    def forward(self, x: torch.Tensor):
        f = self.features(x)
        if self.training:
            return AuxLogits(self.fc(f), self.aux1(f), self.aux2(f))
        return self.fc(f)


class HookNet(TinyNet):
    """A TinyNet that does something at a given training step (1-based, counted over the run)."""

    def __init__(self, *args, at_step: int, action: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.at_step, self.action = at_step, action

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        if self.training and self.train_forwards == self.at_step:
            if self.action == "nan":
                out = out * float("nan")
            else:  # a real signal to this very process, delivered mid-step
                os.kill(os.getpid(), getattr(signal, self.action))
        return out


def tiny_bundle(
    *, num_samples: int = 96, batch_size: int = 16, num_classes: int = 4, image_size: int = 8, seed: int = 0, **kwargs
) -> DataBundle:
    """Synthetic 3-channel images (with crop+flip augmentation) from reslab.data."""
    return build_data(
        "synthetic",
        num_samples=num_samples,
        batch_size=batch_size,
        num_classes=num_classes,
        image_size=image_size,
        seed=seed,
        **kwargs,
    )


class ListLoader:
    """A plain in-memory loader with the reslab.data interface (order a function of seed and epoch)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool, seed: int = 0):
        self.images, self.labels, self.batch_size, self.shuffle, self.seed = images, labels, batch_size, shuffle, seed
        self.num_samples = len(labels)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)

    def __iter__(self):
        order = torch.arange(self.num_samples)
        if self.shuffle:
            order = torch.randperm(
                self.num_samples, generator=torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
            )
        self.epoch += 1
        for i in range(0, self.num_samples, self.batch_size):
            idx = order[i : i + self.batch_size]
            yield self.images[idx], self.labels[idx]


class ListBundle:
    """The DataBundle attributes the trainer reads, over :class:`ListLoader` s."""

    def __init__(self, n: int = 64, num_classes: int = 3, size: int = 6, batch_size: int = 16):
        g = torch.Generator().manual_seed(0)
        labels = torch.arange(n) % num_classes
        images = torch.randn(n, 3, size, size, generator=g) * 0.5 + labels.view(-1, 1, 1, 1).float()
        self.train = ListLoader(images, labels, batch_size, shuffle=True)
        self.val = ListLoader(images[: n // 2], labels[: n // 2], 32, shuffle=False)
        self.test = None
        self.num_classes = num_classes
        self.class_names = [f"c{i}" for i in range(num_classes)]
        self.input_size = (3, size, size)
        self.name = "list"
        self.info = {"input_size": [3, size, size], "mean": [0.0] * 3, "std": [1.0] * 3}


def fast_config(tmp_path: Path, **overrides) -> dict:
    """A configuration for tiny runs: CPU, no progress bar, a fresh run directory."""
    values = dict(
        model="tiny", data="synthetic", epochs=2, lr=0.05, device="cpu", out=str(tmp_path / "run"), weight_decay=1e-4
    )
    values.update(overrides)
    return values
