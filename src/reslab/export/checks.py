"""What every format shares: the network as it is exported (eval mode, logits only), the random inputs it is
checked on, the comparison with PyTorch, and writing the file atomically.

A file is written under a temporary name in the destination folder, checked there, and only then renamed
into place: a failed export or check never leaves a file that looks good, nor replaces the one that was there.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ExportError

#: fp32 tolerance of every check (the issue's 1e-4), absolute, for networks whose logits stay within 10 in
#: magnitude (trained classifiers); beyond, :data:`RELATIVE` of the largest |logit|: fp32 rounding is relative,
#: and untrained deep networks (resnet101 at random initialisation: logits near 1e3, resnet152: 4e4) differ from
#: onnxruntime's fused kernels by about 2e-6 of their scale (resnet152: 0.065 at 3.9e4)
TOLERANCE = 1e-4
RELATIVE = 1e-5
#: the batch the checks run (two, so the dynamic batch axis is exercised where the export traced one)
CHECK_BATCH = 2


class Logits(nn.Module):
    """``model`` as it is exported: its inference path, returning the logits tensor alone (GoogLeNet in eval
    mode returns its main logits; an output with ``.logits`` gives those)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return getattr(out, "logits", out)


def inference_module(model: nn.Module) -> Logits:
    """``model`` in eval mode, on the CPU, in fp32, wrapped in :class:`Logits`."""
    return Logits(model.float().cpu().eval()).eval()


def check_inputs(input_size: tuple[int, ...] | list[int], batch: int = CHECK_BATCH, seed: int = 0) -> torch.Tensor:
    """Random fp32 inputs (``batch``, C, H, W), reproducible (``seed``), on the scale of normalised images."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *(int(v) for v in input_size), generator=g)


@dataclass(frozen=True)
class CheckResult:
    """The comparison of an exported model with PyTorch on :func:`check_inputs`.

    Attributes:
        runtime: what ran the exported file (``onnxruntime``, ``torch.jit.load`` ...).
        max_abs_diff: the largest absolute difference of the logits.
        batch: the batch size checked.
        extra: checks before the comparison (e.g. ``onnx.checker ok``), shown first.
    """

    runtime: str
    max_abs_diff: float
    batch: int
    extra: str = ""
    #: the largest |logit| PyTorch gave (the tolerance scales with it beyond 10)
    scale: float = 1.0

    @property
    def tolerance(self) -> float:
        return tolerance(self.scale)

    def describe(self) -> str:
        """One line, e.g. ``onnx.checker ok, onnxruntime max |diff| 3e-06 vs PyTorch (batch 2)``."""
        head = f"{self.extra}, " if self.extra else ""
        scaled = ""
        if self.tolerance > TOLERANCE:
            scaled = f"; logits up to {self.scale:.3g}, tolerance {self.tolerance:.1g}"
        return f"{head}{self.runtime} max |diff| {self.max_abs_diff:.1g} vs PyTorch (batch {self.batch}{scaled})"


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an exporter's or runtime's error message (their messages run to pages), or its type."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:limit]


def tolerance(scale: float) -> float:
    """The largest difference accepted for logits up to ``scale`` in magnitude (see :data:`TOLERANCE`)."""
    return max(TOLERANCE, RELATIVE * float(scale))


def compare(expected: torch.Tensor, got, runtime: str, what: str, *, extra: str = "") -> CheckResult:
    """Check ``got`` (a tensor or array) against PyTorch's ``expected`` logits within :func:`tolerance`.

    Raises:
        ExportError: another shape, non-finite values, or a difference over the tolerance (names ``what``).
    """
    got = torch.as_tensor(got).float()
    if not torch.isfinite(expected).all():
        raise ExportError(
            f"{what}: the network itself gives non-finite outputs on random inputs in PyTorch "
            "(untrained or diverged?): there is nothing to check the export against"
        )
    if tuple(got.shape) != tuple(expected.shape):
        raise ExportError(
            f"{what}: {runtime} gives outputs of shape {tuple(got.shape)}, PyTorch "
            f"{tuple(expected.shape)}; the export is wrong and was not kept"
        )
    if not torch.isfinite(got).all():
        raise ExportError(f"{what}: {runtime} gives non-finite outputs; the export was not kept")
    diff = float((got - expected.float()).abs().max()) if got.numel() else 0.0
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    if not diff <= tolerance(scale):
        raise ExportError(
            f"{what}: {runtime} differs from PyTorch by up to {diff:.3g} (> {tolerance(scale):.3g} "
            f"allowed for logits up to {scale:.3g}); the export was not kept"
        )
    return CheckResult(runtime, diff, int(expected.shape[0]), extra, scale)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path next to ``path`` to write and check; renamed to ``path`` when the block succeeds,
    removed when it raises (the file that was at ``path``, if any, stays as it was)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _default_mode())  # mkstemp makes it private; the export is an ordinary file
        os.replace(tmp_path, path)
    except (OSError, RuntimeError) as e:
        from ..training.checkpoint import write_failure

        if isinstance(e, RuntimeError) and "write" not in str(e).lower() and not isinstance(e.__cause__, OSError):
            raise  # not a write failure
        kept = f"the previous {path} is intact" if path.exists() else "nothing was written"
        raise ExportError(f"could not write {path}: {write_failure(e, path.parent)}; {kept}") from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: Path, data: bytes) -> None:
    """``data`` into ``path`` by Python's file writer (its failures are OSErrors with the OS's errno)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _default_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask
