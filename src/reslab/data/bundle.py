"""DataBundle: everything a trainer needs from a data set, and what a checkpoint must keep of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .loader import BatchLoader

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class LoaderOptions:
    """How :func:`build_data` batches, splits and augments, whatever the source (arrays or a folder)."""

    batch_size: int
    eval_batch_size: int
    device: Any  # torch.device
    augment: bool
    cutout: int
    val_split: float
    seed: int
    limit: int | None
    flip: bool | None
    crop_padding: int | None
    channels_last: bool


@dataclass
class DataBundle:
    """The loaders and the facts about one data set.

    Attributes:
        train: training loader (shuffled, augmented when requested; call ``set_epoch`` per epoch).
        val: evaluation loader of the validation split (in order, not augmented). Without
            ``val_split`` this is the official test split.
        test: evaluation loader of the official test split, or None when it is the same as ``val``.
        num_classes: number of classes.
        class_names: one name per class, index = label.
        input_size: (C, H, W) of the batches the model sees.
        mean, std: per-channel normalisation, in [0, 1] pixel units.
        name: the data set's registry name.
        info: plain (YAML/JSON-serialisable) facts to store in a checkpoint so that
            :func:`reslab.data.preprocess_image` can rebuild the preprocessing: name, num_classes,
            class_names, input_size, mean, std, resize (shorter side before the centre crop), crop.
        val_is_test: ``val`` is the official test split (no validation split was held out), so
            per-epoch figures and model selection use test data: the trainer labels them "test".
        notes: decisions the data layer made that a run's log should show (the image size chosen
            and why, which loading path a folder took); the trainer logs each line at the start.
    """

    train: BatchLoader
    val: BatchLoader
    test: BatchLoader | None
    num_classes: int
    class_names: list[str]
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str
    info: dict[str, Any]
    val_is_test: bool = False
    notes: list[str] = field(default_factory=list)
    #: builders of the evaluation-mode loader of each split, called at most once (see :meth:`loader`)
    eval_factories: dict[str, Callable[[], BatchLoader]] = field(default_factory=dict, repr=False)
    _eval_cache: dict[str, BatchLoader] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # The loaders built eagerly are the evaluation loaders of their splits: share them.
        self._eval_cache.setdefault("val", self.val)
        if self.test is not None:
            self._eval_cache.setdefault("test", self.test)

    def loader(self, split: str) -> BatchLoader:
        """The evaluation-mode loader (in order, no augmentation) of ``"train"``, ``"val"`` or ``"test"``.

        ``"test"`` falls back to the validation loader when the data set has no separate test split
        (``test`` is None because validation *is* the official test split).

        Raises:
            ConfigError: an unknown split name.
        """
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        if split == "test" and "test" not in self.eval_factories:
            split = "val"
        if split not in self._eval_cache:
            self._eval_cache[split] = self.eval_factories[split]()
        return self._eval_cache[split]

    def splits(self) -> tuple[str, ...]:
        """The splits this data set has, under their true names: ``train`` and ``val`` (a validation split
        held out or the folder's own ``val/``), ``test`` (an official test split); where no validation split
        was held out, ``train`` and ``test`` (the validation loader *is* the test split)."""
        if self.val_is_test:
            return ("train", "test")
        has_test = "test" in self.eval_factories or self.test is not None
        return ("train", "val", "test") if has_test else ("train", "val")

    def split_loader(self, split: str, *, what: str | None = None) -> BatchLoader:
        """The evaluation loader of ``split``, refusing a split the data set does not have -- where
        :meth:`loader` would give another split under its name (``test`` -> the validation split of a folder
        with only ``train/`` and ``val/``; ``val`` -> the test split of a run that held out no validation split).

        Args:
            split: ``"train"``, ``"val"`` or ``"test"``.
            what: how the error names the data (default ``the <name> data set``).

        Raises:
            ConfigError: an unknown split, or one this data set lacks (one line naming the splits it has).
        """
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        have = self.splits()
        if split not in have:
            what = what or f"the {self.name} data set"
            if split == "val":
                why = "val_split 0: without a validation split, 'val' would be its test split"
                use = "test"
            else:
                why = "only a validation split: 'test' would be its validation split"
                use = "val"
            raise ConfigError(
                f"{what} has no {split} split ({why}); its splits are {', '.join(have)}: use --split {use}"
            )
        return self.loader(split)


def make_info(
    name: str,
    class_names: list[str],
    input_size: tuple[int, int, int],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    *,
    resize: int,
    interpolation: str = "bilinear",
    crop_mode: str = "center",
) -> dict[str, Any]:
    """The checkpoint-ready description of the preprocessing (plain lists, ints, floats, strings).

    ``preprocessing`` repeats it in the form weights describe theirs (input_size, resize, crop,
    interpolation, mean, std, mode, channel_order), so a checkpoint fine-tuned further carries it on."""
    c, h, w = input_size
    return {
        "name": name,
        "num_classes": len(class_names),
        "class_names": [str(n) for n in class_names],
        "input_size": [int(c), int(h), int(w)],
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
        "resize": int(resize),
        "crop": [int(h), int(w)],
        "interpolation": str(interpolation),
        "crop_mode": str(crop_mode),
        "preprocessing": {
            "input_size": [int(c), int(h), int(w)],
            "resize": int(resize),
            "crop": str(crop_mode),
            "interpolation": str(interpolation),
            "mean": [float(m) for m in mean],
            "std": [float(s) for s in std],
            "mode": "reslab",
            "channel_order": "RGB",
        },
    }
