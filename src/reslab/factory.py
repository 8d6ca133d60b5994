"""``create_model``: build a registered network, then load weights into it.

The one place where ``pretrained`` is read. It sits above both :mod:`reslab.models` (the architectures,
which know nothing of weights) and :mod:`reslab.weights` (the published weights and the file readers,
which depend on the models): it parses the value once (:func:`resolve_pretrained`), builds the network the
weights were trained as, loads them strictly, then adapts the head and the input convolution.

``pretrained`` may be:

- ``None``, ``False``, ``"none"``, ``"false"``, ``"no"``: no weights (the papers' initialisation);
- ``True``, ``"default"``, ``"true"``, ``"yes"``: the model's default published weights;
- a tag (``"tv_in1k"``) or this model's full name (``"resnet50.tv_in1k"``): a registry entry;
- a path (an existing file, a value with a directory part, or a name ending like a weight file:
  ``.pth``, ``.h5``, ...): a local file in any layout :func:`reslab.weights.layouts.read_weights` reads;
- a :class:`PretrainedWeights` from :func:`resolve_pretrained` (a caller that already asked what the
  weights are, e.g. for their preprocessing, passes it on: nothing is parsed or read twice).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CheckpointError, ConfigError

if TYPE_CHECKING:  # torch is imported when a model is built, not when a value is parsed
    from torch import nn

    from .weights.layouts import Loaded
    from .weights.registry import WeightsEntry

logger = logging.getLogger("reslab.weights")

#: values of ``pretrained`` that ask for the model's default weights / for none
DEFAULT_WORDS = ("default", "true", "yes")
NONE_WORDS = ("none", "false", "no")
#: file name endings of weight files: a name with one of them is a path, even where the file is missing
WEIGHT_FILE_SUFFIXES = (
    ".pth",
    ".pt",
    ".th",
    ".tar",
    ".bin",
    ".ckpt",
    ".h5",
    ".hdf5",
    ".keras",
    ".safetensors",
    ".pkl",
    ".npz",
)


def normalize_pretrained(value: Any) -> bool | str | None:
    """``pretrained`` as a configuration stores it, before any model is known: None (no weights), True
    (the model's default weights) or a non-empty string (a tag, ``MODEL.TAG`` or a path, ``~`` expanded).

    Raises:
        ConfigError: any other value.
    """
    if isinstance(value, PretrainedWeights):
        return value.name
    if value is None or value is False:
        return None
    if value is True:
        return True
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.lower() in DEFAULT_WORDS:
            return True
        if text.lower() in NONE_WORDS:
            return None
        return os.path.expanduser(text) if text.startswith("~") else text
    raise ConfigError(
        f"pretrained must be true / default, a weights tag (tv_in1k), a MODEL.TAG name or a file path, got {value!r}"
    )


@dataclass
class PretrainedWeights:
    """What ``pretrained`` names for one model, known before anything is fetched or read.

    Attributes:
        model: the registry name of the network the weights are for.
        entry: the registry entry (published weights), or None for a local file.
        path: the local file, or None for an entry not fetched yet.
    """

    model: str
    entry: WeightsEntry | None = None
    path: Path | None = None
    _loaded: Loaded | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """``MODEL.TAG`` for published weights, the path for a file."""
        return self.entry.name if self.entry is not None else str(self.path)

    def file(self) -> Path:
        """The weights file: a local file as given, or the entry's file fetched into the cache (hash-checked).

        Raises:
            CheckpointError: a missing file or a directory. DataError: a download that fails (offline: the
                message says where to put the file).
        """
        if self.entry is not None:
            if self.path is None:
                from .weights.hub import fetch

                self.path = fetch(self.entry)
            return self.path
        if self.path.is_dir():
            raise CheckpointError(f"pretrained weights {self.path} is a directory; give the weights file in it")
        if not self.path.is_file():
            raise CheckpointError(f"pretrained weights file {self.path} not found")
        return self.path

    def read(self) -> Loaded:
        """The weights, read once (:func:`reslab.weights.layouts.read_weights`) and kept.

        Raises:
            CheckpointError: a missing or unreadable file, or one in no supported layout.
        """
        if self._loaded is None:
            from .weights.layouts import read_weights

            self._loaded = read_weights(self.file(), layout=self.entry.layout if self.entry else None)
        return self._loaded

    @property
    def preprocessing(self) -> dict[str, Any] | None:
        """The preprocessing the weights expect (a :class:`~reslab.weights.Preprocessing` dict): the entry's,
        or what a file records about itself (None where it says nothing; the file is read for this)."""
        if self.entry is not None:
            return self.entry.preprocessing.to_dict()
        return self.read().meta.get("preprocessing")


def resolve_pretrained(model: str, pretrained: Any) -> PretrainedWeights | None:
    """What ``pretrained`` names for the registry model ``model`` (see the module docstring), without
    fetching or reading anything; None for no weights.

    Raises:
        UnknownModelError: ``model`` is not registered.
        ConfigError: a value that is none of the accepted forms, ``MODEL.TAG`` of another model, or weights
            the registry does not have (the message lists the model's tags).
    """
    from .models import get_model_entry

    model = get_model_entry(model).name
    if isinstance(pretrained, PretrainedWeights):
        if pretrained.model != model:
            raise ConfigError(f"the weights {pretrained.name} are for {pretrained.model}, not {model}")
        return pretrained
    given = pretrained
    value = normalize_pretrained(pretrained)
    if value is None:
        return None
    from .weights.registry import get_weights

    if value is True:
        return PretrainedWeights(model, entry=get_weights(model, True))
    if isinstance(given, os.PathLike):
        return PretrainedWeights(model, path=Path(value))
    tag = value.lower()
    own = tag.startswith(f"{model}.")
    # "resnet50.tv_in1k" has a suffix too: a name is never a path because of its dot alone
    if Path(value).exists() or os.sep in value or "/" in value or (not own and tag.endswith(WEIGHT_FILE_SUFFIXES)):
        return PretrainedWeights(model, path=Path(value).expanduser())
    if own:
        tag = tag[len(model) + 1 :]
    elif "." in tag:
        raise ConfigError(
            f"pretrained={value!r} names weights of another model; "
            f"{model} takes its own (`reslab weights list {model}`)"
        )
    return PretrainedWeights(model, entry=get_weights(model, tag))


def create_model(
    name: str,
    num_classes: int | None = None,
    in_chans: int | None = None,
    *,
    pretrained: Any = None,
    **overrides: Any,
) -> nn.Module:
    """Build a registered model, with weights where ``pretrained`` names some.

    Args:
        name: a registry name (``reslab.list_models()``), e.g. ``"resnet50"`` or ``"resnet56"``.
        num_classes: classifier outputs; the model's default (1000 for ImageNet, 10 for CIFAR) if None;
            0 builds the network without a classifier (``model(x)`` gives pooled features).
        in_chans: input channels; the model's default (3, or 1 for MNIST-family models) if None.
        pretrained: weights to load (module docstring): ``True`` / ``"default"`` (the model's default
            published weights), a tag (``"tv_in1k"``, ``reslab weights list`` shows them), ``MODEL.TAG``, or
            a path to a local file in any supported layout. The weights load strictly into the network they
            were trained as; a different ``num_classes`` then replaces the classifier and ``in_chans`` adapts
            the first convolution. ``model.pretrained_cfg`` says what was loaded and the preprocessing it
            expects.
        **overrides: any constructor argument of the model's class, e.g. ``unit="full_preact"``,
            ``shortcut="B"``, ``zero_init_last=True``.

    Returns:
        The model (an ``nn.Module`` with the :class:`reslab.models.base.ReslabModel` interface), in
        training mode, on the CPU, with the papers' initialisation or the loaded weights.

    Raises:
        UnknownModelError: ``name`` is not registered (the message suggests close names).
        ConfigError: an unknown override, a value the architecture cannot take, unknown weights, or an
            override that contradicts what the weights need.
        CheckpointError: weights that cannot be read or do not fit (never a partial load: one line naming
            the first differing keys and shapes).
    """
    from .models import build_model, get_model_entry

    entry = get_model_entry(name)
    weights = resolve_pretrained(entry.name, pretrained)
    if weights is None:
        return build_model(entry.name, num_classes, in_chans, **overrides)
    return _create_pretrained(weights, num_classes=num_classes, in_chans=in_chans, overrides=overrides)


def _create_pretrained(
    weights: PretrainedWeights, *, num_classes: int | None, in_chans: int | None, overrides: dict[str, Any]
) -> nn.Module:
    """Build ``weights.model`` as the weights were trained (their classes, channels and constructor
    arguments), load them strictly, then adapt the head and the input channels."""
    import torch

    from .models import build_model
    from .weights import adapt

    loaded = weights.read()
    entry, source = weights.entry, weights.name
    saved_model = loaded.meta.get("model_name")
    if saved_model and saved_model != weights.model:
        raise CheckpointError(f"{source} holds {saved_model} weights, not {weights.model}")
    needed = {**(entry.model_args if entry else {}), **loaded.model_args}
    for key, value in overrides.items():
        if key in needed and needed[key] != value:
            raise ConfigError(f"{source} needs {key}={needed[key]!r}; the override {key}={value!r} contradicts it")
    args = {**needed, **overrides}

    # the network the weights were trained as: their class count and input channels
    with torch.device("meta"):  # only its key names and shapes are needed: no memory, no initialisation cost
        probe = build_model(weights.model, **args)
    src_classes, src_chans = adapt.source_shape(loaded, probe, entry)
    model = build_model(weights.model, src_classes, src_chans, **args)
    if "arch_revision" in loaded.meta and hasattr(model, "check_weights_revision"):  # reslab's own checkpoints
        model.check_weights_revision(loaded.meta["arch_revision"], source)
    adapt.load_strict(model, loaded, source)

    # what was changed in the weights' network, as lines (model.weights_adapted: a training run's log repeats them)
    adapted: list[str] = []
    want_classes = src_classes if num_classes is None else num_classes
    if want_classes != src_classes:
        adapted.append(f"{source}: classifier {src_classes} -> {want_classes} classes (new, freshly initialised)")
        logger.info("%s", adapted[-1], extra={"weights_adapted": True})
        model.reset_classifier(want_classes)
    want_chans = src_chans if in_chans is None else in_chans
    if want_chans != src_chans:
        adapt.adapt_input(model, want_chans)
        adapted.append(f"{source}: first convolution adapted from {src_chans} to {want_chans} input channels")
        logger.info("%s", adapted[-1], extra={"weights_adapted": True})
    model.pretrained_cfg = adapt.pretrained_cfg(
        entry, loaded, source, args, src_classes, want_classes, src_chans, want_chans
    )
    model.model_args = args
    model.weights_adapted = adapted
    return model
