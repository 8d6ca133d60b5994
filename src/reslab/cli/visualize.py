"""``reslab visualize filters|features|deconv|gradcam|occlusion``: parsing and dispatch only; the arrays come
from :mod:`reslab.visualize`, the pictures from :mod:`reslab.visualize.draw`."""

from __future__ import annotations

import argparse

from .arguments import check_output_file, one_line_errors, path_arg, positive_int

COMMANDS = {
    "filters": "a convolution's filters (default: the first layer's) as one image grid (ZF Figures 5-6)",
    "features": "a layer's feature maps for one image",
    "deconv": "top activating images of a data set per feature map, their deconvnet projections and patches "
    "(ZF Figure 2; guided backpropagation for BN / residual / concatenating networks)",
    "gradcam": "Grad-CAM heatmap of one image (default layer: the last stage)",
    "occlusion": "class probability as a grey square slides over one image (ZF Figure 7)",
}


def _channels(text: str) -> list[int]:
    """``0,5,7`` (and ranges ``0-3``) as a list of channel indices."""
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                a, b = part.split("-")
                out += list(range(int(a), int(b) + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected channel numbers like 0,5,7 or 0-3, got {text!r}") from None
    if not out or min(out) < 0:
        raise argparse.ArgumentTypeError(f"expected channel numbers >= 0 like 0,5,7, got {text!r}")
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "visualize",
        help="see inside a network: filters, feature maps, deconvnet, Grad-CAM, occlusion",
        description="Draw what a network learned into --out FILE.png.",
    )
    one_line_errors(p)
    vsub = p.add_subparsers(dest="what", metavar="WHAT")
    vsub.required = True
    for name, help_text in COMMANDS.items():
        q = vsub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        one_line_errors(q)
        src = q.add_argument_group("network (one of)").add_mutually_exclusive_group(required=True)
        src.add_argument(
            "--checkpoint", type=path_arg, metavar="CKPT", help="a .pt written by reslab train, or a run dir"
        )
        src.add_argument("--model", metavar="M", help="a registry model (with --pretrained: published weights)")
        q.add_argument("--pretrained", metavar="TAG", help="with --model: weights (a tag, MODEL.TAG, default, a file)")
        q.add_argument("--ema", action="store_true", help="the checkpoint's EMA weights")
        q.add_argument("--out", type=path_arg, required=True, metavar="FILE.png", help="the picture to write")
        q.add_argument("--overwrite", action="store_true", help="replace an existing --out file (never an input)")
        q.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, cuda:N")
        if name in ("features", "gradcam", "occlusion"):
            q.add_argument("--image", type=path_arg, required=True, metavar="IMG", help="the image file")
        if name == "filters":
            q.add_argument("--layer", metavar="NAME", help="a convolution's module name (default: the first)")
        elif name == "features":
            q.add_argument("--layer", required=True, metavar="NAME", help="module name, e.g. layer2 or features.10")
            q.add_argument("--channels", type=_channels, metavar="0,5,7", help="maps to show (default: up to 64)")
        elif name == "deconv":
            q.add_argument("--layer", required=True, metavar="NAME", help="module name, e.g. features.10")
            q.add_argument(
                "--channels",
                type=_channels,
                default=[0, 1, 2, 3],
                metavar="0,5,7",
                help="feature maps to project (default 0,1,2,3)",
            )
            q.add_argument("--top", type=positive_int, default=9, help="images per feature map (default 9)")
            q.add_argument("--data", metavar="NAME", help="data set (default: the checkpoint's)")
            q.add_argument("--data-dir", type=path_arg, metavar="PATH", help="where the data set lives")
            q.add_argument("--download", action="store_true", help="download the data set if missing")
            q.add_argument("--batch-size", type=positive_int, help="images per forward pass")
        elif name == "gradcam":
            q.add_argument("--layer", metavar="NAME", help="module name (default: the last stage)")
            q.add_argument("--target", metavar="CLASS", help="class name or index (default: the predicted class)")
        elif name == "occlusion":
            q.add_argument("--target", metavar="CLASS", help="class name or index (default: the predicted class)")
            q.add_argument("--patch", type=positive_int, metavar="PX", help="grey square side (default: 1/4 image)")
            q.add_argument("--stride", type=positive_int, metavar="PX", help="its step (default: patch / 4)")
        q.set_defaults(func=run_visualize)


def _short(path: object) -> str:
    """A path as a title shows it: its last two parts (long absolute paths overflow the picture)."""
    parts = str(path).replace("\\", "/").rstrip("/").split("/")
    return "/".join(parts[-2:])


def run_visualize(args: argparse.Namespace) -> int:
    from .. import visualize as vis
    from ..visualize import draw

    # before any model or data is read: a picture cannot replace an existing file without --overwrite, nor an input
    inputs = (args.checkpoint, args.pretrained, getattr(args, "image", None), getattr(args, "data_dir", None))
    check_output_file(args.out, "--out", overwrite=args.overwrite, inputs=inputs)
    out = draw.check_out(args.out)
    loaded = vis.load_model(
        args.checkpoint, model=args.model, pretrained=args.pretrained, ema=args.ema, device=args.device
    )
    net, what = loaded.net, args.what
    head = f"{loaded.model_name} ({_short(loaded.source)})"
    x = loaded.image(args.image) if getattr(args, "image", None) else None
    if what == "filters":
        layer = args.layer or vis.first_conv(net)
        f = vis.filters(net, layer)
        draw.draw_filters(f, out, title=f"{head}\n{layer}: {len(f)} filters {f.shape[1]}x{f.shape[2]}")
        detail = f"{len(f)} filters of {layer}"
    elif what == "features":
        maps = vis.feature_maps(net, x, args.layer)
        if args.channels and max(args.channels) >= len(maps):
            from ..errors import ConfigError

            raise ConfigError(
                f"layer {args.layer!r} has {len(maps)} feature maps (0-{len(maps) - 1}), "
                f"got --channels {max(args.channels)}"
            )
        draw.draw_feature_maps(
            maps,
            out,
            title=f"{head}\n{args.layer} of {_short(args.image)}",
            image=vis.display_image(x, loaded.info),
            channels=args.channels,
        )
        detail = f"{len(args.channels or maps)} of {len(maps)} maps of {args.layer}"
    elif what == "gradcam":
        target = loaded.class_index(args.target)
        layer = args.layer or vis.default_layer(net)
        vis.resolve_layer(net, layer)
        target, prob = _target_probability(net, x, target)
        cam = vis.gradcam(net, x, target=target, layer=layer)
        name = loaded.class_names[target]
        title = f"{head}\n{_short(args.image)}: Grad-CAM of class {name} (p={prob:.3f}) at {layer}"
        draw.draw_heatmap(vis.display_image(x, loaded.info), cam, out, title=title)
        detail = f"class {name} (p={prob:.3f}), layer {layer}"
    elif what == "occlusion":
        target = loaded.class_index(args.target)
        target, prob = _target_probability(net, x, target)
        h, w = x.shape[-2:]
        patch = args.patch or vis.default_patch(h, w)[0]
        stride = args.stride or max(1, patch // 4)
        mean, std = loaded.info["mean"], loaded.info["std"]
        grey = [(0.5 - m) / s for m, s in zip(mean, std)]  # mid-grey in the network's input units
        probs = vis.occlusion(net, x, target=target, patch=patch, stride=stride, fill=grey)
        name = loaded.class_names[target]
        title = (
            f"{head}\n{_short(args.image)}: occlusion, class {name} (p={prob:.3f} unoccluded, lowest {probs.min():.3f})"
        )
        draw.draw_occlusion(vis.display_image(x, loaded.info), probs, patch, stride, out, title=title)
        detail = f"class {name}: p={prob:.3f} unoccluded, {probs.min():.3f} at the most sensitive square"
    else:  # deconv
        vis.resolve_layer(net, args.layer)
        bundle = loaded.data(
            getattr(args, "data", None), args.data_dir, download=args.download, batch_size=args.batch_size
        )
        result = vis.deconv_top(net, bundle, args.layer, args.channels, top=args.top, mean=bundle.mean, std=bundle.std)
        split = "test" if bundle.test is not None or getattr(bundle, "val_is_test", False) else "validation"
        draw.draw_deconv_top(result, out, title=f"{head}\n{bundle.name} {split} split: top {args.top} per map")
        detail = f"{result.method}, layer {args.layer}, maps {','.join(map(str, result.channels))}"
    print(f"wrote {out} ({detail})")
    return 0


def _target_probability(net, x, target: int | None) -> tuple[int, float]:
    """The class (the predicted one where ``target`` is None) and its probability for the whole image."""
    import torch

    from ..visualize.gradcam import _device, logits_of

    with torch.no_grad():
        probs = torch.softmax(logits_of(net(x.to(_device(net)))).float(), 1)[0]
    target = int(probs.argmax()) if target is None else target
    return target, float(probs[target])
