"""The training configuration: one flat dataclass, read from YAML recipes and overridden by flags.

A run's resolved configuration is written to its run directory (``config.yaml``) and stored in its
checkpoints, so a run can be resumed, evaluated or repeated from either alone.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("multistep", "cosine", "onecycle", "constant")
AMP_MODES = ("bf16", "fp16")

#: keys that only say where or how fast a run executes, not what it computes: a resumed run may change
#: them (the data may have moved, the run may continue on another device)
RUNTIME_KEYS = frozenset({"data_dir", "download", "workers", "device", "compile", "out", "threads", "overwrite"})


@dataclass
class TrainConfig:
    """Everything a training run needs; field names are the YAML keys (flags use dashes).

    Model:
        model: registry name (``reslab list``). model_args: constructor overrides, e.g.
        ``{"widths": [8, 16, 32]}`` (stored in checkpoints so eval/predict rebuild the same network).
    Data (passed to ``reslab.data.build_data``):
        data, data_dir, download, val_split, augment, cutout, image_size, batch_size,
        eval_batch_size, workers; data_args: any further ``build_data`` keyword (``limit``,
        ``num_samples``, ``num_classes``, ``channels``, ``url``, ``cifar100_labels``, ``strict``).
    Optimisation:
        epochs; optimizer (sgd | adam | adamw), lr, momentum, nesterov (SGD), betas (Adam/AdamW),
        weight_decay, decay_norm_and_bias (False exempts BN parameters and biases from weight decay);
        schedule (multistep | cosine | onecycle | constant), milestones (epochs; default 50% and 75%
        of the run, as the ResNet paper), gamma (multi-step factor), warmup_epochs (linear warm-up,
        combinable with any schedule), onecycle_pct (fraction of the run rising to ``lr``),
        onecycle_div (one-cycle starts at ``lr / onecycle_div``); label_smoothing; grad_clip (max
        gradient norm, 0: off); aux_weight (weight of auxiliary-classifier losses, 0.3 as GoogLeNet);
        ema, ema_decay (an exponential moving average of the weights, evaluated alongside).
    Execution:
        amp (None | bf16 | fp16), channels_last, compile, device (auto | cpu | cuda | cuda:N), seed,
        deterministic (``torch.use_deterministic_algorithms``), threads (CPU threads for torch; None:
        torch's default -- one thread is as fast for tiny models and far more robust on a busy
        machine), out (the run directory), overwrite (replace a previous run's files in ``out``
        instead of refusing to start).
    """

    model: str = "resnet20"
    model_args: dict[str, Any] = field(default_factory=dict)

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

    epochs: int = 30
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 5e-4
    decay_norm_and_bias: bool = True
    schedule: str = "cosine"
    milestones: list[float] | None = None
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    onecycle_pct: float = 0.25
    onecycle_div: float = 25.0
    label_smoothing: float = 0.0
    grad_clip: float = 0.0
    aux_weight: float = 0.3
    ema: bool = False
    ema_decay: float = 0.999

    amp: str | None = None
    channels_last: bool = False
    compile: bool = False
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    threads: int | None = None
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
        for key in ("epochs", "batch_size"):
            _check_int(key, getattr(self, key), minimum=1)
        for key in ("cutout", "workers", "seed"):
            _check_int(key, getattr(self, key), minimum=0)
        for key in ("eval_batch_size", "image_size", "threads"):
            if getattr(self, key) is not None:
                _check_int(key, getattr(self, key), minimum=1)
        for key in ("lr", "momentum", "weight_decay", "gamma", "warmup_epochs", "label_smoothing",
                    "grad_clip", "aux_weight", "val_split"):  # fmt: skip
            _check_float(key, getattr(self, key), minimum=0.0)
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
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
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(f"warmup_epochs ({self.warmup_epochs}) must be shorter than the run ({self.epochs})")
        if self.nesterov and self.optimizer != "sgd":
            raise ConfigError(f"nesterov applies to optimizer 'sgd' only, not {self.optimizer!r}")
        if self.nesterov and self.momentum <= 0:
            raise ConfigError("nesterov needs momentum > 0")
        if not (isinstance(self.betas, (list, tuple)) and len(self.betas) == 2):
            raise ConfigError(f"betas must be two numbers, got {self.betas!r}")
        self.betas = [float(b) for b in self.betas]
        if self.milestones is not None:
            if not isinstance(self.milestones, (list, tuple)) or not self.milestones:
                raise ConfigError(f"milestones must be a list of epochs, got {self.milestones!r}")
            ms = [_check_float("milestones", m, minimum=0.0) for m in self.milestones]
            if ms != sorted(ms) or any(m > self.epochs for m in ms):
                raise ConfigError(f"milestones must be increasing epochs within the run (1..{self.epochs}), got {ms}")
            self.milestones = ms
        for key in ("model", "data", "device"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise ConfigError(f"{key} must be a non-empty string, got {getattr(self, key)!r}")
        for key in ("model_args", "data_args"):
            if not isinstance(getattr(self, key), dict):
                raise ConfigError(f"{key} must be a mapping, got {getattr(self, key)!r}")
        for key in ("download", "augment", "nesterov", "decay_norm_and_bias", "ema", "channels_last",
                    "compile", "deterministic", "overwrite"):  # fmt: skip
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key} must be true or false, got {getattr(self, key)!r}")
        return self


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


def unknown_key_error(key: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(FIELDS), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ConfigError(f"unknown configuration key {key!r} in {source}{hint}")


def config_from_dict(values: Mapping[str, Any], source: str = "the configuration") -> TrainConfig:
    """A validated :class:`TrainConfig` from a mapping; unknown keys raise :class:`ConfigError`."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source} must be a mapping of configuration keys, got {type(values).__name__}")
    for key in values:
        if key not in FIELDS:
            raise unknown_key_error(str(key), source)
    return TrainConfig(**dict(values)).validate()


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML recipe into a dict of known keys (not yet merged with defaults).

    Raises:
        ConfigError: the file is missing, is not valid YAML / not a mapping, or has an unknown key
            (the message names the key and the file).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} not found") from None
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
    for key in values:
        if key not in FIELDS:
            raise unknown_key_error(str(key), str(path))
    return values


def resolve_config(config: TrainConfig | Mapping[str, Any] | str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Merge defaults < ``config`` (a TrainConfig, mapping or YAML path) < ``overrides``; validate.

    Raises:
        ConfigError: an unknown key (naming it and where it came from) or a bad value.
    """
    values: dict[str, Any] = {}
    if isinstance(config, TrainConfig):
        values = config.to_dict()
    elif isinstance(config, (str, Path)):
        values = load_config_file(config)
        source = str(config)
    elif isinstance(config, Mapping):
        values = dict(config)
        source = "the configuration"
    elif config is not None:
        raise ConfigError(f"config must be a TrainConfig, a mapping or a YAML path, got {type(config).__name__}")
    if not isinstance(config, TrainConfig):
        for key in values:
            if key not in FIELDS:
                raise unknown_key_error(str(key), source)
    for key in overrides:
        if key not in FIELDS:
            raise unknown_key_error(key, "the overrides")
    values.update(overrides)
    return config_from_dict(values)


def save_config(config: TrainConfig, path: str | Path) -> None:
    """Write the resolved configuration as YAML (keys in declaration order)."""
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def config_differences(old: TrainConfig, new_values: Mapping[str, Any]) -> list[str]:
    """Keys in ``new_values`` whose value differs from ``old`` (runtime-only keys excepted)."""
    old_plain = old.to_dict()
    diffs = []
    for key, value in new_values.items():
        if key in RUNTIME_KEYS:
            continue
        if _plain(value) != old_plain.get(key) and not _same_number(_plain(value), old_plain.get(key)):
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
