"""Drawing the visualisations: each function writes one picture (matplotlib, Agg; no display needed).

Files are written atomically (a temporary file, then renamed): a failed drawing never leaves half a file
nor destroys an earlier one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .deconv import GUIDED, DeconvTop
from .filters import grid

#: how a method is named in the pictures' titles
METHOD_TITLES = {
    "deconvnet": "deconvnet (Zeiler and Fergus 2014, Section 2.1)",
    GUIDED: "guided backpropagation (not a conv / ReLU / max-pool chain up to this layer: no deconvnet)",
}


def check_out(path: str | Path) -> Path:
    """Refuse, before any work, an output picture that cannot be written: a directory, a missing or
    read-only folder, or a format matplotlib cannot write.

    Raises:
        ConfigError: naming ``--out`` and the problem.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--out {path} is a directory; --out takes a file name (e.g. {path / 'picture.png'})")
    ext = path.suffix.lower().lstrip(".")
    formats = FigureCanvasAgg.get_supported_filetypes()
    if ext not in formats:
        raise ConfigError(
            f"--out {path}: cannot write {'.' + ext if ext else 'a file without extension'}; "
            f"give one of {', '.join('.' + f for f in sorted(formats))} (e.g. picture.png)"
        )
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"--out {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"--out {path} is not writable (permission denied)")
    return path


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        fig.savefig(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise ConfigError(f"could not write {path}: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _show(ax, image: np.ndarray, **kwargs) -> None:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
        kwargs.setdefault("cmap", "gray")
    ax.imshow(image, interpolation="nearest", **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])


def draw_filters(filters: np.ndarray, path: str | Path, title: str = "") -> Path:
    """The filters (N, kh, kw, C) in [0, 1] as one grid (ZF Figures 5-6)."""
    g = grid(filters, pad=1)
    side = min(10.0, max(3.0, 0.6 * np.ceil(np.sqrt(len(filters))) + 1))
    fig = _figure(side, side + 0.4)
    ax = fig.subplots()
    _show(ax, g, vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def draw_feature_maps(
    maps: np.ndarray,
    path: str | Path,
    title: str = "",
    image: np.ndarray | None = None,
    channels: list[int] | None = None,
    limit: int = 64,
) -> Path:
    """Feature maps (C, H, W), each scaled to its own range (viridis), beside the input image."""
    chosen = list(channels) if channels is not None else list(range(min(limit, len(maps))))
    n = len(chosen) + (image is not None)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig = _figure(1.6 * cols, 1.6 * rows + 0.6)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    k = 0
    if image is not None:
        _show(axes[0], image, vmin=0, vmax=1)
        axes[0].set_title("input", fontsize=7)
        k = 1
    for c in chosen:
        _show(axes[k], maps[c], cmap="viridis")
        axes[k].set_title(f"{c} (max {float(maps[c].max()):.3g})", fontsize=7)
        k += 1
    for ax in axes[k:]:
        ax.axis("off")
    more = f" ({len(chosen)} of {len(maps)} maps)" if channels is None and len(maps) > len(chosen) else ""
    fig.suptitle(title + more, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def draw_heatmap(
    image: np.ndarray, heat: np.ndarray, path: str | Path, title: str = "", label: str = "Grad-CAM"
) -> Path:
    """The image, and the heatmap (H, W) in [0, 1] over it (jet, half transparent)."""
    fig = _figure(6.4, 3.6)
    a, b = fig.subplots(1, 2)
    _show(a, image, vmin=0, vmax=1)
    a.set_title("input", fontsize=8)
    _show(b, image, vmin=0, vmax=1)
    im = b.imshow(heat, cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="bilinear")
    b.set_title(label, fontsize=8)
    fig.colorbar(im, ax=b, fraction=0.046, pad=0.04)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def draw_occlusion(
    image: np.ndarray, probs: np.ndarray, patch: int, stride: int, path: str | Path, title: str = ""
) -> Path:
    """ZF Figure 7: the image, and the class probability with the grey square centred at each pixel."""
    fig = _figure(6.4, 3.6)
    a, b = fig.subplots(1, 2)
    _show(a, image, vmin=0, vmax=1)
    a.set_title(f"input (grey square {patch}px, step {stride}px)", fontsize=8)
    rows, cols = probs.shape
    # cell (i, j) is drawn around the square's centre, (i * stride + patch / 2, j * stride + patch / 2)
    c0 = (patch - 1) / 2
    extent = (c0 - stride / 2, c0 + (cols - 0.5) * stride, c0 + (rows - 0.5) * stride, c0 - stride / 2)
    im = b.imshow(probs, cmap="jet", extent=extent, interpolation="nearest")
    b.set_xlim(-0.5, image.shape[1] - 0.5)
    b.set_ylim(image.shape[0] - 0.5, -0.5)
    b.set_xticks([])
    b.set_yticks([])
    b.set_title("probability of the class, square centred here", fontsize=8)
    fig.colorbar(im, ax=b, fraction=0.046, pad=0.04)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def draw_deconv_top(result: DeconvTop, path: str | Path, title: str = "") -> Path:
    """ZF Figure 2: per feature map, the reconstructions of its top images (left) beside the matching image
    patches (right), 3 columns each."""
    n = len(result.channels)
    fig = _figure(7.0, 3.3 * n + 0.8)
    axes = np.atleast_2d(fig.subplots(n, 2))
    for k, channel in enumerate(result.channels):
        size = max(p.shape[0] for p in result.patches[k])
        recs = [_pad_to(p, size, 0.5) for p in result.reconstruction_patches[k]]
        pats = [_pad_to(p, size, 1.0) for p in result.patches[k]]
        _show(axes[k, 0], grid(np.stack(recs), columns=3, pad=max(1, size // 16)), vmin=0, vmax=1)
        _show(axes[k, 1], grid(np.stack(pats), columns=3, pad=max(1, size // 16)), vmin=0, vmax=1)
        axes[k, 0].set_title(f"{result.layer} map {channel}: projections", fontsize=8)
        axes[k, 1].set_title(f"map {channel}: image patches (max {result.values[k][0]:.3g})", fontsize=8)
    fig.suptitle(f"{title}\n{METHOD_TITLES.get(result.method, result.method)}", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _pad_to(patch: np.ndarray, size: int, fill: float) -> np.ndarray:
    h, w = patch.shape[:2]
    if (h, w) == (size, size):
        return patch
    out = np.full((size, size, patch.shape[2]), fill, dtype=np.float32)
    out[:h, :w] = patch
    return out
