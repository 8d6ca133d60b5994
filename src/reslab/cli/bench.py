"""``reslab bench MODEL``: images/s and peak memory (parsing and dispatch only; see reslab.training.bench)."""

from __future__ import annotations

import argparse

from .arguments import amp_arg, non_negative_int, one_line_errors, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="images/s and peak memory of a model (inference; a training step with --train)",
        description="Measure images/s and peak memory on random inputs; torchvision's model of the same name is "
        "measured in the same run where torchvision imports (with the ratio).",
    )
    p.add_argument("model", help="registered model name (`reslab list`)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--image-size", type=positive_int, metavar="PX", help="input side (default: the model's)")
    p.add_argument(
        "--amp",
        type=amp_arg,
        default="auto",
        metavar="{auto,bf16,fp16,none}",
        help="autocast (default auto: as reslab train chooses for this machine; fp16: CUDA only)",
    )
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default="auto",
        help="channels-last memory format (default auto: as reslab train chooses for this machine)",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the model (compile time is in --warmup)")
    p.add_argument("--fuse", action="store_true", help="fold conv-BN before measuring (inference only)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--train", action="store_true", help="also time a training step (SGD, cross-entropy)")
    p.add_argument("--steps", type=positive_int, default=10, help="timed iterations per phase (default 10)")
    p.add_argument("--warmup", type=non_negative_int, default=3, help="untimed iterations first (default 3)")
    p.add_argument("--threads", type=positive_int, help="CPU threads for torch (default: torch's choice)")
    p.set_defaults(func=run_bench)
    one_line_errors(p)


def run_bench(args: argparse.Namespace) -> int:
    from ..training.bench import bench

    result = bench(
        args.model,
        batch_size=args.batch_size,
        image_size=args.image_size,
        amp=args.amp,
        channels_last=args.channels_last,
        compile=args.compile,
        fuse=args.fuse,
        device=args.device,
        train=args.train,
        steps=args.steps,
        warmup=args.warmup,
        threads=args.threads,
    )
    print("\n".join(result.lines()))
    return 0
