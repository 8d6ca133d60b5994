"""Every published figure a reproduction report quotes, each with its source.

A figure is data: the paper, the table or figure, the data set, what was measured and the value.
Errors are percentages as the papers print them (:attr:`PaperFigure.error` gives the fraction);
"fail" (Identity Mappings Table 1: test error above 20%) has no value.
"""

from __future__ import annotations

from dataclasses import dataclass

RESNET = "He et al. 2015, Deep Residual Learning (arXiv 1512.03385)"
IDENTITY = "He et al. 2016, Identity Mappings in Deep Residual Networks (arXiv 1603.05027)"
DENSENET = "Huang et al. 2017, Densely Connected Convolutional Networks (arXiv 1608.06993)"

C10 = "CIFAR-10 test set, with augmentation"
IMAGENET = "ImageNet val, top-1 error, 10-crop (another data set: not comparable with CIFAR-10 numbers)"


@dataclass(frozen=True)
class PaperFigure:
    """One published number: ``percent`` (None where the paper reports a failure or only a curve)."""

    paper: str
    where: str  # table / figure and row
    dataset: str
    percent: float | None
    note: str = ""  # "fail (test error above 20%)", "best of 5 runs; mean 6.61 +- 0.16", ...

    @property
    def error(self) -> float | None:
        """The error as a fraction (what results.csv holds)."""
        return None if self.percent is None else self.percent / 100.0

    @property
    def source(self) -> str:
        """One line: paper, where, data set (and the note)."""
        text = f"{self.paper}, {self.where}; {self.dataset}"
        return f"{text}; {self.note}" if self.note else text

    def shown(self) -> str:
        """The value as a report cell: ``6.43%``, ``fail (>20%)`` or ``curve only``."""
        if self.percent is not None:
            return f"{self.percent:.2f}%"
        return "fail (>20%)" if self.note.startswith("fail") else "no number"


FAIL = "fail (test error above 20%)"


def _t6(percent: float | None, depth: int, note: str = "") -> PaperFigure:
    return PaperFigure(RESNET, f"Table 6, ResNet-{depth}", C10, percent, note)


def _plain(depth: int) -> PaperFigure:
    return PaperFigure(RESNET, f"Figure 6 (left), plain-{depth}", C10, None, "curves only; the paper gives no table")


#: Identity Mappings Section 3.1: "we report the median accuracy of 5 runs for each architecture on CIFAR"
MEDIAN5 = "median of 5 runs"


def _t2(percent: float, depth: int, unit: str) -> PaperFigure:
    return PaperFigure(IDENTITY, f"Table 2, ResNet-{depth}, unit {unit}", C10, percent, MEDIAN5)


def _t1(percent: float | None, row: str) -> PaperFigure:
    note = f"{FAIL}; {MEDIAN5}" if percent is None else MEDIAN5
    return PaperFigure(IDENTITY, f"Table 1, ResNet-110, {row}", C10, percent, note)


#: every figure, by key (experiments refer to these keys)
FIGURES: dict[str, PaperFigure] = {
    # Deep Residual Learning, Table 6 (CIFAR-10) and Figure 6 (plain nets: curves only)
    "resnet20": _t6(8.75, 20),
    "resnet32": _t6(7.51, 32),
    "resnet44": _t6(7.17, 44),
    "resnet56": _t6(6.97, 56),
    "resnet110": _t6(6.43, 110, "best of 5 runs; mean 6.61 +- 0.16"),
    "resnet1202": _t6(7.93, 1202),
    **{f"plain{d}": _plain(d) for d in (20, 32, 44, 56, 110)},
    # Deep Residual Learning, Table 3 (ImageNet ResNet-34)
    "imagenet34-plain": PaperFigure(RESNET, "Table 3, plain-34", IMAGENET, 28.54),
    "imagenet34-a": PaperFigure(RESNET, "Table 3, ResNet-34 A", IMAGENET, 25.03),
    "imagenet34-b": PaperFigure(RESNET, "Table 3, ResNet-34 B", IMAGENET, 24.52),
    "imagenet34-c": PaperFigure(RESNET, "Table 3, ResNet-34 C", IMAGENET, 24.19),
    # Identity Mappings, Table 2 (Figure 4 units (a)-(e))
    **{
        f"unit{depth}-{letter}": _t2(value, depth, f"({letter})")
        for depth, values in ((110, (6.61, 8.17, 7.84, 6.71, 6.37)), (164, (5.93, 6.50, 6.14, 5.91, 5.46)))
        for letter, value in zip("abcde", values)
    },
    # Identity Mappings, Table 1 (ResNet-110, original unit, shortcut variants)
    "t1-identity": _t1(6.61, "original (identity shortcut)"),
    "t1-scaling-0.5-1": _t1(None, "constant scaling, shortcut 0.5, F 1"),
    "t1-scaling-0.5-0.5": _t1(12.35, "constant scaling, shortcut 0.5, F 0.5"),
    "t1-exclusive-0": _t1(None, "exclusive gating, b_g init 0"),
    "t1-exclusive-6": _t1(8.70, "exclusive gating, b_g init -6"),
    "t1-exclusive-7": _t1(9.81, "exclusive gating, b_g init -7"),
    "t1-shortcut-gating-0": _t1(12.86, "shortcut-only gating, b_g init 0"),
    "t1-shortcut-gating-6": _t1(6.91, "shortcut-only gating, b_g init -6"),
    "t1-conv1x1": _t1(12.22, "1x1 conv shortcut"),
    "t1-dropout": _t1(None, "dropout shortcut 0.5"),
    # DenseNet, Table 2 (C10+)
    "densenet40": PaperFigure(DENSENET, "Table 2, DenseNet (L=40, k=12), 1.0M params", C10, 5.24),
    "densenet_bc100": PaperFigure(DENSENET, "Table 2, DenseNet-BC (L=100, k=12), 0.8M params", C10, 4.51),
    "densenet-resnet110": PaperFigure(
        DENSENET,
        "Table 2, ResNet-110 (as quoted from Huang et al. 2016), 1.7M params",
        C10,
        6.41,
        "the ResNet paper's own figure is 6.61 mean / 6.43 best",
    ),
}


def figure(key: str | None) -> PaperFigure | None:
    """The figure stored under ``key`` (None for None)."""
    return None if key is None else FIGURES[key]
