"""``reslab train``, ``reslab eval``, ``reslab predict`` and ``reslab show-data``: parsing and dispatch only.

``train`` flags override the ``--config`` recipe, and only the flags the user actually gave do so:
every option defaults to ``argparse.SUPPRESS``, so an absent flag is absent from the namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..errors import ConfigError
from ..training.config import FIELDS, OPTIMIZERS, SCHEDULES, shipped_configs
from .arguments import (
    amp_arg,
    check_output_dir,
    check_output_file,
    key_value,
    non_negative_int,
    one_line_errors,
    path_arg,
    positive_int,
    setup_logging,
)

S = argparse.SUPPRESS


def register(sub: argparse._SubParsersAction) -> None:
    for add in (_register_train, _register_eval, _register_predict, _register_show_data):
        one_line_errors(add(sub))


def _add_data_options(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        required=required,
        default=S,
        metavar="NAME",
        help="data set: cifar10, cifar100, mnist, fashion_mnist, folder, digits, synthetic",
    )
    g.add_argument(
        "--data-dir",
        type=path_arg,
        default=S,
        metavar="PATH",
        help="where the data set lives (default: $RESLAB_DATA_DIR, else ./data)",
    )
    g.add_argument("--download", action="store_true", default=S, help="download the data set if missing")


# -- train -------------------------------------------------------------------------------------------
def _register_train(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train a model; writes a run directory (config, metrics, curves, checkpoints)",
        description="Train a model. Flags override the --config recipe; only flags you give do.",
    )
    p.add_argument(
        "--config",
        metavar="RECIPE",
        help=f"a YAML recipe: a file, or a shipped one by name ({', '.join(shipped_configs())}); flags override it",
    )
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run exactly")
    p.add_argument("--out", default=S, metavar="DIR", help="run directory (default runs/MODEL-DATA-TIME)")
    p.add_argument("--overwrite", action="store_true", default=S, help="replace a previous run's files in --out")
    p.add_argument(
        "--progress",
        choices=("auto", "bar", "plain", "none"),
        default="auto",
        help="a progress bar (auto: on a terminal) or one line per epoch",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and the final summary")
    p.add_argument(
        "--log-every",
        type=non_negative_int,
        default=S,
        metavar="N",
        help="log the running train loss and accuracy every N batches (default 0: once per epoch)",
    )

    g = p.add_argument_group("model")
    g.add_argument("--model", default=S, help="registered model name (`reslab list`)")
    g.add_argument(
        "--model-arg",
        dest="model_args",
        action="append",
        type=key_value,
        default=S,
        metavar="KEY=VALUE",
        help="constructor override, e.g. widths=[8,16,32] (repeatable)",
    )
    g.add_argument(
        "--pretrained",
        default=S,
        metavar="WEIGHTS",
        help="start from weights: default, a tag (tv_in1k), MODEL.TAG or a file; applies the fine-tuning "
        "defaults (configs/finetune.yaml) and the weights' preprocessing",
    )
    g.add_argument(
        "--freeze",
        default=S,
        metavar="none|backbone|stages:N",
        help="freeze all but the classifier (backbone) or the stem and first N stages (eval mode, no gradients)",
    )

    _add_data_options(p)
    g = p.add_argument_group("data options")
    g.add_argument("--val-split", type=float, default=S, help="fraction of train held out for validation")
    g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=S, help="training augmentation")
    g.add_argument("--cutout", type=int, default=S, metavar="PX", help="cutout square side (0: off)")
    g.add_argument("--image-size", type=int, default=S, metavar="PX", help="image side (folder, digits, synthetic)")
    g.add_argument(
        "--batch-size",
        type=int,
        default=S,
        help="samples per batch on each process; under torchrun the global batch (what --lr refers to) "
        "is this x the number of processes x --accum-steps",
    )
    g.add_argument("--eval-batch-size", type=int, default=S)
    g.add_argument("--workers", type=int, default=S, help="loader worker processes (folder data)")
    g.add_argument(
        "--data-arg",
        dest="data_args",
        action="append",
        type=key_value,
        default=S,
        metavar="KEY=VALUE",
        help="further build_data option, e.g. limit=1000 (repeatable)",
    )

    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=S)
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=S)
    g.add_argument(
        "--lr",
        type=float,
        default=S,
        help="peak / initial learning rate, for the global batch (--batch-size x processes x --accum-steps)",
    )
    g.add_argument("--head-lr", type=float, default=S, help="the classifier's learning rate (default: --lr)")
    g.add_argument(
        "--backbone-lr-scale",
        type=float,
        default=S,
        metavar="SCALE",
        help="the backbone trains at head lr x SCALE (to stop it: --freeze backbone)",
    )
    g.add_argument("--momentum", type=float, default=S)
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=S, help="Nesterov momentum (SGD)")
    g.add_argument("--betas", type=float, nargs=2, default=S, metavar=("B1", "B2"), help="Adam/AdamW betas")
    g.add_argument("--weight-decay", type=float, default=S)
    g.add_argument(
        "--decay-norm-and-bias",
        action=argparse.BooleanOptionalAction,
        default=S,
        help="apply weight decay to BN parameters and biases (--no-...: exempt them)",
    )
    g.add_argument("--schedule", choices=SCHEDULES, default=S, help="learning-rate schedule (per iteration)")
    g.add_argument(
        "--milestones",
        type=float,
        nargs="+",
        default=S,
        metavar="EPOCH",
        help="multistep: epochs at which lr *= gamma (default 50%% and 75%% of the run)",
    )
    g.add_argument(
        "--milestone-fractions",
        type=float,
        nargs="+",
        default=S,
        metavar="FRACTION",
        help="multistep: milestones as fractions of the run, e.g. 0.5 0.75 (follow --epochs)",
    )
    g.add_argument("--gamma", type=float, default=S, help="multistep factor (default 0.1)")
    g.add_argument("--warmup-epochs", type=float, default=S, help="warm-up length (epochs; linear unless --warmup-lr)")
    g.add_argument(
        "--warmup-lr",
        type=float,
        default=S,
        help="constant warm-up: train at this rate for --warmup-epochs, then at --lr",
    )
    g.add_argument("--onecycle-pct", type=float, default=S, help="one-cycle: fraction of the run rising")
    g.add_argument("--onecycle-div", type=float, default=S, help="one-cycle: initial lr = lr / this")
    g.add_argument("--label-smoothing", type=float, default=S)
    g.add_argument("--grad-clip", type=float, default=S, metavar="MAX_NORM", help="gradient-norm clipping (0: off)")
    g.add_argument("--aux-weight", type=float, default=S, help="auxiliary-classifier loss weight (GoogLeNet: 0.3)")
    g.add_argument("--ema", action=argparse.BooleanOptionalAction, default=S, help="EMA of the weights")
    g.add_argument("--ema-decay", type=float, default=S)
    g.add_argument(
        "--accum-steps",
        type=int,
        default=S,
        metavar="K",
        help="gradient accumulation: one optimiser step per K batches, equal to one step on a K times "
        "larger batch (schedules count optimiser steps)",
    )

    g = p.add_argument_group("execution")
    g.add_argument(
        "--amp",
        type=amp_arg,
        default=S,
        metavar="{auto,bf16,fp16,none}",
        help="mixed precision (default auto: bf16 on GPUs that have it, else fp16; on the CPU bf16 only with native "
        "bf16 instructions where a short probe measures it faster, else fp32; fp16: CUDA only)",
    )
    g.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=S,
        help="channels-last memory format (default auto: on with CUDA; on the CPU where a short probe measures it "
        "faster, and with bf16)",
    )
    g.add_argument("--compile", action=argparse.BooleanOptionalAction, default=S, help="torch.compile the model")
    g.add_argument("--device", default=S, help="auto (default), cpu, cuda, cuda:N")
    g.add_argument(
        "--sync-bn",
        action=argparse.BooleanOptionalAction,
        default=S,
        help="torchrun: SyncBatchNorm, batch statistics over all processes (CUDA only)",
    )
    g.add_argument("--seed", type=int, default=S)
    g.add_argument("--threads", type=int, default=S, help="CPU threads for torch (default: torch's choice)")
    g.add_argument(
        "--deterministic", action=argparse.BooleanOptionalAction, default=S, help="torch.use_deterministic_algorithms"
    )
    p.set_defaults(func=run_train)
    return p


def train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The configuration keys the user gave on the command line."""
    values = {k: v for k, v in vars(args).items() if k in FIELDS}
    for key in ("model_args", "data_args"):
        if key in values:
            values[key] = dict(values[key])
    return values


def run_train(args: argparse.Namespace) -> int:
    from ..training import train

    setup_logging(args.quiet)
    if args.quiet and args.progress == "auto":
        args.progress = "none"  # quiet: no bar either
    overrides = train_overrides(args)
    # the same call as reslab.train(config, **overrides): one merge rule (config.merge_overrides)
    result = train(args.config, resume=args.resume, progress=args.progress, **overrides)
    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 prints the summary
        return 0 if not result.interrupted else (130 if result.interrupted == "SIGINT" else 143)
    if result.interrupted:  # the trainer has logged (to stderr) where it saved and how to resume
        return 130 if result.interrupted == "SIGINT" else 143
    print(result.summary_line())
    return 0


# -- eval --------------------------------------------------------------------------------------------
def _register_eval(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "eval",
        help="evaluate a checkpoint: loss, top-1/5, per-class accuracy, confusion matrix",
        description="Evaluate a checkpoint. The last stdout line is a JSON object {top1, topK, loss, n}: topK is "
        "top-k accuracy, k = min(5, classes), named after its k (top5; top3 for three classes).",
    )
    p.add_argument("--checkpoint", metavar="CKPT", help="a .pt file (or a run directory)")
    p.add_argument(
        "--pretrained",
        metavar="WEIGHTS",
        help="instead of a checkpoint: --model's weights (a tag, MODEL.TAG, default) or a file",
    )
    _add_data_options(p)
    p.add_argument(
        "--split",
        choices=("train", "val", "test"),
        help="the split to score (default: test, else val where the data set has no test split); "
        "a split the data set does not have is refused",
    )
    p.add_argument("--model", help="the model you expect the checkpoint to hold (checked); with --pretrained: the net")
    p.add_argument("--ema", action="store_true", help="evaluate the EMA weights")
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--device", default="auto")
    _add_inference_amp(p)
    p.add_argument(
        "--out",
        type=path_arg,
        metavar="DIR",
        help="directory for the confusion matrix and per-class table (default: next to CKPT)",
    )
    p.set_defaults(func=run_eval)
    return p


def run_eval(args: argparse.Namespace) -> int:
    from ..training import evaluate

    if args.out is not None:
        check_output_dir(args.out, "--out")
    _checkpoint_or_pretrained(args)
    result = evaluate(
        args.checkpoint,
        getattr(args, "data", None),
        pretrained=args.pretrained,
        data_dir=getattr(args, "data_dir", None),
        download=getattr(args, "download", False),
        split=args.split,
        model=args.model,
        ema=args.ema,
        device=args.device,
        batch_size=args.batch_size,
        amp=args.amp,
        out=args.out,
    )
    m = result.metrics
    print(f"checkpoint: {result.checkpoint}")
    print(f"data: {result.data} {result.split} (n={m.n})")
    print(f"loss {m.loss:.4f}  top-1 {m.top1:.4f}  top-{m.k} {m.top5:.4f}")
    print("per-class accuracy:")
    width = max((len(n) for n in result.class_names), default=5)
    for name, acc, n in result.per_class():
        print(f"  {name:<{width}}  {acc:.4f}  (n={n})")
    if result.files:
        print(f"confusion matrix: {result.files['confusion_csv']}  {result.files['confusion_png']}")
    print(json.dumps(result.as_dict()))
    return 0


# -- predict -----------------------------------------------------------------------------------------
def _register_predict(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "predict",
        help="classify image files with a checkpoint",
        description="Classify images. An unreadable image is reported on stderr (one line naming it) and "
        "the others are still classified; the exit status is then 1 (2 if no image could be read).",
    )
    p.add_argument("--checkpoint", metavar="CKPT", help="a .pt file (or a run directory)")
    p.add_argument("--model", help="with --pretrained: the model; with --checkpoint: the model you expect (checked)")
    p.add_argument(
        "--pretrained",
        metavar="WEIGHTS",
        help="instead of a checkpoint: --model's weights (a tag, MODEL.TAG, default) or a file",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--topk", type=int, default=5, help="classes shown per image (default 5)")
    p.add_argument("--ema", action="store_true", help="use the EMA weights")
    p.add_argument("--device", default="auto")
    _add_inference_amp(p)
    p.add_argument("--json", action="store_true", help="one JSON list per image instead of text")
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=1,
        help="images per forward pass (default 1; the results are the same)",
    )
    p.add_argument(
        "--onnx",
        type=path_arg,
        metavar="MODEL.onnx",
        help="instead of a checkpoint: an ONNX file from `reslab export` (onnxruntime, CPU); its "
        "preprocessing and class names come from the file",
    )
    p.set_defaults(func=run_predict)
    return p


def run_predict(args: argparse.Namespace) -> int:
    """Classify every readable image; each unreadable one is one stderr line. Exit status 1 when some
    images could not be read, 2 when none could."""
    from ..training import predict

    if args.onnx is not None:
        from ..export.onnx_predict import predict_onnx

        given = [
            flag
            for flag, value in (
                ("--checkpoint", args.checkpoint),
                ("--pretrained", args.pretrained),
                ("--model", args.model),
                ("--ema", args.ema),
                ("--amp", args.amp != "auto"),
            )
            if value
        ]
        if given:
            raise ConfigError(f"--onnx {args.onnx} holds its own weights and metadata; drop {', '.join(given)}")
        if args.device not in ("auto", "cpu"):
            raise ConfigError(f"--onnx runs on the CPU (onnxruntime); --device {args.device} does not apply")
        results = predict_onnx(args.onnx, args.images, topk=args.topk, batch_size=args.batch_size, on_error="skip")
    else:
        _checkpoint_or_pretrained(args)
        results = predict(
            args.checkpoint,
            args.images,
            topk=args.topk,
            device=args.device,
            ema=args.ema,
            on_error="skip",
            model=args.model,
            pretrained=args.pretrained,
            batch_size=args.batch_size,
            amp=args.amp,
        )
    failed = 0
    for image, top in zip(args.images, results):
        if isinstance(top, Exception):
            failed += 1
            print(f"reslab: error: {top}", file=sys.stderr)
        elif args.json:
            print(json.dumps({"image": image, "top": [{"class": c, "probability": p} for c, p in top]}))
        else:
            print(f"{image}: " + ", ".join(f"{c} {p:.4f}" for c, p in top))
    if failed == len(results):
        return 2  # nothing to classify: a bad-input error like any other
    if failed:
        print(f"reslab: {failed} of {len(results)} images could not be read (listed above)", file=sys.stderr)
        return 1
    return 0


def _checkpoint_or_pretrained(args: argparse.Namespace) -> None:
    """``--checkpoint`` or ``--model M --pretrained WEIGHTS``: exactly one of the two."""
    if args.checkpoint is None and args.pretrained is None:
        raise ConfigError("give --checkpoint CKPT, or --model MODEL --pretrained WEIGHTS (published weights)")
    if args.checkpoint is not None and args.pretrained is not None:
        raise ConfigError("give --checkpoint or --pretrained, not both (a checkpoint holds its own weights)")
    if args.pretrained is not None and not args.model:
        raise ConfigError(f"--pretrained {args.pretrained} needs --model (the network the weights fit)")


def _add_inference_amp(p: argparse.ArgumentParser) -> None:
    """``--amp`` of eval and predict."""
    p.add_argument(
        "--amp",
        type=amp_arg,
        default="auto",
        metavar="{auto,bf16,fp16,none}",
        help="autocast (default auto: a checkpoint's own training precision; published weights: as reslab train)",
    )


# -- show-data ---------------------------------------------------------------------------------------
def _register_show_data(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("show-data", help="write a labelled grid of a data set's images (as the model sees them)")
    _add_data_options(p, required=True)
    p.add_argument("--out", type=path_arg, required=True, metavar="GRID.png", help="the image file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file (never an input)")
    p.add_argument(
        "--split", choices=("train", "val", "test"), default="train", help="train shows augmented images (default)"
    )
    p.add_argument(
        "--val-split",
        type=float,
        metavar="FRACTION",
        help="hold this fraction of train out as the val split, as reslab train --val-split does",
    )
    p.add_argument("-n", "--num-images", type=positive_int, default=64)
    p.add_argument("--image-size", type=int)
    p.add_argument("--cutout", type=int, default=0)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--data-arg",
        dest="data_args",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="further build_data option (repeatable)",
    )
    p.add_argument("--model", metavar="M", help="with --pretrained: the network whose weights' preprocessing to show")
    p.add_argument(
        "--pretrained",
        metavar="WEIGHTS",
        help="show the images as these weights see them: their input size (CIFAR at 224 for ImageNet weights, "
        "resized on the device) and normalisation, as reslab train --pretrained feeds them",
    )
    p.set_defaults(func=run_show_data)
    return p


def _weights_data_args(args: argparse.Namespace, given: dict[str, Any]) -> dict[str, Any]:
    """The data options that give ``--pretrained`` weights' preprocessing (what training would apply)."""
    from ..factory import resolve_pretrained
    from ..training.loading import preprocessing_data_args

    if not args.model:
        raise ConfigError("--pretrained needs the model its weights fit: give --model (e.g. --model resnet50)")
    weights = resolve_pretrained(args.model, args.pretrained)
    out, _ = preprocessing_data_args(
        args.data, weights.preprocessing, source=weights.name, given=given, image_size=args.image_size
    )
    return out


def run_show_data(args: argparse.Namespace) -> int:
    from ..data import build_data, save_preview
    from ..training.config import check_data_args

    check_output_file(
        args.out, "--out", overwrite=args.overwrite, inputs=(getattr(args, "data_dir", None), args.pretrained)
    )
    extra = dict(args.data_args)
    check_data_args(extra)
    if args.image_size is not None:
        extra["image_size"] = args.image_size
    if args.val_split is not None:
        extra["val_split"] = args.val_split
    if args.pretrained is not None:
        extra.update(_weights_data_args(args, extra))
    bundle = build_data(
        args.data,
        getattr(args, "data_dir", None),
        download=getattr(args, "download", False),
        augment=not args.no_augment,
        cutout=args.cutout,
        seed=args.seed,
        batch_size=min(args.num_images, 256),
        **extra,
    )
    for note in bundle.notes:  # the image size chosen and why, the loading path (as a run's log shows)
        print(note, file=sys.stderr)
    shown = args.split
    if shown not in bundle.splits():  # shown under its true name, never another split's
        shown = "test" if shown == "val" else "val"
        print(
            f"the {bundle.name} data set has no {args.split} split (its splits: {', '.join(bundle.splits())}): "
            f"showing its {shown} split",
            file=sys.stderr,
        )
    path = save_preview(bundle, args.out, n=args.num_images, split=shown)
    print(f"wrote {path} ({args.num_images} {bundle.name} {shown} images)")
    return 0
