"""A frozen backbone's features, computed once: every epoch after that trains the head alone.

With ``freeze="backbone"`` and no augmentation, the frozen network (in eval mode, no gradients) maps each image
to the same features every epoch, so the plain loop's forward pass through it is the same work repeated. The
cache runs it once per image -- in order, over the training split and the evaluation splits -- and then trains
the classifier on the stored features with the training loader's own batches (same order, same seed), so the
head's updates are the plain loop's (up to float rounding: the backbone sees other batch sizes). Tutorial 001's
run (a frozen ImageNet ResNet-50 on CIFAR-10 at 224 px) is the case: after the first pass an epoch costs the
head only.

It applies only where that equality holds; otherwise the plain loop runs and :func:`cache_decision` says why
(the run's log repeats it): augmentation or cutout (each epoch sees other pixels), an EMA of the weights (it
averages the whole network), torchrun (the cache is per process), a stochastic layer outside the head that
trains in train mode (dropout), auxiliary classifiers, or a loader that is not a device-resident array.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..data.loader import _STREAM_ORDER, DeviceLoader, _EpochLoader, epoch_generator
from .runtime import autocast

#: modules whose training mode changes what they compute
STOCHASTIC = (nn.Dropout, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


def cache_decision(config: Any, model: nn.Module, bundle: Any, *, distributed: bool) -> tuple[bool, str]:
    """Whether a run's frozen backbone can be cached, and why not (an empty reason when freezing is not
    ``backbone``: nothing to say)."""
    if config.freeze != "backbone":
        return False, ""
    reasons = []
    if config.augment or config.cutout:
        reasons.append("augmentation is on (each epoch sees other pixels; --no-augment caches)")
    if config.ema:
        reasons.append("an EMA of the weights averages the whole network (--no-ema caches)")
    if distributed:
        reasons.append("torchrun runs one process per device")
    if not isinstance(bundle.train, DeviceLoader):
        reasons.append("the training data is decoded per sample (not a device-resident array)")
    if getattr(model, "aux_logits", False):
        reasons.append("the network's auxiliary classifiers join the loss")
    if not (hasattr(model, "forward_features") and hasattr(model, "forward_head") and hasattr(model, "get_classifier")):
        reasons.append("the network has no forward_features / forward_head")
    else:
        head = {id(m) for m in model.get_classifier().modules()}
        if any(isinstance(m, STOCHASTIC) and m.p > 0 and id(m) not in head for m in model.modules()):
            reasons.append("a dropout layer outside the head trains in train mode")
    if reasons:
        return False, "frozen-backbone feature cache off: " + "; ".join(reasons)
    return True, ""


class FeatureLoader(_EpochLoader):
    """Batches ``(features, labels)`` of cached features, in the order a :class:`DeviceLoader` with the same
    ``batch_size``, ``shuffle``, ``seed`` and ``min_last_batch`` gives its images (the same epoch contract, the
    same batches: a last batch too small for BatchNorm joins the one before as there)."""

    def __init__(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        min_last_batch: int = 1,
    ):
        self.features, self.labels = features, labels
        self.batch_size, self.shuffle, self.seed = int(batch_size), bool(shuffle), int(seed)
        self.min_last_batch = int(min_last_batch)
        self.num_samples = int(features.shape[0])
        self._next_epoch = 0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = self._start_epoch()
        order = None
        if self.shuffle:
            order = torch.randperm(self.num_samples, generator=epoch_generator(self.seed, epoch, _STREAM_ORDER))
            order = order.to(self.features.device)
        for start, stop in self.batch_bounds():
            if order is None:
                yield self.features[start:stop], self.labels[start:stop]
            else:
                idx = order[start:stop]
                yield self.features[idx], self.labels[idx]


@dataclass
class FeatureData:
    """The cached splits, shaped like a data bundle for the training loop: ``train``, ``val``, ``test``."""

    train: FeatureLoader
    val: FeatureLoader | None
    test: FeatureLoader | None
    seconds: float
    num_images: int

    def describe(self) -> str:
        return (
            f"frozen-backbone feature cache: the backbone ran once over {self.num_images:,} images "
            f"({self.seconds:.1f} s); every epoch trains the head on the stored features"
        )


@torch.no_grad()
def pre_logits(model: nn.Module, loader: Any, amp_dtype: torch.dtype | None, device: torch.device):
    """``model``'s features before its classifier (``forward_head(pre_logits=True)``) for every batch of
    ``loader``, in order, with the labels (the model in eval mode throughout)."""
    was_training = model.training
    model.eval()
    feats, labels = [], []
    try:
        for images, y in loader:
            with autocast(device, amp_dtype):
                f = model.forward_head(model.forward_features(images), pre_logits=True)
            feats.append(f.float())
            labels.append(y)
    finally:
        model.train(was_training)
    return torch.cat(feats), torch.cat(labels)


def build_feature_data(model: nn.Module, bundle: Any, amp_dtype: torch.dtype | None, device: torch.device):
    """Run the frozen backbone once over the training split (in order, as the evaluation loader serves it)
    and the evaluation splits; the training split's features are served in the training loader's order."""
    start = time.perf_counter()
    train = bundle.train
    x, y = pre_logits(model, bundle.loader("train"), amp_dtype, device)
    train_loader = FeatureLoader(
        x,
        y,
        batch_size=train.batch_size,
        shuffle=train.shuffle,
        seed=train.seed,
        min_last_batch=getattr(train, "min_last_batch", 1),
    )
    n = len(y)
    splits: dict[str, FeatureLoader | None] = {}
    for split in ("val", "test"):
        loader = getattr(bundle, split, None)
        if loader is None:
            splits[split] = None
            continue
        fx, fy = pre_logits(model, loader, amp_dtype, device)
        splits[split] = FeatureLoader(fx, fy, batch_size=loader.batch_size, shuffle=False, seed=0)
        n += len(fy)
    return FeatureData(train_loader, splits["val"], splits["test"], time.perf_counter() - start, n)
