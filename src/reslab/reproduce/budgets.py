"""Budgets: quick | standard | paper -> the training configuration of one arm, and the data it uses.

quick (minutes on a 2-core CPU, cifar10-mini; the ordering of the claims, not the papers' numbers):
    SGD with Nesterov momentum 0.9, lr 0.1, one-cycle (25% rising), weight decay 5e-4 (not on BN
    parameters and biases), no label smoothing, no EMA, batch 128, 4 epochs, crop+flip augmentation.
    CIFAR-10 python batches are trained on whole and tested on their test_batch (cifar10-mini's is
    held-out training images); a folder / archive holds out 10%.
standard (GPU minutes on the whole CIFAR-10 training set, 45k/5k split): the quick recipe for 30 epochs,
    bf16 autocast and channels-last on a GPU.
paper (the papers' own recipes, 45k/5k split):
    resnet / resnet-warmup (Deep Residual Learning Section 4.2; Identity Mappings Appendix): batch 128,
    SGD momentum 0.9 without Nesterov, weight decay 1e-4 on every parameter, lr 0.1 divided by 10 at
    32k and 48k iterations, 64k iterations in all -- converted to epochs from the actual steps per epoch
    (45,000 / 128 -> 352: 182 epochs, milestones at epochs 90.9 and 136.4); ``resnet-warmup`` trains the
    first 400 iterations at 0.01 (the ResNet paper for ResNet-110 and 1202; Identity Mappings for all its
    CIFAR networks). No label smoothing, no EMA.
    densenet (DenseNet Section 4.2): batch 64, 300 epochs, lr 0.1 divided by 10 at 50% and 75% of the
    epochs, weight decay 1e-4, Nesterov momentum 0.9, crop+flip augmentation.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from .experiments import BUDGETS

#: the quick and standard budgets' recipe (before ``epochs``)
SHORT_RECIPE: dict[str, Any] = {
    "batch_size": 128,
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "decay_norm_and_bias": False,
    "schedule": "onecycle",
    "onecycle_pct": 0.25,
    "label_smoothing": 0.0,
    "ema": False,
    "augment": True,
    "cutout": 0,
}
QUICK_EPOCHS = 4
STANDARD_EPOCHS = 30

#: the ResNet papers' recipe in iterations (Deep Residual Learning, Section 4.2)
RESNET_ITERATIONS = 64_000
RESNET_MILESTONES = (32_000, 48_000)
WARMUP_ITERATIONS = 400
WARMUP_LR = 0.01
RESNET_RECIPE: dict[str, Any] = {
    "batch_size": 128,
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 1e-4,
    "decay_norm_and_bias": True,
    "schedule": "multistep",
    "gamma": 0.1,
    "label_smoothing": 0.0,
    "ema": False,
    "augment": True,
    "cutout": 0,
}
#: DenseNet Section 4.2
DENSENET_RECIPE: dict[str, Any] = {
    "batch_size": 64,
    "epochs": 300,
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 1e-4,
    "decay_norm_and_bias": True,
    "schedule": "multistep",
    "milestone_fractions": [0.5, 0.75],
    "gamma": 0.1,
    "label_smoothing": 0.0,
    "ema": False,
    "augment": True,
    "cutout": 0,
}
#: the held-out validation fraction of the standard and paper budgets (45k/5k of CIFAR-10's 50k)
PAPER_VAL_SPLIT = 0.1

ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz")


@dataclass
class DataChoice:
    """The data a reproduction trains on: ``data`` (cifar10 | folder), its path, its training-image count
    and what its held-out split is."""

    data: str
    data_dir: str
    images: int  # training images before any validation split
    description: str
    test_images: int | None = None  # cifar10: images in test_batch
    mini: bool = False  # cifar10-mini: its test_batch is held-out training images

    def val_split(self, budget: str) -> float:
        """The held-out fraction: none for quick on CIFAR-10 batches (test_batch is the test), else 10%."""
        return 0.0 if budget == "quick" and self.data == "cifar10" else PAPER_VAL_SPLIT

    def train_images(self, budget: str, limit: int | None) -> int:
        """The training images per epoch after the split and ``limit``."""
        split = self.val_split(budget)
        n = self.images - (round(self.images * split) if split else 0)
        return min(n, limit) if limit else n

    def splits(self, budget: str) -> tuple[str, str]:
        """What the per-epoch curve and the final test figure are measured on, in words."""
        if self.data == "cifar10" and self.val_split(budget) == 0:
            if self.mini:
                what = f"cifar10-mini's test_batch ({self.test_images} held-out CIFAR-10 *training* images)"
            else:
                official = ", the CIFAR-10 test set" if self.test_images == 10_000 else ""
                what = f"the test_batch of {self.data_dir} ({self.test_images} images{official})"
            return what, what
        held = f"the held-out {PAPER_VAL_SPLIT:.0%} validation split of the training images"
        if self.data == "cifar10":
            kind = ", held-out training images of cifar10-mini" if self.mini else ""
            test = f"the test_batch of {self.data_dir} ({self.test_images} images{kind})"
            return held, f"{test}, with the model chosen on {held}"
        return held, f"{held} (the data has no test set: this is a validation figure)"


def detect_data(data_dir: str | os.PathLike[str] | None) -> DataChoice:
    """What ``--data-dir`` holds: CIFAR-10 python batches (``cifar-10-batches-py``, e.g. cifar10-mini or
    the official set) or CIFAR-10 images in class folders (a folder or a .zip / .tar archive of them).

    Raises:
        ConfigError: the path does not exist or holds neither.
    """
    if data_dir is None:
        from ..data.build import default_data_dir

        data_dir = default_data_dir()
    path = Path(os.path.expanduser(str(data_dir)))
    if not path.exists():
        raise ConfigError(
            f"--data-dir {path} does not exist (expected CIFAR-10 python batches or a folder / .zip of class folders)"
        )
    if path.is_file():
        if not path.name.lower().endswith(ARCHIVES):
            raise ConfigError(f"--data-dir {path} is a file but not an archive ({', '.join(ARCHIVES)})")
        return DataChoice("folder", str(path), _archive_images(path), f"CIFAR-10 images in class folders ({path})")
    batches = path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path
    if (batches / "data_batch_1").is_file():
        n_train = sum(
            _batch_count(batches / f"data_batch_{i}") for i in range(1, 6) if (batches / f"data_batch_{i}").is_file()
        )
        n_test = _batch_count(batches / "test_batch") if (batches / "test_batch").is_file() else None
        mini = n_train < 50_000 and _says_mini(path)
        name = "cifar10-mini" if mini else "CIFAR-10 (python batches)"
        return DataChoice("cifar10", str(path), n_train, f"{name}, {n_train} training images ({path})", n_test, mini)
    if any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir()):
        n = sum(1 for p in path.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))
        return DataChoice("folder", str(path), n, f"CIFAR-10 images in class folders ({path})")
    raise ConfigError(
        f"--data-dir {path} holds neither CIFAR-10 python batches (cifar-10-batches-py/data_batch_1) "
        "nor class folders of images"
    )


def _batch_count(path: Path) -> int:
    from ..data.sources.cifar import count_images  # the data layer's restricted unpickler: no code runs

    return count_images(path)


def _says_mini(path: Path) -> bool:
    for readme in (path / "README.md", path.parent / "README.md"):
        if readme.is_file() and "cifar10-mini" in readme.read_text(errors="replace")[:200]:
            return True
    return path.name == "cifar10-mini"


def _archive_images(path: Path) -> int:
    if path.name.lower().endswith(".zip"):
        try:
            with zipfile.ZipFile(path) as z:
                return sum(1 for n in z.namelist() if n.lower().endswith((".png", ".jpg", ".jpeg", ".bmp")))
        except (OSError, zipfile.BadZipFile) as e:
            raise DataError(f"cannot read archive {path}: {e}") from None
    return 0  # tar: not counted (only the paper budget's iteration conversion needs it)


def budget_config(
    budget: str,
    recipe: str,
    data: DataChoice | None,
    *,
    epochs: int | None = None,
    limit: int | None = None,
    on_gpu: bool = False,
) -> tuple[dict[str, Any], list[str]]:
    """The training configuration (before model, seed and where it runs) of an arm whose paper budget
    follows ``recipe`` (resnet | resnet-warmup | densenet); ``epochs`` / ``limit`` are the user's
    overrides. Returns the configuration and notes about it.

    Raises:
        ConfigError: an unknown budget or recipe.
    """
    if budget not in BUDGETS:
        raise ConfigError(f"unknown budget {budget!r}; budgets: {', '.join(BUDGETS)}")
    if recipe not in ("resnet", "resnet-warmup", "densenet"):
        raise ConfigError(f"unknown recipe {recipe!r}")
    notes: list[str] = []
    if budget in ("quick", "standard"):
        cfg = {**SHORT_RECIPE, "epochs": QUICK_EPOCHS if budget == "quick" else STANDARD_EPOCHS}
        if budget == "standard" and on_gpu:
            cfg.update(amp="bf16", channels_last=True)
    elif recipe == "densenet":
        cfg = dict(DENSENET_RECIPE)
    else:
        cfg = dict(RESNET_RECIPE)
        images = data.train_images(budget, limit) if data is not None and data.images else 45_000
        steps = math.ceil(images / cfg["batch_size"])
        cfg["epochs"] = max(1, round(RESNET_ITERATIONS / steps))
        cfg["milestones"] = [round(m / steps, 4) for m in RESNET_MILESTONES]
        notes.append(
            f"{images} training images / batch 128 = {steps} steps per epoch: {RESNET_ITERATIONS} "
            f"iterations = {cfg['epochs']} epochs, lr / 10 at epochs {cfg['milestones']}"
        )
        if recipe == "resnet-warmup":
            cfg.update(warmup_lr=WARMUP_LR, warmup_epochs=round(WARMUP_ITERATIONS / steps, 4))
    if epochs is not None:
        cfg["epochs"] = epochs
        if cfg.get("milestones") is not None:  # the paper's milestones keep their place in the run
            cfg["milestones"] = None
            cfg["milestone_fractions"] = [m / RESNET_ITERATIONS for m in RESNET_MILESTONES]
        if cfg.get("warmup_epochs", 0) * 2 >= epochs:
            notes.append(f"the {WARMUP_ITERATIONS}-iteration warm-up is dropped: the {epochs}-epoch run is too short")
            cfg.pop("warmup_lr", None)
            cfg.pop("warmup_epochs", None)
    if data is not None:
        cfg.update(data=data.data, data_dir=data.data_dir, val_split=data.val_split(budget))
    if limit is not None:
        cfg["data_args"] = {"limit": limit}
    return cfg, notes
