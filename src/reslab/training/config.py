"""The training configuration: one flat dataclass, read from YAML recipes and overridden by flags.

A run's resolved configuration is written to its run directory (``config.yaml``) and stored in its
checkpoints, so a run can be resumed, evaluated or repeated from either alone.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..factory import normalize_pretrained

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("multistep", "cosine", "onecycle", "constant")
AMP_MODES = ("auto", "bf16", "fp16")  # None: fp32
#: keys whose "auto" a run resolves once, for its machine and network (training/precision.py)
AUTO_KEYS = ("amp", "channels_last")

#: keys that only say where or how fast a run executes, not what it computes: a resumed run may change
#: them (the data may have moved, the run may continue on another device)
RUNTIME_KEYS = frozenset(
    {"data_dir", "download", "workers", "device", "compile", "out", "threads", "overwrite", "log_every"}
)


@dataclass
class TrainConfig:
    """Everything a training run needs; field names are the YAML keys (flags use dashes).

    The defaults are the best short recipe the project knows (``resnet_cifar10_fast``: SGD with
    Nesterov momentum at lr 0.2, one-cycle over 25% of the run, label smoothing 0.1, weight decay
    5e-4 without decay on BN parameters and biases, an EMA of the weights at 0.999, batch 128, 30
    epochs); the papers' recipes are the shipped configs (:func:`shipped_configs`).

    Model:
        model: registry name (``reslab list``). model_args: constructor overrides, e.g.
        ``{"widths": [8, 16, 32]}`` (stored in checkpoints so eval/predict rebuild the same network).
        pretrained: start from published or local weights (``reslab.weights``): ``True`` / ``"default"``
        (the model's default weights), a tag (``"tv_in1k"``), a full name (``"resnet50.tv_in1k"``) or a
        file path; the fine-tuning recipe (``configs/finetune.yaml``) then sits between the defaults and
        the user's recipe, and the data take the weights' preprocessing. freeze: ``none``, ``backbone``
        (all but the classifier) or ``stages:N`` (the stem and the first N stages), see
        :mod:`reslab.training.freeze`.
    Data (passed to ``reslab.data.build_data``):
        data, data_dir, download, val_split, augment, cutout, image_size, batch_size,
        eval_batch_size, workers; data_args: any further ``build_data`` keyword (``limit``,
        ``num_samples``, ``num_classes``, ``channels``, ``url``, ``cifar100_labels``, ``strict``).
    Optimisation:
        epochs; optimizer (sgd | adam | adamw), lr, momentum, nesterov (SGD), betas (Adam/AdamW),
        weight_decay, decay_norm_and_bias (False exempts BN parameters and biases from weight decay);
        head_lr (the classifier's learning rate; default ``lr``), backbone_lr_scale (the rest of the
        network trains at head_lr x this; to stop it training use ``freeze``);
        schedule (multistep | cosine | onecycle | constant), milestones (multistep: epochs, e.g.
        ``[82, 123]``) or milestone_fractions (fractions of the run, e.g. ``[0.5, 0.75]``, so the recipe
        keeps its shape at any ``epochs``; give one or the other; neither: 50% and 75% of the run, as
        the ResNet paper), gamma (multi-step factor), warmup_epochs (warm-up length, combinable with
        any schedule; linear from 0 to ``lr``), warmup_lr (instead a constant warm-up: train at this rate
        for ``warmup_epochs``, then go to ``lr``, as the ResNet paper's 0.01 for 400 iterations),
        onecycle_pct (fraction of the run rising to ``lr``),
        onecycle_div (one-cycle starts at ``lr / onecycle_div``); label_smoothing; grad_clip (max
        gradient norm, 0: off); aux_weight (weight of auxiliary-classifier losses, 0.3 as GoogLeNet);
        ema, ema_decay (an exponential moving average of the weights, evaluated alongside);
        accum_steps (gradient accumulation: one optimiser step per this many batches, the loss scaled
        so the step equals one on a batch this many times larger; schedules count optimiser steps).
    Distributed (torchrun, :mod:`reslab.training.distributed`):
        ``batch_size`` is per process (rank); the global batch, which ``lr`` refers to, is
        ``batch_size x world size x accum_steps``. sync_bn: SyncBatchNorm across ranks (CUDA only).
    Execution:
        amp (auto | None | bf16 | fp16) and channels_last (auto | true | false): auto chooses for the machine
        and the network (:mod:`reslab.training.precision`), compile, device (auto | cpu | cuda | cuda:N), seed,
        deterministic (``torch.use_deterministic_algorithms``), threads (CPU threads for torch; None:
        torch's default -- one thread is as fast for tiny models and far more robust on a busy
        machine), log_every (log the epoch's running train loss and accuracy every this many batches, as
        tutorial 001 prints them; 0: once per epoch), out (the run directory), overwrite (replace a
        previous run's files in ``out`` instead of refusing to start).
    """

    model: str = "resnet20"
    model_args: dict[str, Any] = field(default_factory=dict)
    pretrained: bool | str | None = None
    freeze: str = "none"

    data: str = "cifar10"
    data_dir: str | None = None
    download: bool = False
    val_split: float = 0.0
    augment: bool = True
    cutout: int = 0
    image_size: int | None = None
    batch_size: int = 128
    eval_batch_size: int | None = None
    workers: int = 0
    data_args: dict[str, Any] = field(default_factory=dict)

    # The defaults are the best short recipe the project knows (configs/resnet_cifar10_fast.yaml,
    # measured in the README); the papers' recipes are configs that set every key they rely on.
    epochs: int = 30
    optimizer: str = "sgd"
    lr: float = 0.2
    momentum: float = 0.9
    nesterov: bool | None = None  # None: on for SGD with momentum (the default recipe), off otherwise
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 5e-4
    decay_norm_and_bias: bool = False
    schedule: str = "onecycle"
    milestones: list[float] | None = None
    milestone_fractions: list[float] | None = None
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    warmup_lr: float | None = None  # None: linear warm-up; a rate: constant warm-up at it
    onecycle_pct: float = 0.25
    onecycle_div: float = 25.0
    head_lr: float | None = None  # the classifier's lr (None: lr)
    backbone_lr_scale: float = 1.0  # the backbone's lr = head lr x this
    label_smoothing: float = 0.1
    grad_clip: float = 0.0
    aux_weight: float = 0.3
    ema: bool = True
    ema_decay: float = 0.999
    accum_steps: int = 1
    sync_bn: bool = False

    amp: str | None = "auto"  # auto: bf16 where the hardware runs it natively and faster (training/precision.py)
    channels_last: bool | str = "auto"  # auto: on with CUDA; on the CPU where the probe measures it faster
    compile: bool = False
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    threads: int | None = None
    log_every: int = 0
    out: str | None = None
    overwrite: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain Python types (what ``config.yaml`` and checkpoints hold)."""
        return _plain(dataclasses.asdict(self))

    def validate(self) -> TrainConfig:
        """Check types, ranges and choices; returns ``self``. Raises :class:`ConfigError` naming the key."""
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        if self.amp is not None:
            _check_choice("amp", self.amp, AMP_MODES)
        if self.channels_last != "auto" and not isinstance(self.channels_last, bool):
            raise ConfigError(f"channels_last must be true, false or auto, got {self.channels_last!r}")
        for key in ("epochs", "batch_size", "accum_steps"):
            _check_int(key, getattr(self, key), minimum=1)
        for key in ("cutout", "workers", "seed", "log_every"):
            _check_int(key, getattr(self, key), minimum=0)
        for key in ("eval_batch_size", "image_size", "threads"):
            if getattr(self, key) is not None:
                _check_int(key, getattr(self, key), minimum=1)
        for key in (
            "lr",
            "momentum",
            "weight_decay",
            "gamma",
            "warmup_epochs",
            "label_smoothing",
            "grad_clip",
            "aux_weight",
            "val_split",
        ):
            _check_float(key, getattr(self, key), minimum=0.0)
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.head_lr is not None and _check_float("head_lr", self.head_lr, minimum=0.0) <= 0:
            raise ConfigError(f"head_lr must be > 0, got {self.head_lr}")
        _check_float("backbone_lr_scale", self.backbone_lr_scale, minimum=0.0)
        if self.backbone_lr_scale == 0:
            raise ConfigError(
                "backbone_lr_scale 0 would still compute the backbone's gradients and update its BatchNorm "
                "statistics; to keep the backbone fixed use freeze: backbone (--freeze backbone)"
            )
        from .freeze import parse_freeze

        mode, stages = parse_freeze(self.freeze)
        self.freeze = mode if mode != "stages" else f"stages:{stages}"
        self.pretrained = normalize_pretrained(self.pretrained)
        if not 0.0 <= self.val_split < 1.0:
            raise ConfigError(f"val_split must be in [0, 1), got {self.val_split}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        _check_float("ema_decay", self.ema_decay, minimum=0.0)
        if not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in (0, 1), got {self.ema_decay}")
        _check_float("onecycle_pct", self.onecycle_pct, minimum=0.0)
        if not 0.0 < self.onecycle_pct < 1.0:
            raise ConfigError(f"onecycle_pct must be in (0, 1), got {self.onecycle_pct}")
        _check_float("onecycle_div", self.onecycle_div, minimum=1.0)
        if self.warmup_lr is not None:
            if _check_float("warmup_lr", self.warmup_lr, minimum=0.0) <= 0:
                raise ConfigError(f"warmup_lr must be > 0, got {self.warmup_lr}")
            if self.warmup_epochs <= 0:
                raise ConfigError(f"warmup_lr ({self.warmup_lr}) needs warmup_epochs > 0 (how long to train at it)")
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(f"warmup_epochs ({self.warmup_epochs}) must be shorter than the run ({self.epochs})")
        if self.nesterov is None:  # resolved here, so config.yaml and checkpoints hold what ran
            self.nesterov = self.optimizer == "sgd" and isinstance(self.momentum, (int, float)) and self.momentum > 0
        if self.nesterov and self.optimizer != "sgd":
            raise ConfigError(f"nesterov applies to optimizer 'sgd' only, not {self.optimizer!r}")
        if self.nesterov and self.momentum <= 0:
            raise ConfigError("nesterov needs momentum > 0")
        if not (isinstance(self.betas, (list, tuple)) and len(self.betas) == 2):
            raise ConfigError(f"betas must be two numbers, got {self.betas!r}")
        self.betas = [float(b) for b in self.betas]
        if self.milestones is not None and self.milestone_fractions is not None:
            raise ConfigError(
                f"give milestones (epochs, {self.milestones!r}) or milestone_fractions (fractions of the run, "
                f"{self.milestone_fractions!r}), not both"
            )
        if self.milestones is not None:
            if not isinstance(self.milestones, (list, tuple)) or not self.milestones:
                raise ConfigError(f"milestones must be a list of epochs, got {self.milestones!r}")
            ms = [_check_float("milestones", m, minimum=0.0) for m in self.milestones]
            if ms != sorted(ms) or any(m > self.epochs for m in ms):
                raise ConfigError(
                    f"milestones must be increasing epochs within the run (1..{self.epochs}), got {ms}; "
                    "milestone_fractions (e.g. [0.5, 0.75]) follow --epochs"
                )
            self.milestones = ms
        if self.milestone_fractions is not None:
            fractions = self.milestone_fractions
            if not isinstance(fractions, (list, tuple)) or not fractions:
                raise ConfigError(f"milestone_fractions must be a list of fractions of the run, got {fractions!r}")
            fs = [_check_float("milestone_fractions", f, minimum=0.0) for f in fractions]
            if fs != sorted(fs) or any(not 0.0 < f <= 1.0 for f in fs):
                raise ConfigError(f"milestone_fractions must be increasing fractions of the run in (0, 1], got {fs}")
            self.milestone_fractions = fs
        for key in ("model", "data", "device"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise ConfigError(f"{key} must be a non-empty string, got {getattr(self, key)!r}")
        for key in ("model_args", "data_args"):
            if not isinstance(getattr(self, key), dict):
                raise ConfigError(f"{key} must be a mapping, got {getattr(self, key)!r}")
        for key in (
            "download",
            "augment",
            "nesterov",
            "decay_norm_and_bias",
            "ema",
            "compile",
            "deterministic",
            "overwrite",
            "sync_bn",
        ):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key} must be true or false, got {getattr(self, key)!r}")
        for key in ("data_dir", "out"):  # a quoted flag or a YAML value reaches us with its ~ unexpanded
            value = getattr(self, key)
            if value is not None:
                if not isinstance(value, (str, Path)) or not str(value):
                    raise ConfigError(f"{key} must be a path, got {value!r}")
                setattr(self, key, os.path.expanduser(str(value)))
        check_data_args(self.data_args)
        return self

    def milestone_epochs(self) -> list[float]:
        """The multistep milestones in epochs: ``milestones``, ``milestone_fractions`` x ``epochs``, or
        50% and 75% of the run."""
        if self.milestones:
            return list(self.milestones)
        fractions = self.milestone_fractions or (0.5, 0.75)
        return [f * self.epochs for f in fractions]


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {value!r}")


def _check_int(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key} must be a whole number >= {minimum}, got {value!r}")
    return value


def _check_float(key: str, value: Any, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{key} must be >= {minimum}, got {value!r}")
    return float(value)


def _plain(value: Any) -> Any:
    """Convert to YAML/checkpoint-safe plain types: dicts, lists, str, int, float, bool, None."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None:
        return None
    for kind in (bool, int, float, str):  # subclasses (numpy.str_, TorchVersion) become the plain type
        if isinstance(value, kind):
            return kind(value)
    if hasattr(value, "item") and hasattr(value, "ndim") and value.ndim == 0:  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise ConfigError(f"cannot store {value!r} ({type(value).__name__}) in a configuration")


#: other tools' names for configuration keys, which difflib cannot guess (``learning_rate`` -> ``lr``)
KEY_ALIASES = {
    "learning_rate": "lr",
    "base_lr": "lr",
    "lr_schedule": "schedule",
    "lr_scheduler": "schedule",
    "scheduler": "schedule",
    "num_epochs": "epochs",
    "n_epochs": "epochs",
    "max_epochs": "epochs",
    "optim": "optimizer",
    "wd": "weight_decay",
    "bs": "batch_size",
    "dataset": "data",
    "arch": "model",
    "network": "model",
    "output_dir": "out",
    "out_dir": "out",
    "output": "out",
    "num_workers": "workers",
    "smoothing": "label_smoothing",
    "clip_grad": "grad_clip",
    "max_grad_norm": "grad_clip",
    "warmup": "warmup_epochs",
    "lr_milestones": "milestones",
    "lr_decay": "gamma",
    "mixed_precision": "amp",
    "model_kwargs": "model_args",
    "data_kwargs": "data_args",
    "weights": "pretrained",
}


def unknown_key_error(key: str, source: str) -> ConfigError:
    """An unknown key's error, naming where it came from and the keys it may have meant (another tool's name
    for one, then the closest spellings)."""
    alias = KEY_ALIASES.get(key.lower().replace("-", "_"))
    close = [alias] if alias else []
    close += [c for c in difflib.get_close_matches(key, list(FIELDS), n=3) if c not in close]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ConfigError(f"unknown configuration key {key!r} in {source}{hint}")


def config_from_dict(
    values: Mapping[str, Any],
    source: str = "the configuration",
    *,
    given: Mapping[str, str] | None = None,
    notes: list[str] | None = None,
) -> TrainConfig:
    """A validated :class:`TrainConfig` from a mapping; unknown keys raise :class:`ConfigError`.

    Args:
        values: configuration keys (the rest take their defaults).
        source: where they come from, for the messages.
        given: the keys the user set, each with where (:data:`GIVEN` for an override or flag, else the recipe
            file): those the run would not use are refused (:func:`check_used`); defaults never are.
        notes: receives a line for each recipe value the run does not use because an override changed the
            key it depends on (it is left at its default).
    """
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source} must be a mapping of configuration keys, got {type(values).__name__}")
    for key in values:
        if key not in FIELDS:
            raise unknown_key_error(str(key), source)
    config = TrainConfig(**dict(values))
    if given:
        check_used(config, given, notes)
    return config.validate()


# -- keys that only some runs use ----------------------------------------------------------------------
#: where a key came from when the user gave it as an override (a flag, a keyword of reslab.train)
GIVEN = "given"

#: key -> (the key that decides whether the run uses it, whether it does, what it needs); a value in
#: ``_HARMLESS`` (an explicit "off") is never refused
CONDITIONAL_KEYS: dict[str, tuple[str, Any, str]] = {
    "milestones": ("schedule", lambda c: c.schedule == "multistep", "--schedule multistep"),
    "milestone_fractions": ("schedule", lambda c: c.schedule == "multistep", "--schedule multistep"),
    "gamma": ("schedule", lambda c: c.schedule == "multistep", "--schedule multistep"),
    "onecycle_pct": ("schedule", lambda c: c.schedule == "onecycle", "--schedule onecycle"),
    "onecycle_div": ("schedule", lambda c: c.schedule == "onecycle", "--schedule onecycle"),
    "momentum": ("optimizer", lambda c: c.optimizer == "sgd", "--optimizer sgd"),
    "nesterov": ("optimizer", lambda c: c.optimizer == "sgd", "--optimizer sgd"),
    "betas": ("optimizer", lambda c: c.optimizer in ("adam", "adamw"), "--optimizer adam or adamw"),
    "ema_decay": ("ema", lambda c: c.ema is True, "--ema"),
    "cutout": ("augment", lambda c: c.augment is not False, "augmentation (no --no-augment)"),
    "backbone_lr_scale": (
        "freeze",
        lambda c: c.freeze != "backbone",
        "a backbone that trains (not --freeze backbone)",
    ),
}
_HARMLESS = {"nesterov": (False, None), "cutout": (0,)}


def check_used(config: TrainConfig, given: Mapping[str, str], notes: list[str] | None = None) -> None:
    """Refuse a key the user set that this run would not use (``--gamma`` with ``--schedule cosine``,
    ``--momentum`` with adam, ``--ema-decay`` without ``--ema``, ...), naming the flag and what it needs, so
    that ``config.yaml`` records nothing that did not apply. A recipe's value equal to the default is not a
    choice (a run's own ``config.yaml`` states every key, so that it can be repeated). A recipe's value whose
    deciding key an override changed (``--config resnet_cifar10 --schedule cosine``: the recipe's milestones)
    is not an error: it goes back to its default and ``notes`` says so. Runs before
    :meth:`TrainConfig.validate` (which checks the values themselves); a deciding key of no valid value is
    left to it.

    Raises:
        ConfigError: one line: the flag, where it was set, and the setting it needs.
    """
    for key, (decider, uses, needs) in CONDITIONAL_KEYS.items():
        if key not in given:
            continue
        value = getattr(config, key)
        if value is None or value in _HARMLESS.get(key, ()) or _invalid_decider(config, decider) or uses(config):
            continue
        field_ = FIELDS[key]
        default = field_.default_factory() if callable(field_.default_factory) else field_.default
        if given[key] != GIVEN and _same(value, default):
            continue  # a full configuration (a run's config.yaml) states every default: not a choice of the user's
        decided = getattr(config, decider)
        if given[key] != GIVEN and given.get(decider) == GIVEN:
            setattr(config, key, default)
            if notes is not None:
                notes.append(
                    f"{key} {value!r} (from {given[key]}) is not used with the given {decider} {decided!r}: left "
                    f"at its default ({needs} uses it)"
                )
            continue
        shown = _plain(value)
        what = f"{_flag(key)} {shown}" if given[key] == GIVEN else f"{key} {shown} (in {given[key]})"
        origin = given.get(decider)
        whose = "given" if origin == GIVEN else (f"from {origin}" if origin else "the default")
        raise ConfigError(
            f"{what} applies to {needs} only, but this run's {decider} is {_plain(decided)} ({whose}); "
            f"drop {_flag(key) if given[key] == GIVEN else key} or use {needs}"
        )


def _same(a: Any, b: Any) -> bool:
    a, b = _plain(a), _plain(b)
    return a == b or _same_number(a, b)


def _invalid_decider(config: TrainConfig, decider: str) -> bool:
    """Whether the deciding key's value is not one validate() accepts (validate names it)."""
    value = getattr(config, decider)
    if decider == "schedule":
        return value not in SCHEDULES
    if decider == "optimizer":
        return value not in OPTIMIZERS
    if decider in ("ema", "augment"):
        return not isinstance(value, bool)
    return not isinstance(value, str)


def config_warnings(config: TrainConfig) -> list[str]:
    """Lines a run's log gives as warnings: settings that run, but likely not as meant."""
    lines = []
    if config.freeze != "none" and config.pretrained is None:
        lines.append(
            f"--freeze {config.freeze} without --pretrained: the frozen layers keep their random initial weights "
            "(give --pretrained to fine-tune published weights)"
        )
    return lines


# -- data_args ---------------------------------------------------------------------------------------
#: build_data parameters that are not data_args: the configuration sets them (``name`` is ``data``)
#: or only evaluation commands use them
_DATA_ARGS_SET_ELSEWHERE = {"name": "data", "split_for_eval": None, "image_size_reason": None}


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def data_arg_types() -> dict[str, Any]:
    """The keys ``data_args`` accepts (``build_data``'s keyword parameters that no configuration key
    sets, and the data sources' own options), each with its type annotation."""
    from ..arguments import keyword_types
    from ..data import build_data
    from ..data.options import option_types

    types = {**keyword_types(build_data), **option_types()}
    types.pop("options")  # an options object: data_args give its fields instead
    return {name: hint for name, hint in types.items() if name not in FIELDS and name not in _DATA_ARGS_SET_ELSEWHERE}


def check_data_args(data_args: Mapping[str, Any]) -> None:
    """Refuse a ``data_args`` key that ``build_data`` does not take, one that a configuration key sets,
    and a value of the wrong type for a boolean/number/string parameter.

    Raises:
        ConfigError: naming the key (and the flag to use, or the accepted keys).
    """
    if not isinstance(data_args, Mapping) or not data_args:
        return
    from ..arguments import check_arg_type

    accepted = data_arg_types()
    for key, value in data_args.items():
        key = str(key)
        if key in FIELDS:
            raise ConfigError(
                f"data_args key {key!r} (--data-arg {key}=...) is a configuration key of its own: "
                f"use {_flag(key)} (or `{key}:` in a recipe)"
            )
        if key in _DATA_ARGS_SET_ELSEWHERE:
            instead = _DATA_ARGS_SET_ELSEWHERE[key]
            how = f"use --data (or `{instead}:` in a recipe)" if instead else "reslab sets it itself"
            raise ConfigError(f"data_args key {key!r} (--data-arg {key}=...) cannot be given here: {how}")
        if key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"unknown data_args key {key!r} (--data-arg {key}=...){hint} (accepted: {', '.join(sorted(accepted))})"
            )
        check_arg_type(f"data_args key {key!r} (--data-arg {key}=...)", value, accepted[key])


# -- files and merging ------------------------------------------------------------------------------
#: the recipes shipped inside the package (``reslab/configs/*.yaml``)
SHIPPED_CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


#: shipped files that are layers under a recipe, not recipes of their own
LAYER_CONFIGS = ("finetune",)
#: the fine-tuning layer: applied between the defaults and the user's recipe when ``pretrained`` is given
FINETUNE_CONFIG = SHIPPED_CONFIG_DIR / "finetune.yaml"


def shipped_configs() -> list[str]:
    """The names of the recipes shipped with reslab (``--config NAME`` finds them)."""
    return sorted(p.stem for p in SHIPPED_CONFIG_DIR.glob("*.yaml") if p.stem not in LAYER_CONFIGS)


def find_config(config: str | Path) -> Path:
    """The recipe file ``config`` names: a path if one exists there, else a shipped recipe of that
    name (``resnet_cifar10`` or ``resnet_cifar10.yaml``).

    Raises:
        ConfigError: neither exists (the message lists the shipped recipes).
    """
    path = Path(os.path.expanduser(str(config)))
    if path.exists():
        return path
    name = str(config)
    if "/" not in name and os.sep not in name:
        shipped = SHIPPED_CONFIG_DIR / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
        if shipped.is_file():
            return shipped
    raise ConfigError(
        f"configuration file {config} not found (and no shipped recipe of that name; shipped: "
        f"{', '.join(shipped_configs())})"
    )


#: a recipe's own key for lines the run's log repeats (what the recipe does differently, and why); not a
#: configuration key
RECIPE_NOTES = "notes"


@dataclass(frozen=True)
class RecipeNote:
    """One line of a recipe's ``notes:``, for the run's log: ``text``, and the configuration keys it is
    about (``needs``): it is said only where the run has each of them set (not off / none), so that
    ``--pretrained none`` drops a note about the weights' preprocessing."""

    text: str
    needs: tuple[str, ...] = ()

    def applies(self, config: TrainConfig) -> bool:
        return all(_is_on(key, getattr(config, key)) for key in self.needs)


def _is_on(key: str, value: Any) -> bool:
    """Whether a configuration value turns its setting on (weights given; not None / off / 0 / "none")."""
    if key == "pretrained":
        return normalize_pretrained(value) is not None
    return value not in (None, False, 0, "", "none")


def _recipe_note(entry: Any, path: Path) -> RecipeNote:
    """A ``notes:`` entry: a line, or ``{note: LINE, needs: [KEY, ...]}``."""
    if isinstance(entry, str):
        return RecipeNote(entry)
    if isinstance(entry, dict) and isinstance(entry.get("note"), str) and set(entry) <= {"note", "needs"}:
        needs = entry.get("needs", [])
        if isinstance(needs, list) and all(isinstance(k, str) for k in needs):
            for key in needs:
                if key not in FIELDS:
                    raise unknown_key_error(key, f"{path} ({RECIPE_NOTES}: needs)")
            return RecipeNote(entry["note"], tuple(needs))
    raise ConfigError(
        f"{path}: each of {RECIPE_NOTES} must be a line (a string) or {{note: LINE, needs: [KEY, ...]}}, got {entry!r}"
    )


def load_config_file(path: str | Path, notes: list[RecipeNote] | None = None) -> dict[str, Any]:
    """Read a YAML recipe (a path, or the name of a shipped recipe) into a dict of known keys (not yet
    merged with defaults). A recipe's ``notes:`` (each a line, or ``{note: LINE, needs: [KEY, ...]}``: said
    only where those keys are set) go to ``notes`` as :class:`RecipeNote` (:func:`resolve_config` keeps
    those that apply, for the run's log).

    Raises:
        ConfigError: the file is missing, is not UTF-8 / valid YAML / a mapping, or has an unknown key
            (the message names the key and the file).
    """
    path = find_config(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"configuration file {path} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}); "
            "is it a YAML recipe?"
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot read configuration file {path}: {e.strerror or e}") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping of configuration keys, not a {type(values).__name__}")
    lines = values.pop(RECIPE_NOTES, None)
    if lines is not None:
        if not isinstance(lines, list):
            raise ConfigError(f"{path}: {RECIPE_NOTES} must be a list of lines, got {lines!r}")
        parsed = [_recipe_note(entry, path) for entry in lines]
        if notes is not None:
            notes.extend(RecipeNote(f"recipe {path.stem}: {n.text}", n.needs) for n in parsed)
    for key in values:
        if key not in FIELDS:
            raise unknown_key_error(str(key), str(path))
    return values


#: keys whose overrides are merged into the recipe's value key by key instead of replacing it
MERGED_KEYS = ("model_args", "data_args")


def merge_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``overrides``; ``model_args`` / ``data_args`` merge key by key (an override
    adds keys to the recipe's and replaces those it repeats), and milestones given in either form
    (``milestones`` or ``milestone_fractions``) replace the recipe's in the other. The one merge rule
    of the command line and of :func:`reslab.train`."""
    values = dict(base)
    for key, value in overrides.items():
        if key in MERGED_KEYS and isinstance(value, Mapping) and isinstance(values.get(key), Mapping):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
        other = _MILESTONE_FORMS.get(key)
        if other and value is not None and other not in overrides and values.get(other) is not None:
            values[other] = None  # --milestones replaces a recipe's milestone_fractions, and vice versa
    return values


_MILESTONE_FORMS = {"milestones": "milestone_fractions", "milestone_fractions": "milestones"}


def resolve_config(
    config: TrainConfig | Mapping[str, Any] | str | Path | None = None,
    *,
    notes: list[str] | None = None,
    **overrides: Any,
) -> TrainConfig:
    """Merge defaults < the fine-tuning layer (``configs/finetune.yaml``, only when ``pretrained`` is given
    and ``config`` is not a resolved TrainConfig) < ``config`` (a TrainConfig, mapping, YAML path or shipped
    recipe name) < ``overrides`` (see :func:`merge_overrides`); validate. ``notes`` (a list) receives a line
    saying which fine-tuning defaults applied.

    Raises:
        ConfigError: an unknown key (naming it and where it came from) or a bad value.
    """
    values: dict[str, Any] = {}
    source = "the configuration"
    recipe_notes: list[RecipeNote] = []
    first = len(notes) if notes is not None else 0
    if isinstance(config, TrainConfig):
        values = config.to_dict()
    elif isinstance(config, (str, Path)):
        values = load_config_file(config, notes=recipe_notes)
        source = str(config)
    elif isinstance(config, Mapping):
        values = dict(config)
    elif config is not None:
        raise ConfigError(f"config must be a TrainConfig, a mapping or a YAML path, got {type(config).__name__}")
    if not isinstance(config, TrainConfig):
        for key in values:
            if key not in FIELDS:
                raise unknown_key_error(str(key), source)
    for key in overrides:
        if key not in FIELDS:
            raise unknown_key_error(key, "the overrides")
    given: dict[str, str] = {}
    if not isinstance(config, TrainConfig):
        given = {key: source for key in values}
        values = _finetune_layer(values, overrides, notes)
    given.update({key: GIVEN for key in overrides})
    resolved = config_from_dict(merge_overrides(values, overrides), given=given, notes=notes)
    if notes is not None:  # the recipe's own lines first, those that apply to the run
        notes[first:first] = [n.text for n in recipe_notes if n.applies(resolved)]
    return resolved


def _finetune_layer(values: dict[str, Any], overrides: Mapping[str, Any], notes: list[str] | None) -> dict[str, Any]:
    """``values`` on top of the fine-tuning layer when ``pretrained`` is given (else ``values``)."""
    pretrained = overrides["pretrained"] if "pretrained" in overrides else values.get("pretrained")
    if normalize_pretrained(pretrained) is None:
        return values
    layer = load_config_file(FINETUNE_CONFIG)
    applied = {k: v for k, v in layer.items() if k not in values and k not in overrides}
    if notes is not None and applied:
        shown = ", ".join(f"{k}={v}" for k, v in applied.items())
        notes.append(f"fine-tuning defaults ({FINETUNE_CONFIG.name}, since pretrained is given): {shown}")
    return {**layer, **values}


def save_config(config: TrainConfig, path: str | Path) -> None:
    """Write the resolved configuration as YAML (keys in declaration order)."""
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def config_differences(old: TrainConfig, new_values: Mapping[str, Any]) -> list[str]:
    """Keys in ``new_values`` whose value differs from ``old`` (runtime-only keys excepted; ``amp`` and
    ``channels_last`` of ``"auto"`` match what a run chose for them, which is what its config records)."""
    old_plain = old.to_dict()
    diffs = []
    for key, value in new_values.items():
        if key in RUNTIME_KEYS or (key in AUTO_KEYS and value == "auto"):
            continue
        if not _same(value, old_plain.get(key)):
            diffs.append(key)
    return diffs


def _same_number(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return all(x == y or _same_number(x, y) for x, y in zip(a, b))
    return False
