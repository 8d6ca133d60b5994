"""``reslab report RUN_DIR``: one self-contained HTML page of a training run.

The page holds the configuration, the training curves (drawn from ``metrics.csv``), the confusion
matrix and per-class accuracy of the run's checkpoint on a split, the most confident mistakes with
their Grad-CAM, and the first-layer filters. Every picture is an embedded ``data:image/png`` URI and
the page has no script and no external resource, so it can be mailed, archived or opened offline.

The evaluation is :func:`reslab.training.evaluation.evaluate_model` over the data the run trained on
(:meth:`reslab.training.loading.LoadedModel.data`), as ``reslab eval`` does; one pass gives both the
metrics and the mistakes, and the two are checked against each other before anything is written.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, DataError, TrainingError
from ..training.run_dir import REPORT_MARK, is_reslab_report

#: the first line of every page reslab writes; a file without it is never overwritten
#: pictures smaller than this (pixels, longer side) are enlarged by a whole factor, pixels kept sharp
DISPLAY_SIZE = 96


@dataclass
class Mistake:
    """One wrong prediction: the image the network saw (H, W, C in [0, 1]), the classes and probabilities."""

    index: int
    image: np.ndarray
    true: int
    predicted: int
    probability: float
    true_probability: float
    cam: np.ndarray | None = None


class _MistakeRecorder(nn.Module):
    """Wraps a classifier for :func:`evaluate_model`: passes its logits on unchanged and keeps, on the
    CPU, the ``keep`` most confident wrong predictions seen so far (labels come from :meth:`loader`)."""

    def __init__(self, model: nn.Module, keep: int):
        super().__init__()
        self.model = model
        self.keep = keep
        self.labels: torch.Tensor | None = None
        self.seen = 0
        self.wrong = 0
        self.kept: list[tuple[float, int, torch.Tensor, int, int, float]] = []

    def loader(self, loader):
        """Yield ``loader``'s batches, noting each batch's labels for the next forward pass."""
        for images, labels in loader:
            self.labels = labels
            yield images, labels

    def forward(self, x: torch.Tensor):
        out = self.model(x)
        logits = getattr(out, "logits", out)
        probs = torch.softmax(logits.float(), dim=1)
        labels = self.labels.to(probs.device)
        confidence, predicted = probs.max(1)
        wrong = (predicted != labels).nonzero().flatten()
        self.wrong += int(wrong.numel())
        if wrong.numel() and self.keep:
            top = wrong[confidence[wrong].argsort(descending=True, stable=True)[: self.keep]]
            for i in top.tolist():
                self.kept.append(
                    (
                        float(confidence[i]),
                        self.seen + i,
                        x[i].detach().float().cpu().clone(),
                        int(labels[i]),
                        int(predicted[i]),
                        float(probs[i, labels[i]]),
                    )
                )
            # most confident first; among equals the earlier image, so the choice is reproducible
            self.kept.sort(key=lambda m: (-m[0], m[1]))
            del self.kept[self.keep :]
        self.seen += x.shape[0]
        return out


# -- checks done before any work ----------------------------------------------------------------------


def check_report_out(out: Path) -> None:
    """Refuse an output path the report may not be written to: a directory, an unwritable folder, or an
    existing file that is not a previous reslab report (a user's own ``report.html`` is never replaced).

    Raises:
        ConfigError: naming the path and what to do.
    """
    from ..training.run_dir import check_writable

    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; --out takes a file name (e.g. {out}/report.html)")
    if out.exists() and not is_reslab_report(out):
        raise ConfigError(f"{out} exists and is not a reslab report; it is left as it is: choose another --out")
    if out.exists() and not os.access(out, os.W_OK):
        raise ConfigError(f"{out} is not writable; choose another --out")
    check_writable(out.parent, f"--out {out}")


def find_checkpoint(run_dir: Path) -> Path:
    """The checkpoint a report shows: the run's ``best.pt``, else its ``last.pt``.

    Raises:
        ConfigError: ``run_dir`` is missing, a file, or not a reslab run directory.
        CheckpointError: the run has written no checkpoint yet.
    """
    from ..training.run_dir import MARKER, is_run_dir

    if not run_dir.exists():
        raise ConfigError(f"run directory {run_dir} not found")
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is a file; reslab report takes a run directory (the --out of reslab train)")
    if not is_run_dir(run_dir):
        raise ConfigError(f"{run_dir} is not a reslab run directory (no {MARKER}, best.pt or last.pt in it)")
    for name in ("best.pt", "last.pt"):
        if (run_dir / name).exists():
            return run_dir / name
    raise CheckpointError(f"{run_dir} holds no checkpoint yet (no best.pt or last.pt): nothing to evaluate")


# -- reading the run's records ------------------------------------------------------------------------
def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path} cannot be read: it is not UTF-8 text") from None
    except OSError as e:
        raise DataError(f"{path} cannot be read: {e.strerror or e}") from None


def read_metrics(path: Path) -> list[dict[str, float]]:
    """The per-epoch rows of a run's ``metrics.csv`` as numbers (empty cells: NaN); [] when it is missing.

    Raises:
        DataError: the file cannot be read, has no ``epoch`` column, or holds a value that is not a number.
    """
    if not path.exists():
        return []
    rows = list(csv.DictReader(io.StringIO(_read_text(path))))
    if rows and "epoch" not in rows[0]:
        raise DataError(f"{path} is not a reslab metrics file (no 'epoch' column)")
    parsed = []
    for line, row in enumerate(rows, start=2):
        values = {}
        for key, value in row.items():
            if key is None or value is None:
                raise DataError(f"{path} line {line}: {len(row)} cells for {len(rows[0])} columns")
            try:
                values[key] = float(value) if value.strip() else math.nan
            except ValueError:
                raise DataError(f"{path} line {line}: {key} is {value!r}, not a number") from None
        parsed.append(values)
    return parsed


# -- pictures -----------------------------------------------------------------------------------------
def png_data_uri(image: np.ndarray) -> str:
    """An (H, W), (H, W, 1) or (H, W, 3) array in [0, 1] (or uint8) as a ``data:image/png;base64`` URI."""
    from PIL import Image

    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = (np.clip(np.nan_to_num(a.astype(np.float64)), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _enlarge(image: np.ndarray, size: int = DISPLAY_SIZE) -> np.ndarray:
    """Repeat pixels by a whole factor so that a small image shows at about ``size`` px, sharp."""
    factor = max(1, size // max(image.shape[:2]))
    return image.repeat(factor, 0).repeat(factor, 1) if factor > 1 else image


def _enlarge_each(images: np.ndarray, size: int) -> np.ndarray:
    """:func:`_enlarge` for a stack (N, H, W, C)."""
    factor = max(1, size // max(images.shape[1:3]))
    return images.repeat(factor, 1).repeat(factor, 2) if factor > 1 else images


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def cam_overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a heat map (h, w in [0, 1], resized bilinearly to the image) in the jet colours over ``image``
    (H, W, C in [0, 1]); returns (H, W, 3) in [0, 1]."""
    from matplotlib import colormaps
    from PIL import Image

    h, w = image.shape[:2]
    cam = np.asarray(cam, dtype=np.float32)
    if cam.shape != (h, w):
        cam = np.asarray(Image.fromarray(cam).resize((w, h), Image.BILINEAR))
    heat = colormaps["jet"](np.clip(cam, 0.0, 1.0))[..., :3]
    return (1 - alpha) * _rgb(image) + alpha * heat


def curves_uri(rows: list[dict[str, float]], split: str) -> str:
    """Loss and top-1 per epoch (train and the per-epoch ``split``) and the learning rate, as one PNG URI."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in rows]
    fig = Figure(figsize=(12, 3.4), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax, metric, title in ((axes[0], "loss", "loss"), (axes[1], "top1", "top-1 accuracy")):
        for prefix, label in (("train", "train"), (split, split), (f"ema_{split}", f"EMA {split}")):
            ys = [r.get(f"{prefix}_{metric}", math.nan) for r in rows]
            if any(not math.isnan(y) for y in ys):
                ax.plot(epochs, ys, marker="o" if len(rows) < 30 else None, label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[2].plot(epochs, [r.get("lr", math.nan) for r in rows], marker="o" if len(rows) < 30 else None)
    axes[2].set_title("learning rate (epoch mean)")
    axes[2].set_xlabel("epoch")
    axes[2].grid(alpha=0.3)
    fig.tight_layout()
    return _figure_uri(fig)


# -- the page -----------------------------------------------------------------------------------------
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 1em 2em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
pre { background: #f5f5f5; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { background: #4a7fc1; height: 0.8em; display: inline-block; vertical-align: middle; }
.mistakes { display: flex; flex-wrap: wrap; gap: 1em; }
.mistake { border: 1px solid #ddd; padding: 0.5em; font-size: 0.85em; }
.mistake img, .pixels { image-rendering: pixelated; }
.note { color: #666; font-size: 0.9em; }
img { max-width: 100%; height: auto; }
img.confusion { max-width: min(100%, 640px); }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _img(uri: str, alt: str, cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<img src="{uri}" alt="{_e(alt)}"{c}>'


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)  # cells: ready-made <td> elements
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
    return str(value)


def write_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    split: str | None = None,
    device: str = "auto",
    data_dir: str | Path | None = None,
    batch_size: int | None = None,
    mistakes: int = 10,
) -> Path:
    """Write the HTML report of a training run and return its path.

    Args:
        run_dir: a run directory written by ``reslab train`` (its ``best.pt``, else ``last.pt``, is shown).
        out: the HTML file; default ``RUN_DIR/report.html``. An existing file is replaced only when it is a
            previous reslab report.
        split: ``"val"`` or ``"test"``: the split evaluated for the confusion matrix, per-class accuracy
            and mistakes; default the validation split where the run held one out, else the test split.
        device: ``auto``, ``cpu``, ``cuda``... data_dir: where the data lives (default: the run's).
        batch_size: evaluation batch size (default: the run's).
        mistakes: how many of the most confident wrong predictions to show (0: none).

    Returns:
        The path of the report written.

    Raises:
        ConfigError: ``run_dir`` is not a run directory, a bad ``split`` or ``out``.
        CheckpointError: no checkpoint, or one that cannot be read. DataError: unreadable ``metrics.csv``
        or ``config.yaml``, or data that cannot be loaded.
    """
    from .. import __version__
    from ..training.evaluation import EvalResult, RelabelledLoader, evaluate_model, match_class_names, plot_confusion
    from ..training.loading import load_model
    from ..training.runtime import resolve_device

    started = time.perf_counter()
    run_dir = Path(run_dir).expanduser()
    out = run_dir / "report.html" if out is None else Path(out).expanduser()
    if split not in (None, "val", "test"):
        raise ConfigError(f"split must be val or test, got {split!r}")
    if isinstance(mistakes, bool) or not isinstance(mistakes, int) or mistakes < 0:
        raise ConfigError(f"mistakes must be a whole number >= 0, got {mistakes!r}")
    ckpt_path = find_checkpoint(run_dir)
    check_report_out(out)
    # the records are read first: an unreadable one stops the report before minutes of evaluation
    rows = read_metrics(run_dir / "metrics.csv")
    config_file = run_dir / "config.yaml"
    config_text = _read_text(config_file) if config_file.exists() else None
    summary = _read_summary(run_dir / "summary.json")

    dev = resolve_device(device)
    loaded = load_model(ckpt_path, device=dev)
    ckpt, net = loaded.checkpoint, loaded.net
    bundle = loaded.data(data_dir=data_dir, batch_size=batch_size, device=dev)
    if split is None:
        split = "test" if bundle.val_is_test else "val"
    split_note = ""
    if split == "test" and bundle.val_is_test:
        split_note = "this run held out no validation split, so its per-epoch figures and its choice of best.pt used "
        split_note += "this same test split: the test figures below are optimistic"
    loader = bundle.split_loader(split, what=f"{run_dir}'s data ({bundle.name})")  # a split it lacks: refused
    class_names = [str(n) for n in bundle.class_names]
    order = match_class_names(ckpt.get("class_names"), class_names, checkpoint=str(ckpt_path), data=bundle.name)
    if order is not None:
        loader = RelabelledLoader(loader, order)
        class_names = [str(n) for n in ckpt["class_names"]]

    # in eval mode already: evaluate_model restores the mode it finds, and a new Module is in training mode,
    # which would leave the network's BatchNorm and dropout training for the Grad-CAM that follows
    recorder = _MistakeRecorder(net, mistakes).eval()
    metrics = evaluate_model(recorder, recorder.loader(loader), bundle.num_classes, device=dev)
    result = EvalResult(metrics, split, bundle.name, class_names, str(ckpt_path))
    correct = int(metrics.confusion.diagonal().sum())
    if recorder.seen != metrics.n or recorder.wrong != metrics.n - correct:
        # the confusion matrix and the mistakes shown must describe the same predictions
        raise TrainingError(
            f"the report's mistakes ({recorder.wrong} of {recorder.seen}) disagree with the evaluation "
            f"({metrics.n - correct} of {metrics.n}); no report written"
        )
    found = _mistakes(recorder, bundle, net, dev)

    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "confusion.png"
        plot_confusion(
            metrics.confusion.cpu(), class_names, png, title=f"{bundle.name} {split}: top-1 {metrics.top1:.4f}"
        )
        confusion_uri = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")
    filters_html = _filters_section(net)
    eval_split = "test" if bundle.val_is_test else "val"
    page = _page(
        run_dir=run_dir,
        ckpt=ckpt,
        ckpt_path=ckpt_path,
        result=result,
        split_note=split_note,
        rows=rows,
        eval_split=eval_split,
        config_text=config_text,
        summary=summary,
        confusion_uri=confusion_uri,
        mistakes=found,
        wanted=mistakes,
        wrong=recorder.wrong,
        filters_html=filters_html,
        version=__version__,
        seconds=time.perf_counter() - started,
    )
    _write_atomic(out, page)
    return out


def _read_summary(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not valid JSON (line {e.lineno}: {e.msg})") from None
    return data if isinstance(data, dict) else None


def _mistakes(recorder: _MistakeRecorder, bundle, net: nn.Module, dev: torch.device) -> list[Mistake]:
    """The kept mistakes as pictures (un-normalised) with the Grad-CAM of the predicted class."""
    from . import display_image, gradcam

    norm = {"mean": list(bundle.mean), "std": list(bundle.std)}
    found = []
    for prob, index, x, true, predicted, true_prob in recorder.kept:
        x = x.clone()  # recorded under inference mode; Grad-CAM needs a tensor autograd may use
        image = display_image(x, norm)
        with torch.enable_grad():
            cam = gradcam(net, x.unsqueeze(0).to(dev), target=predicted)
        found.append(Mistake(index, image, true, predicted, prob, true_prob, np.asarray(cam)))
    return found


def _filters_section(net: nn.Module) -> str:
    from . import filters, grid

    weights = np.asarray(filters(net))
    n, kh, kw, c = weights.shape
    # each filter shown about 64 px wide, whatever its kernel size
    shown = grid(_enlarge_each(weights, 64), pad=4)
    return (
        f"<p>{n} filters of {kh}x{kw} pixels, {'RGB' if c == 3 else 'one channel'}, each scaled to its own range.</p>"
        + _img(png_data_uri(shown), "first-layer filters", "pixels")
    )


def _page(
    *,
    run_dir,
    ckpt,
    ckpt_path,
    result,
    split_note,
    rows,
    eval_split,
    config_text,
    summary,
    confusion_uri,
    mistakes,
    wanted,
    wrong,
    filters_html,
    version,
    seconds,
) -> str:
    import yaml

    m = result.metrics
    names = result.class_names
    title = f"reslab report: {run_dir.resolve().name}"
    parts = [
        REPORT_MARK,
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="generator" content="reslab report">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
    ]
    epoch = ckpt.get("epoch")
    parts.append(
        f'<p class="note">{_e(ckpt["model_name"])} on {_e(result.data)}; checkpoint {_e(ckpt_path.name)}'
        + (f" (epoch {_e(epoch)})" if epoch is not None else "")
        + f"; written by reslab {_e(version)} on {_e(time.strftime('%Y-%m-%d %H:%M'))} in {seconds:.1f} s.</p>"
    )

    parts.append(f'<h2 id="summary">Summary: {_e(ckpt_path.name)} on the {_e(result.split)} split</h2>')
    parts.append(
        _table(
            ["images", "top-1", f"top-{m.k}", "loss"],
            [
                [
                    f'<td class="num">{m.n}</td>',
                    f'<td class="num">{m.top1:.4f}</td>',
                    f'<td class="num">{m.top5:.4f}</td>',
                    f'<td class="num">{m.loss:.4f}</td>',
                ]
            ],
        )
    )
    if split_note:
        parts.append(f'<p class="note">Note: {_e(split_note)}.</p>')
    if summary:
        flat = [(k, v) for k, v in summary.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
        if flat:
            parts.append("<p>The run's summary.json:</p>")
            parts.append(
                _table(
                    ["key", "value"], [[f"<td>{_e(k)}</td>", f'<td class="num">{_e(_fmt(v))}</td>'] for k, v in flat]
                )
            )

    parts.append('<h2 id="curves">Training curves</h2>')
    if rows:
        parts.append(_img(curves_uri(rows, eval_split), "training curves"))
        parts.append(
            f'<p class="note">From metrics.csv: {len(rows)} epoch(s); the per-epoch evaluation is on the '
            f"{_e(eval_split)} split.</p>"
        )
    else:
        parts.append('<p class="note">No epoch has finished yet (metrics.csv is missing or empty).</p>')

    parts.append('<h2 id="confusion">Confusion matrix</h2>')
    parts.append(_img(confusion_uri, "confusion matrix", "confusion"))

    parts.append('<h2 id="per-class">Per-class accuracy</h2>')
    per_class = []
    for name, acc, n in result.per_class():
        if math.isnan(acc):  # a class without images in this split
            shown, bar = "no images", ""
        else:
            shown, bar = f"{acc:.4f}", f'<span class="bar" style="width:{acc * 150:.0f}px"></span>'
        per_class.append(
            [f"<td>{_e(name)}</td>", f'<td class="num">{shown}</td>', f"<td>{bar}</td>", f'<td class="num">{n}</td>']
        )
    parts.append(_table(["class", "accuracy", "", "images"], per_class))

    parts.append('<h2 id="mistakes">The most confident mistakes</h2>')
    if not wanted:
        parts.append('<p class="note">Not asked for (--mistakes 0).</p>')
    elif not mistakes:
        parts.append(f'<p class="note">No mistakes: every one of the {m.n} images is classified correctly.</p>')
    else:
        parts.append(
            f'<p class="note">{len(mistakes)} of the {wrong} wrong predictions, the most confident first: the image '
            "as the network saw it, and the Grad-CAM of the predicted class over it (where the evidence for the "
            "wrong answer lies).</p>"
        )
        parts.append('<div class="mistakes">')
        for k in mistakes:
            img = _enlarge(_rgb(k.image))
            cam = cam_overlay(img, k.cam)  # the heat map resized smoothly to the enlarged image
            parts.append(
                f'<div class="mistake">{_img(png_data_uri(img), f"image {k.index}")} '
                f"{_img(png_data_uri(cam), f'Grad-CAM of image {k.index}')}<br>"
                f"#{k.index}: true <b>{_e(names[k.true])}</b>, predicted <b>{_e(names[k.predicted])}</b><br>"
                f"p(predicted) {k.probability:.3f}, p(true) {k.true_probability:.3f}</div>"
            )
        parts.append("</div>")

    parts.append('<h2 id="filters">First-layer filters</h2>')
    parts.append(filters_html)

    parts.append('<h2 id="config">Configuration</h2>')
    if config_text is None:
        config_text = yaml.safe_dump(ckpt["config"], sort_keys=False)
        parts.append('<p class="note">config.yaml is missing; this is the configuration stored in the checkpoint.</p>')
    parts.append(f"<pre>{_e(config_text)}</pre>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _write_atomic(out: Path, page: str) -> None:
    """Write ``page`` to a temporary file beside ``out`` and rename it over: a failed write leaves any
    previous report whole."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {out}: {e.strerror or e}") from None
