"""The interface every reslab model shares (after timm's): features, head, classifier reset, feature info.

A model sets ``num_classes``, ``num_features`` (channels into the classifier), ``in_chans``,
``feature_info`` and ``min_input_size`` and implements ``forward_features`` and ``forward_head``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, InputShapeError

#: reslab's network revision: bumped when a fix changes what a network computes with the same weights
#: (2: issue 9, pre-activation ResNets as the paper's code). Checkpoints record it (``arch_revision``).
ARCH_REVISION = 2


class ReslabModel(nn.Module):
    """Base class: a backbone (``forward_features``) followed by a head (``forward_head``)."""

    num_classes: int
    num_features: int
    in_chans: int
    #: the smallest height/width the network takes (its total stride unless it says otherwise)
    min_input_size: int = 1
    #: a model that takes exactly one input size sets it here (LeNet's fully connected C5, say)
    fixed_input_size: int | None = None
    feature_info: list[dict[str, Any]]

    def revision_change(self, saved: int) -> str | None:
        """What changed in this network since reslab's revision ``saved`` (None: nothing that affects it)."""
        return None

    def check_weights_revision(self, saved: int | None, source: str) -> None:
        """Refuse weights written by an older reslab for a network that computes differently now: they
        have the same keys, so they would load strictly and silently compute another function.

        Raises:
            CheckpointError: naming ``source`` and what changed.
        """
        change = self.revision_change(1 if saved is None else int(saved))
        if change:
            name = getattr(self, "model_name", type(self).__name__)
            raise CheckpointError(
                f"{source} was written by an older reslab (network revision {saved or 1}, now {ARCH_REVISION}) "
                f"and {name} has changed since: {change}; its weights would load but compute another function, "
                "so retrain it"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one for ``num_classes`` (0: no classifier)."""
        check_num_classes(num_classes)
        self.num_classes = num_classes
        old = self.get_classifier()
        new = make_classifier(self.num_features, num_classes)
        # the new head goes where the model's weights are: the old head's, or (after num_classes=0, an
        # Identity without weights) the backbone's first floating-point parameter
        params = (p for p in self.parameters() if p.is_floating_point())
        like = old.weight if isinstance(old, nn.Linear) else next(params, None)
        if like is not None:
            new = new.to(device=like.device, dtype=like.dtype)
        self._set_classifier(new)

    def _set_classifier(self, module: nn.Module) -> None:
        self.fc = module

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`InputShapeError` for an input the network cannot take."""
        name = getattr(self, "model_name", type(self).__name__)
        if x.dim() != 4:
            raise InputShapeError(
                f"{name} expects a batch of images (N, C, H, W), got a tensor of shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_chans:
            raise InputShapeError(
                f"{name} was built with in_chans={self.in_chans} but the input has "
                f"{x.shape[1]} channels (shape {tuple(x.shape)})"
            )
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if self.fixed_input_size is not None:
            if h != self.fixed_input_size or w != self.fixed_input_size:
                raise InputShapeError(
                    f"{name} takes {self.fixed_input_size}x{self.fixed_input_size} inputs, got {h}x{w}"
                )
        elif h < self.min_input_size or w < self.min_input_size:
            raise InputShapeError(
                f"{name} needs inputs of at least {self.min_input_size}x{self.min_input_size} "
                f"(its strides reduce smaller ones to nothing), got {h}x{w}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.forward_head(self.forward_features(x))

    def fuse(self, example_input: torch.Tensor | None = None) -> ReslabModel:
        """Fold every BN that directly follows a convolution into it, in place (eval mode; for inference).

        See :func:`reslab.models.fuse`. Returns the model. Raises ConfigError in training mode.
        """
        from .fuse import fuse

        return fuse(self, example_input)


class DenseHeadModel(ReslabModel):
    """A model whose classifier is ``self.classifier[6]``: the last layer of the dropout-dense-dense-dense
    head of torchvision's AlexNet and VGG (key names ``classifier.6.*``). A new classifier is
    initialised N(0, 0.01) with zero bias, as those models are."""

    def get_classifier(self) -> nn.Module:
        return self.classifier[6]

    def _set_classifier(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)
        self.classifier[6] = module


class AuxLogits(NamedTuple):
    """Training-mode output of a model with auxiliary classifiers (GoogLeNet): the main logits first,
    then the auxiliary logits in the paper's order. Trainers weight the auxiliary losses (0.3 in the
    GoogLeNet paper); in eval mode such models return the main logits alone."""

    logits: torch.Tensor
    aux1: torch.Tensor
    aux2: torch.Tensor


def check_num_classes(num_classes: Any) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ConfigError(f"num_classes must be a whole number >= 0 (0: no classifier), got {num_classes!r}")


def make_classifier(num_features: int, num_classes: int) -> nn.Module:
    """A linear classifier, or ``nn.Identity`` when ``num_classes == 0`` (pooled features out)."""
    return nn.Linear(num_features, num_classes) if num_classes > 0 else nn.Identity()
