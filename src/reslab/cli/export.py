"""``reslab export``: parsing and dispatch only; the formats and their checks live in :mod:`reslab.export`."""

from __future__ import annotations

import argparse

from .arguments import one_line_errors, path_arg, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    from ..export.formats import FORMATS

    formats = "; ".join(f"{f.name} ({f.extension}): {f.description}" for f in FORMATS.values())
    p = sub.add_parser(
        "export",
        help="export a trained or published model to ONNX, TorchScript, torch.export or safetensors",
        description="Export a network (a checkpoint, or --model M --pretrained TAG) with its class names and "
        "preprocessing, then check the written file against PyTorch (max abs difference <= 1e-4 on random "
        f"inputs, batch 2; 1e-5 of the largest logit where logits exceed 10). Formats: {formats}.",
    )
    one_line_errors(p)
    p.add_argument(
        "checkpoint", nargs="?", type=path_arg, metavar="CKPT", help="a .pt written by reslab train, or a run dir"
    )
    p.add_argument("--model", metavar="M", help="a registry model (with --pretrained: published weights)")
    p.add_argument("--pretrained", metavar="TAG", help="with --model: weights (a tag, MODEL.TAG, default, a file)")
    p.add_argument("--ema", action="store_true", help="the checkpoint's EMA weights")
    p.add_argument("--format", default="onnx", choices=list(FORMATS), help="the file format (default onnx)")
    p.add_argument(
        "--out",
        type=path_arg,
        metavar="FILE",
        help="the file to write (default: MODEL.EXT in the current directory); an existing file is "
        "replaced only when it is a reslab export of the same format",
    )
    p.add_argument("--opset", type=positive_int, metavar="N", help="ONNX opset (default: the exporter's)")
    p.add_argument("--fuse-bn", action="store_true", help="fold BatchNorm into the convolutions before export")
    p.add_argument(
        "--batch",
        type=positive_int,
        default=1,
        metavar="N",
        help="batch of the example input traced (the batch axis stays dynamic; default 1)",
    )
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    import copy

    from ..errors import ConfigError
    from ..export import check_export_out, default_out, export_model, get_format
    from ..export.metadata import checked_preprocessing
    from ..training.loading import load_model

    fmt = get_format(args.format)
    if args.opset is not None and fmt.name != "onnx":
        raise ConfigError(f"--opset applies to --format onnx only, not {fmt.name}")
    if args.fuse_bn and fmt.name == "safetensors":
        raise ConfigError(
            "--fuse-bn does not apply to safetensors: its weights must fit the network "
            "create_model builds (drop --fuse-bn)"
        )
    if args.checkpoint is None and args.model is None:
        raise ConfigError("say what to export: CKPT (a checkpoint or run directory), or --model M [--pretrained TAG]")
    if args.out is not None:
        check_export_out(args.out, fmt.name)  # before any model is read
    loaded = load_model(args.checkpoint, model=args.model, pretrained=args.pretrained, ema=args.ema)
    net, name = loaded.net.eval(), loaded.model_name
    out = check_export_out(args.out if args.out is not None else default_out(name, fmt.name), fmt.name)
    # published weights keep their own description (mode caffe / tf ...); a checkpoint its data's
    preprocessing = checked_preprocessing(loaded.preprocessing)
    model_args = loaded.model_args
    reference = None
    if args.fuse_bn:
        from ..models import fuse

        reference = net
        net = fuse(copy.deepcopy(net)).eval()  # checked against the unfolded network
    input_size = tuple(int(v) for v in preprocessing["input_size"])
    path, result = export_model(
        net,
        out,
        fmt.name,
        input_size=input_size,
        class_names=loaded.class_names,
        preprocessing=preprocessing,
        model_name=name,
        model_args=model_args,
        opset=args.opset,
        batch=args.batch,
        reference=reference,
    )
    size = path.stat().st_size / 1e6
    c, h, w = input_size
    folded = ", BatchNorm folded" if args.fuse_bn else ""
    print(f"wrote {path} ({fmt.name}, {size:.1f} MB: {name} from {loaded.source}, input {c}x{h}x{w}{folded})")
    print(f"checked: {result.describe()}")
    return 0
