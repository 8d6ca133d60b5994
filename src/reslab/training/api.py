"""The public entry points: :func:`train` (a new run, or ``resume=RUN_DIR``) and :func:`predict`
(:func:`evaluate` lives in :mod:`reslab.training.evaluation`)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, DataError
from ..factory import resolve_pretrained
from .checkpoint import checkpoint_config, load_checkpoint
from .config import (
    FIELDS,
    RUNTIME_KEYS,
    TrainConfig,
    config_differences,
    config_warnings,
    merge_overrides,
    resolve_config,
    unknown_key_error,
)
from .distributed import DistContext, check_sync_bn, job_id, launched_by_torchrun, max_restarts, restart_count
from .precision import inference_precision
from .run_dir import MARKER, RunDir, check_out, check_writable, quoted, replaced_dirs
from .run_lock import check_not_in_use
from .runtime import as_layout, autocast, check_amp, check_compile, prepare_model, resolve_device
from .trainer import Trainer, TrainResult

logger = logging.getLogger("reslab.training")


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _setup_runtime(config: TrainConfig, device: torch.device) -> None:
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    if config.deterministic:
        # cuBLAS reads this when it starts; harmless on the CPU
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not config.deterministic


def _folder_image_size(config: TrainConfig) -> tuple[int | None, dict[str, Any]]:
    """A folder's default image size: the model's registered input size (the data layer knows no models)."""
    if config.data != "folder" or config.image_size is not None or "image_size" in config.data_args:
        return config.image_size, {}
    from ..models import get_model_entry

    try:
        entry = get_model_entry(config.model)
    except ConfigError:  # a network passed in by the caller, not in the registry: the data decides
        return None, {}
    size = int(entry.input_size[-1])
    return size, {"image_size_reason": f"the input size registered for model {entry.name} (--image-size overrides)"}


def _build_data(config: TrainConfig, device: torch.device, weights_prep: tuple[dict | None, str] | None = None):
    """The run's data; ``weights_prep`` = (the weights' preprocessing, their name) when ``pretrained``."""
    from ..data import build_data
    from .loading import preprocessing_data_args

    image_size, extra = _folder_image_size(config)
    notes: list[str] = []
    if weights_prep is not None:
        prep_args, notes = preprocessing_data_args(
            config.data, weights_prep[0], source=weights_prep[1], given=config.data_args, image_size=config.image_size
        )
        if "image_size" in prep_args:
            image_size = prep_args.pop("image_size")
            extra = {"image_size_reason": prep_args.pop("image_size_reason")}
        extra.update(prep_args)
    bundle = build_data(
        config.data,
        config.data_dir,
        download=config.download,
        batch_size=config.batch_size,
        eval_batch_size=config.eval_batch_size,
        device=device,
        augment=config.augment,
        cutout=config.cutout,
        val_split=config.val_split,
        seed=config.seed,
        workers=config.workers,
        image_size=image_size,
        channels_last=config.channels_last is True,  # auto: decided with the network (the trainer converts)
        **extra,
        **config.data_args,
    )
    if weights_prep is not None:
        prep, source = weights_prep
        bundle.info["weights_preprocessing"] = prep
        bundle.info["preprocessing_source"] = source
        if prep is not None and "mean" not in config.data_args:
            bundle.info["preprocessing"]["mode"] = prep["mode"]
        bundle.notes.extend(notes)
    return bundle


def _build_model(config: TrainConfig, bundle, *, checkpoint: dict[str, Any] | None = None, weights=None) -> nn.Module:
    """The run's network: with ``weights`` (``config.pretrained`` resolved), built with them
    (``create_model(pretrained=...)``); resuming (``checkpoint``), rebuilt from the checkpoint's model_args
    (the weights' own arguments included) without fetching the weights again -- the trainer loads the
    checkpoint's. Then frozen as ``config.freeze`` says."""
    from ..factory import create_model
    from ..models import build_model
    from .freeze import freeze_model

    shape = {"num_classes": bundle.num_classes, "in_chans": bundle.input_size[0]}
    if checkpoint is not None:
        args = dict(checkpoint.get("model_args") or config.model_args)
        model = build_model(config.model, **shape, **args)
        if hasattr(model, "check_weights_revision"):
            model.check_weights_revision(checkpoint.get("arch_revision"), str(checkpoint.get("path", "the checkpoint")))
        model.model_args = args
    elif weights is not None:
        with _held_adaptation_lines():  # the run's log gives them (trainer warnings: train.log, and -q keeps them)
            model = create_model(config.model, pretrained=weights, **shape, **config.model_args)
        _new_head_for_other_classes(model, bundle)
    else:
        model = build_model(config.model, **shape, **config.model_args)
    frozen = freeze_model(model, config.freeze)
    if config.freeze != "none":
        bundle.notes.append(frozen.describe())
    check = getattr(model, "check_input", None)
    if check is not None:  # refuse an image size the network cannot take now, not mid-epoch
        check(torch.empty((1, *bundle.input_size), device="meta"))
    return model


@contextlib.contextmanager
def _held_adaptation_lines():
    """Hold back create_model's lines on what it changed in the weights' network (a new classifier, adapted
    input channels): a training run logs them itself (``model.weights_adapted``), where train.log gets them."""
    weights_logger = logging.getLogger("reslab.weights")

    def hold(record: logging.LogRecord) -> bool:
        return not getattr(record, "weights_adapted", False)

    weights_logger.addFilter(hold)
    try:
        yield
    finally:
        weights_logger.removeFilter(hold)


def _new_head_for_other_classes(model: nn.Module, bundle) -> None:
    """Weights whose classifier knows other classes than the data's -- at the same count (a 5-class
    checkpoint fine-tuned on 5 other classes) -- get a new classifier: the old one would start every
    class from another class's evidence. The same names in the same order keep it (training goes on)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    names = cfg.get("class_names")
    if cfg.get("head_replaced") or not names or list(names) == list(bundle.class_names):
        return
    model.reset_classifier(bundle.num_classes)
    cfg.update(head_replaced=True, class_names=None)
    shown = ", ".join(map(str, names[:3])) + (", ..." if len(names) > 3 else "")
    bundle.notes.append(f"new classifier: the weights' classes ({shown}) are not the data's")


def _default_out(config: TrainConfig) -> Path:
    return Path("runs") / f"{config.model}-{config.data}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(
    config: TrainConfig | Mapping[str, Any] | str | Path | None = None,
    *,
    resume: str | Path | None = None,
    bundle: Any = None,
    network: nn.Module | None = None,
    progress: str = "auto",
    **overrides: Any,
) -> TrainResult:
    """Train a model; every run writes a run directory (config, metrics, curves, checkpoints).

    Args:
        config: a :class:`TrainConfig`, a mapping of its keys, a YAML recipe path, or the name of a
            shipped recipe (``"resnet_cifar10"``); None: the defaults (the ``resnet_cifar10_fast`` recipe).
        resume: a run directory (or its ``last.pt``) to continue exactly where it stopped. The run's
            stored configuration is used; ``config``/``overrides`` may only repeat it or change where
            it runs (``device``, ``workers``, ``data_dir``, ``download``, ``compile``).
        bundle: a ready ``reslab.data.DataBundle`` (default: built from the configuration).
        network: a ready ``nn.Module`` (default: ``create_model(config.model, **config.model_args)``);
            checkpoints name its ``model_name`` attribute (else ``config.model``), which eval/predict
            rebuild from the registry.
        progress: ``auto`` (a bar on a terminal, else one line per epoch), ``bar``, ``plain``, ``none``.
        **overrides: configuration keys, e.g. ``model="resnet20", data="cifar10", epochs=5``; they
            replace the recipe's values, except ``model_args`` / ``data_args``, which add to (and
            override keys of) the recipe's -- as the command line's flags do
            (:func:`reslab.training.config.merge_overrides`).

    Returns:
        :class:`TrainResult`: ``.run_dir``, ``.final`` (test metrics of a finished run),
        ``.best_top1``, ``.interrupted`` (the signal name if SIGINT/SIGTERM stopped it), ``.history``.

    Under torchrun (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set) the run is one rank of a
    DistributedDataParallel job: ``batch_size`` is per rank, rank 0 alone writes the run directory, and a
    job torchrun restarted (``--max-restarts``) continues from ``out``'s ``last.pt`` by itself
    (:mod:`reslab.training.distributed`, README "Multi-GPU").

    Raises:
        ConfigError: an unknown key or bad value, an impossible combination (fp16 on the CPU,
            --compile where unsupported, --sync-bn on the CPU), an ``out`` that is a file, not writable,
            not empty (without ``overwrite``) or not a reslab run (with it), or a resume that conflicts
            with the run's configuration or has nothing left to do. All are raised before any data is
            read (under torchrun: on every rank).
        UnknownModelError, DataError, CheckpointError: a bad model name, unreadable data, or a
            missing/corrupt checkpoint to resume.
        TrainingError: a non-finite loss (the last good checkpoint is kept).
    """
    if launched_by_torchrun():
        return _train_distributed(
            config, resume=resume, bundle=bundle, network=network, progress=progress, overrides=overrides
        )
    if resume is not None:
        return _resume(resume, config, bundle=bundle, network=network, progress=progress, overrides=overrides)
    return _new_run(config, bundle=bundle, network=network, progress=progress, overrides=overrides)


def _train_distributed(config, *, resume, bundle, network, progress: str, overrides: dict[str, Any]) -> TrainResult:
    """One rank of a torchrun job: join the process group, train (a new run, a resume, or the continuation
    of a job torchrun restarted), leave the group -- on errors too."""
    ctx = DistContext.from_env()
    # read before the group exists: the same command line gives every rank the same error
    preview = resolve_config(config, **overrides) if resume is None else None
    if preview is not None and not preview.out and max_restarts() > 0:
        raise ConfigError(
            f"torchrun --max-restarts {max_restarts()} needs --out DIR: a restarted job continues from DIR/last.pt "
            "(a default run directory is new at every start)"
        )
    device_name = str(overrides.get("device") or (preview.device if preview is not None else "auto"))
    ctx.init(ctx.device_for(device_name))
    try:
        if resume is None and restart_count() > 0:
            resume, overrides = _restarted_job(ctx, Path(preview.out), overrides)
        if resume is not None:
            result = _resume(
                resume, config, bundle=bundle, network=network, progress=progress, overrides=overrides, ctx=ctx
            )
        else:
            result = _new_run(config, bundle=bundle, network=network, progress=progress, overrides=overrides, ctx=ctx)
        ctx.barrier_before_leaving()  # every rank leaves the group together
        return result
    finally:
        ctx.destroy()


def _restarted_job(ctx: DistContext, out: Path, overrides: dict[str, Any]) -> tuple[Path | None, dict[str, Any]]:
    """A job torchrun restarted: resume ``out`` when it holds a ``last.pt`` (``--overwrite`` notwithstanding:
    the run is this job's own). Without one (the first attempt died before its first checkpoint), start
    again in it when its marker names this job; a directory of another run is left to check_out."""
    decision = None
    if ctx.is_main:
        if (out / "last.pt").exists():
            decision = "resume"
        else:
            try:
                own = json.loads((out / MARKER).read_text()).get("job") == job_id() is not None
            except (OSError, ValueError, AttributeError):
                own = False
            decision = "own" if own else None
    decision = ctx.broadcast(decision)
    if decision == "resume":
        logger.warning(
            "torchrun restarted the job (attempt %d): continuing from %s", restart_count() + 1, out / "last.pt"
        )
        return out, {k: v for k, v in overrides.items() if k != "overwrite"}
    if decision == "own":
        logger.warning(
            "torchrun restarted the job (attempt %d) before its first checkpoint: starting again in %s",
            restart_count() + 1,
            out,
        )
        return None, {**overrides, "overwrite": True}
    return None, overrides


def _shard_bundle(bundle: Any, ctx: DistContext) -> None:
    """Give each loader this rank's shard; refuse a training split some rank would get no samples of."""
    if not ctx.active:
        return
    for split in ("train", "val", "test"):
        loader = getattr(bundle, split, None)
        if loader is None:
            continue
        if not hasattr(loader, "shard"):
            raise ConfigError(f"the {split} loader ({type(loader).__name__}) cannot be sharded across torchrun ranks")
        loader.shard(ctx.rank, ctx.world_size)
    train = bundle.train
    last = train.global_batch_rows(len(train) - 1)
    if last < ctx.world_size:
        raise ConfigError(
            f"the training split's last global batch has {last} sample(s) ({train.num_samples} samples, global "
            f"batch {train.global_batch_size}), fewer than the {ctx.world_size} ranks, so a rank would have none; "
            "choose a --batch-size that leaves no such remainder"
        )


def _new_run(
    config, *, bundle, network, progress: str, overrides: dict[str, Any], ctx: DistContext | None = None
) -> TrainResult:
    """A new run (of one process, or one rank of a torchrun job)."""
    ctx = ctx or DistContext()
    notes: list[str] = []
    cfg = resolve_config(config, notes=notes, **overrides)
    with ctx.all_or_none("set-up"):
        bundle, net, device, weights_prep = _set_up_new(cfg, bundle, network, ctx)
    out = Path(cfg.out) if cfg.out else _default_out(cfg)
    out = ctx.broadcast(out)  # the default directory's time stamp is rank 0's
    run_dir = RunDir(out, eval_split=_eval_split(bundle), writer=ctx.is_main)
    warnings = [*config_warnings(cfg), *_unused_settings(cfg, net), *getattr(net, "weights_adapted", [])]
    if cfg.sync_bn and not ctx.active:
        warnings.append("--sync-bn has no effect in a single process (it syncs BatchNorm across torchrun's ranks)")
    trainer = Trainer(
        cfg,
        net,
        bundle,
        run_dir,
        device=device,
        model_spec=_model_spec(cfg, net, bundle),
        progress=progress,
        notes=notes,
        warnings=warnings,
        dist=ctx,
    )
    try:  # rank 0 holds the run directory's lock from here until training ends (run_lock.py)
        with ctx.all_or_none("creating the run directory"):
            run_dir.open(overwrite=cfg.overwrite, unique=not cfg.out)
        run_dir.path = ctx.broadcast(run_dir.path)
        cfg.out = str(run_dir.path)
        try:
            with ctx.all_or_none("writing config.yaml"):
                run_dir.write_config(cfg, comment=_batch_comment(trainer))
            return trainer.fit()
        except BaseException:
            try:
                run_dir.restore()  # no checkpoint of the new run yet: the previous run's files go back
            except Exception as e:  # never hide the run's own error behind this one
                logger.error("could not put the previous run's files back (%s); they are in %s", e, run_dir.path)
            raise
    finally:
        run_dir.unlock()


def _unused_settings(cfg: TrainConfig, net: nn.Module) -> list[str]:
    """Warnings for settings this run would not use that only the data set or the network decide (the keys
    whose use another key decides are refused earlier: ``config.check_used``)."""
    lines = []
    default_aux = FIELDS["aux_weight"].default
    if cfg.aux_weight != default_aux and not getattr(net, "aux_logits", False):
        lines.append(
            f"--aux-weight {cfg.aux_weight} is not used: {cfg.model} has no auxiliary classifiers "
            "(googlenet_paper has two)"
        )
    if cfg.workers and cfg.data != "folder":
        lines.append(
            f"--workers {cfg.workers} is not used: {cfg.data} is held in memory and batched on the device "
            "(workers decode image folders)"
        )
    return lines


def _batch_comment(trainer: Trainer) -> str | None:
    return trainer.batch_line() if trainer.dist.active or trainer.accum_steps > 1 else None


def _set_up_new(cfg: TrainConfig, bundle: Any, network: nn.Module | None, ctx: DistContext):
    """Checks, data and model of a new run (nothing is written): (bundle, network, device, weights_prep)."""
    if network is None:  # a bad model name or model argument fails before any data is read
        from ..models.registry import check_overrides

        check_overrides(cfg.model, cfg.model_args)
    elif cfg.pretrained is not None or cfg.freeze != "none":
        raise ConfigError("pretrained and freeze apply to networks reslab builds, not to a network passed in")
    # the weights' preprocessing is known (and unknown weights are refused) before any data is read; the
    # weights are parsed here once, and a local file read once (its preprocessing, then its tensors)
    weights = resolve_pretrained(cfg.model, cfg.pretrained) if network is None else None
    weights_prep = (weights.preprocessing, weights.name) if weights is not None else None
    device = ctx.device if ctx.active else resolve_device(cfg.device)
    check_amp(cfg.amp, device)
    if cfg.compile:
        check_compile(device)
    check_sync_bn(cfg.sync_bn, device)
    # everything about --out is checked now, but nothing is written until the data and model are ready
    if ctx.is_main:  # the only rank that writes
        if cfg.out:
            check_out(Path(cfg.out), cfg.overwrite)
        else:
            check_writable(_default_out(cfg).parent, what="the default run directory")
    _setup_runtime(cfg, device)
    seed_everything(cfg.seed)
    bundle = bundle if bundle is not None else _build_data(cfg, device, weights_prep)
    _shard_bundle(bundle, ctx)
    net = network if network is not None else _build_model(cfg, bundle, weights=weights)
    _check_batchnorm_batches(bundle.train, net, ctx)
    return bundle, net, device, weights_prep


def _check_batchnorm_batches(train: Any, net: nn.Module, ctx: DistContext) -> None:
    """Refuse a training split so small that some rank's batch holds one image while the network has BatchNorm
    (which cannot train on it): a larger split's small last batch joins the one before (data/loader.py), but a
    split of one batch has none before it."""
    bounds = getattr(train, "batch_bounds", None)
    if bounds is None or not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()):
        return
    from ..data.loader import MIN_TRAIN_BATCH, rank_bounds

    world, rank = (ctx.world_size, ctx.rank) if ctx.active else (1, 0)
    for lo, hi in rank_bounds(bounds(), train.batch_size, world, rank):
        if 0 < hi - lo < MIN_TRAIN_BATCH:
            ranks = f" on rank {ctx.rank} of {ctx.world_size}" if ctx.active else ""
            raise ConfigError(
                f"the training split's batch of {hi - lo} image{ranks} ({train.num_samples} training "
                f"image{'s' if train.num_samples != 1 else ''}) cannot "
                f"train the network's BatchNorm, which needs at least {MIN_TRAIN_BATCH} images per batch; use more "
                "training images"
            )


def _eval_split(bundle: Any) -> str:
    """The split the per-epoch evaluation measures: "test" when no validation split was held out."""
    return "test" if getattr(bundle, "val_is_test", False) else "val"


def _model_spec(cfg: TrainConfig, net: nn.Module, bundle) -> dict[str, Any]:
    from ..models.base import ARCH_REVISION

    return {
        "arch_revision": ARCH_REVISION,
        "model_name": getattr(net, "model_name", cfg.model),
        # the network's own record where it has one: pretrained weights add the arguments they need
        # (shortcut_pad, transform_input, ...), so eval / predict rebuild the same network without them
        "model_args": _plain_args(getattr(net, "model_args", None), cfg.to_dict()["model_args"]),
        "num_classes": int(bundle.num_classes),
        "in_chans": int(bundle.input_size[0]),
    }


def _plain_args(model_args: Any, fallback: dict[str, Any]) -> dict[str, Any]:
    from .config import _plain

    return _plain(dict(model_args)) if isinstance(model_args, Mapping) else fallback


def _resume(
    resume: str | Path,
    config: TrainConfig | Mapping[str, Any] | str | Path | None,
    *,
    bundle: Any,
    network: nn.Module | None,
    progress: str,
    overrides: dict[str, Any],
    ctx: DistContext | None = None,
) -> TrainResult:
    ctx = ctx or DistContext()
    path = Path(resume)
    with ctx.all_or_none("reading the checkpoint"):
        if ctx.is_main:  # a run still training in it: refused before anything is read
            check_not_in_use(path if path.is_dir() else path.parent, RESUME_IN_USE_HINT)
        ckpt = _read_resume_checkpoint(path) if ctx.is_main else None
    ckpt = ctx.broadcast(ckpt)  # rank 0's file: other nodes need not see the run directory
    run_path = Path(ckpt["path"]).parent
    notes: list[str] = []
    with ctx.all_or_none("set-up"):
        cfg, bundle, net, device = _set_up_resume(ckpt, run_path, config, bundle, network, overrides, ctx, notes)
    run_dir = RunDir(run_path, eval_split=_eval_split(bundle), writer=ctx.is_main)
    try:  # rank 0 holds the run directory's lock until training ends (run_lock.py)
        with ctx.all_or_none("preparing the run directory"):
            run_dir.lock(RESUME_IN_USE_HINT)
            run_dir.clean_temporaries()
            run_dir.keep_replaced()  # an interrupted --overwrite's old files: kept, said in one line
            run_dir.mark()
        trainer = Trainer(
            cfg,
            net,
            bundle,
            run_dir,
            device=device,
            model_spec=_model_spec(cfg, net, bundle),
            progress=progress,
            resume=ckpt,
            notes=notes,
            dist=ctx,
        )
        with ctx.all_or_none("writing config.yaml"):
            run_dir.write_config(cfg, comment=_batch_comment(trainer))
        return trainer.fit()
    finally:
        run_dir.unlock()


#: what a refused --resume of a run directory in use suggests
RESUME_IN_USE_HINT = "it is training now: wait for it to end, or stop it (it saves last.pt) and resume then"


def _read_resume_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint ``--resume PATH`` names (a run directory's last.pt, or a file)."""
    if path.is_dir() and not (path / "last.pt").exists():
        aside = replaced_dirs(path)
        if aside:
            # the newest folder that holds a checkpoint (a later interrupted --overwrite's holds none)
            where = ([a for a in aside if (a / "last.pt").exists()] or aside)[-1]
            raise CheckpointError(
                f"{path} holds no last.pt: nothing to resume. The previous run's files are in {where} (an "
                "--overwrite was stopped before the new run's first checkpoint); move them back to resume that run."
            )
        if (path / MARKER).is_file():  # a run killed (or failed) before the end of its first epoch
            config = path / "config.yaml"
            rerun = (
                f"`reslab train --config {quoted(config)} --out {quoted(path)} --overwrite`"
                if config.is_file()
                else f"its command with --out {quoted(path)} --overwrite"
            )
            raise CheckpointError(
                f"{path} holds no last.pt: no checkpoint was written yet (the run stopped before the end of its first "
                f"epoch), so there is nothing to resume; start it again with {rerun}"
            )
        raise CheckpointError(f"{path} holds no last.pt: nothing to resume (is it a reslab run directory?)")
    ckpt = load_checkpoint(path)
    ckpt["path"] = str(ckpt.get("path") or (path / "last.pt" if path.is_dir() else path))
    return ckpt


def _set_up_resume(
    ckpt: dict[str, Any],
    run_path: Path,
    config,
    bundle,
    network,
    overrides: dict[str, Any],
    ctx: DistContext,
    notes: list[str],
):
    """The resumed run's configuration, data, model and device (nothing is written)."""
    saved = checkpoint_config(ckpt)
    given: dict[str, Any] = {}
    if config is not None:
        given.update(resolve_config(config).to_dict() if isinstance(config, TrainConfig) else _explicit(config))
    given = merge_overrides(given, overrides)
    for key in given:
        if key not in FIELDS:
            raise unknown_key_error(str(key), "the overrides")
    if "model" in given and given["model"] != saved.model:  # compare registry names: "ResNet-20" = "resnet20"
        from ..models import get_model_entry

        given["model"] = get_model_entry(given["model"]).name
    diffs = config_differences(saved, given)
    if diffs:
        old = saved.to_dict()
        detail = "; ".join(f"{k}: run has {old.get(k)!r}, given {given[k]!r}" for k in diffs)
        raise ConfigError(
            f"--resume {run_path}: the configuration differs from the run's ({detail}). A resumed run keeps "
            "its configuration: drop those options, or start a new run with --out"
        )
    finished = bool(ckpt.get("finished")) or int(ckpt["epoch"]) >= saved.epochs
    if finished and (run_path / "summary.json").exists():
        done = run_path / "best.pt" if (run_path / "best.pt").exists() else run_path / "last.pt"
        raise ConfigError(
            f"--resume {run_path}: the run already finished all {saved.epochs} epochs; nothing to resume. "
            f"Evaluate it with `reslab eval --checkpoint {quoted(done)}`, or start a new run."
        )
    # a finished run without summary.json (stopped during its final evaluation, or killed right after
    # its last checkpoint) goes on below: the trainer repairs its records and finishes it
    cfg = saved
    for key in RUNTIME_KEYS - {"out"}:
        if key in given:
            setattr(cfg, key, given[key])
    cfg.out = str(run_path)
    cfg.validate()
    device = ctx.device if ctx.active else resolve_device(cfg.device)
    check_amp(cfg.amp, device)
    if cfg.compile:
        check_compile(device)
    check_sync_bn(cfg.sync_bn, device)
    _keep_global_batch(cfg, ckpt, ctx, notes)
    _setup_runtime(cfg, device)
    seed_everything(cfg.seed)
    info = ckpt.get("data_info") or {}
    weights_prep = None
    if cfg.pretrained is not None:  # the run's own record: the weights are not looked up again
        weights_prep = (info.get("weights_preprocessing"), str(info.get("preprocessing_source") or cfg.pretrained))
    bundle = bundle if bundle is not None else _build_data(cfg, device, weights_prep)
    _shard_bundle(bundle, ctx)
    if int(bundle.num_classes) != int(ckpt["num_classes"]):
        raise CheckpointError(
            f"{ckpt['path']} was trained for {ckpt['num_classes']} classes, but the data has {bundle.num_classes}"
        )
    if len(bundle.train) != int(ckpt.get("steps_per_epoch", len(bundle.train))):
        raise ConfigError(
            f"--resume {run_path}: the training split now has {len(bundle.train)} batches per epoch, the run had "
            f"{ckpt['steps_per_epoch']}; the data changed, so the run cannot continue exactly"
        )
    net = network if network is not None else _build_model(cfg, bundle, checkpoint=ckpt)
    _check_batchnorm_batches(bundle.train, net, ctx)
    return cfg, bundle, net, device


def _keep_global_batch(cfg: TrainConfig, ckpt: dict[str, Any], ctx: DistContext, notes: list[str]) -> None:
    """A run resumed on another number of ranks keeps its global batch (what the learning rate and the
    data order refer to): the per-rank batch becomes global / (ranks x accum_steps).

    Raises:
        ConfigError: the global batch does not divide into the new number of ranks.
    """
    ranks = int(ckpt.get("world_size") or 1)
    if ranks == ctx.world_size:
        return
    global_batch = int(ckpt.get("global_batch") or cfg.batch_size * ranks * cfg.accum_steps)
    per_rank, rest = divmod(global_batch, ctx.world_size * cfg.accum_steps)
    if rest or per_rank < 1:
        raise ConfigError(
            f"--resume {ckpt['path']}: the run's global batch {global_batch} ({ranks} rank(s)) does not divide into "
            f"{ctx.world_size} rank(s) x {cfg.accum_steps} accumulation step(s); resume on a number of ranks that "
            "divides it"
        )
    notes.append(
        f"resumed on {ctx.world_size} rank(s); the run had {ranks}: the per-rank batch is now {per_rank} (was "
        f"{cfg.batch_size}), the global batch stays {global_batch} with the same data order. Exact up to float "
        "rounding for networks without BatchNorm; BatchNorm now sees other per-device batches"
    )
    cfg.batch_size = per_rank


def _explicit(config: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    from .config import load_config_file

    if isinstance(config, (str, Path)):
        return load_config_file(config)
    return dict(config)


#: what :func:`predict` does with an image it cannot read
ON_ERROR = ("raise", "skip")


def predict(
    checkpoint: str | Path | None,
    images: Sequence[Any],
    *,
    topk: int = 5,
    device: str = "auto",
    ema: bool = False,
    on_error: str = "raise",
    model: str | None = None,
    pretrained: Any = None,
    batch_size: int = 1,
    amp: str | None = "auto",
) -> list[list[tuple[str, float]] | DataError]:
    """Classify images with a checkpoint -- or, with ``checkpoint=None``, with ``model`` and its
    ``pretrained`` weights as published: the ``topk`` (class name, probability) pairs per image.

    Args:
        checkpoint: a ``.pt`` written by :func:`train` (or a run directory: its ``best.pt``).
        images: file paths or PIL images; each is preprocessed as the training data was
            (``reslab.data.preprocess_image`` with the checkpoint's data ``info``).
        topk: how many classes per image (at most the class count).
        device: ``auto``, ``cpu`` or ``cuda``. ema: use the EMA weights.
        on_error: ``"raise"`` (default): an unreadable image raises :class:`DataError`, nothing is
            returned. ``"skip"``: the other images are still classified, and the unreadable image's
            entry in the result is the :class:`DataError` saying why (test with ``isinstance``).
        model, pretrained: with ``checkpoint=None``: the network and its weights (``True``, a tag such as
            ``"tv_in1k"``, ``MODEL.TAG`` or a file); images get the weights' preprocessing and the
            classes are the weights' class names (ImageNet's for ``tv_in1k``).
        batch_size: images per forward pass (the results equal those of one image at a time).
        amp: autocast: None (fp32), ``"bf16"``, ``"fp16"``, or ``"auto"`` (default): the precision the
            checkpoint's run trained with; for published weights as :mod:`reslab.training.precision` chooses.

    Returns:
        One entry per image, in order: a list of ``(class name, probability)``, best first (or, with
        ``on_error="skip"``, the error of an image that could not be read).

    Raises:
        CheckpointError: a missing/corrupt checkpoint. DataError: an image that cannot be read
        (``on_error="raise"``). ConfigError: ``topk`` < 1 or an unknown ``on_error``.
    """
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise ConfigError(f"topk must be a whole number >= 1, got {topk!r}")
    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
    if (checkpoint is None) == (pretrained is None):
        raise ConfigError("predict with a checkpoint or with pretrained weights (--model M --pretrained TAG), not both")
    from .loading import load_model

    dev = resolve_device(device)
    loaded = load_model(checkpoint, model=model, pretrained=pretrained, ema=ema, device=dev)
    net, info, names = loaded.net, loaded.info, loaded.class_names
    chosen = inference_precision(amp, dev, checkpoint=loaded.checkpoint, model=net, input_shape=info["input_size"])
    dtype = check_amp(chosen.amp, dev)
    net = prepare_model(net, dev, chosen.channels_last)

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), autocast(dev, dtype):
            out = net(as_layout(x.to(dev), chosen.channels_last))
            return getattr(out, "logits", out).float().cpu()

    return classify_images(
        forward, images, info, names, topk=topk, batch_size=batch_size, on_error=on_error, source=loaded.source
    )


def classify_images(
    forward: Any,
    images: Sequence[Any],
    info: Mapping[str, Any],
    names: Sequence[str],
    *,
    topk: int,
    batch_size: int = 1,
    on_error: str = "raise",
    source: str = "the model",
) -> list[list[tuple[str, float]] | DataError]:
    """Preprocess ``images`` (``reslab.data.preprocess_image`` with ``info``), run ``forward`` (a batch
    (N, C, H, W) float32 -> logits (N, classes)) on batches of ``batch_size`` and return the ``topk``
    (class name, probability) pairs per image, as :func:`predict` does (``on_error`` likewise).

    Raises:
        ConfigError: ``batch_size`` < 1. DataError: an unreadable image (``on_error="raise"``).
        CheckpointError: outputs that are not finite (NaN or inf: damaged or diverged weights), naming
            ``source`` (the checkpoint or weights file): no NaN probability is ever returned.
    """
    from ..data import preprocess_image

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    k = min(topk, len(names))
    results: list[list[tuple[str, float]] | DataError | None] = []
    pending: list[tuple[int, torch.Tensor]] = []  # (index in results, preprocessed image)

    def flush() -> None:
        logits = forward(torch.cat([x for _, x in pending]))
        if not bool(torch.isfinite(logits).all()):
            bad = next(slot for (slot, _), row in zip(pending, logits) if not bool(torch.isfinite(row).all()))
            shown = images[bad] if isinstance(images[bad], (str, Path)) else f"image {bad + 1}"
            raise CheckpointError(
                f"{source}: the network's output for {shown} is not finite (NaN or inf): its weights are "
                "damaged or its training diverged; no prediction reported"
            )
        probs = torch.softmax(logits.float(), dim=1)
        values, indices = probs.topk(k, dim=1)
        for (slot, _), vs, ix in zip(pending, values.tolist(), indices.tolist()):
            results[slot] = [(names[i], float(v)) for v, i in zip(vs, ix)]
        pending.clear()

    for image in images:
        try:
            x = preprocess_image(image, info)
        except (OSError, ValueError) as e:  # DataError is a ValueError: kept as it is
            error = e if isinstance(e, DataError) else DataError(f"cannot read image {image}: {e}")
            if on_error == "raise":
                raise error from None
            results.append(error)
            continue
        results.append(None)
        pending.append((len(results) - 1, x))
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    return results  # type: ignore[return-value]  # every None slot was filled by flush()
