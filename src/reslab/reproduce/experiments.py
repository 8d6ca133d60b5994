"""The six experiments as data: per budget, a grid of arms (label, model, model_args, the paper's figure,
the recipe family) and the paper's claims about them.

Read one experiment per block below. An arm's ``label`` names its run directories
(``OUT/runs/<label>-seed<k>``) and is what ``--only`` selects. ``recipe`` says which paper's training
recipe the ``paper`` budget uses for the arm (:mod:`reslab.reproduce.budgets`): ``resnet`` (Deep Residual
Learning, no warm-up), ``resnet-warmup`` (the same with 0.01 for the first 400 iterations: the ResNet
paper for ResNet-110 and 1202, Identity Mappings for all its CIFAR experiments) or ``densenet``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

BUDGETS = ("quick", "standard", "paper")


@dataclass(frozen=True)
class Arm:
    """One network of a grid (trained once per seed)."""

    label: str
    model: str
    model_args: dict[str, Any] = field(default_factory=dict)
    variant: str = ""  # what differs, in words ("plain", "option B", "unit (e) full pre-activation")
    paper: str | None = None  # key of the published figure (reslab.reproduce.papers.FIGURES)
    recipe: str = "resnet"  # resnet | resnet-warmup | densenet (the paper budget's recipe)
    family: str = ""  # degradation figure panel: "plain" or "residual"
    depth: int | None = None


@dataclass(frozen=True)
class Claim:
    """A claim of the paper, checked on the arms' mean errors over seeds (:mod:`reslab.reproduce.claims`).

    kinds:
      ``worse``: arms[0]'s ``metric`` error is higher than arms[1]'s.
      ``better``: arms[0]'s is lower than arms[1]'s.
      ``decreasing`` / ``increasing``: the error falls / rises along ``arms`` (those measured, at least two).
      ``lowest``: arms[0]'s is the lowest of ``arms``.
      ``all_better``: every one of arms[:-1] is lower than arms[-1]'s.
      ``better_fewer_params``: arms[0] is lower than arms[1] with at most 1.1x arms[1]'s parameters.
    """

    text: str
    kind: str
    arms: tuple[str, ...]
    metric: str = "test"  # "test" (final test error) or "train" (final training error)
    source: str = ""


@dataclass(frozen=True)
class Grid:
    arms: tuple[Arm, ...]
    claims: tuple[Claim, ...]

    def labels(self) -> list[str]:
        return [a.label for a in self.arms]


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    about: str
    grids: dict[str, Grid]
    style: str = "curves"  # "degradation": the Figure 6 panels (plain | residual)

    def grid(self, budget: str) -> Grid:
        if budget not in self.grids:
            raise ConfigError(f"unknown budget {budget!r}; budgets: {', '.join(BUDGETS)}")
        return self.grids[budget]


# -- degradation: Deep Residual Learning, Section 4.2, Figure 6 and Table 6 ----------------------------
def _degradation(depths: tuple[int, ...], extra_resnets: tuple[int, ...] = ()) -> Grid:
    plain = [
        Arm(f"plain{d}", f"plain{d}", variant="plain (no shortcuts)", paper=f"plain{d}", family="plain", depth=d)
        for d in depths
    ]
    res = [
        Arm(
            f"resnet{d}",
            f"resnet{d}",
            variant="residual (option A)",
            paper=f"resnet{d}",
            recipe="resnet-warmup" if d >= 110 else "resnet",
            family="residual",
            depth=d,
        )
        for d in (*depths, *extra_resnets)
    ]
    lo, hi = min(depths), max(depths)
    src = "Deep Residual Learning, Section 4.2 / Figure 6"
    claims = [
        Claim(
            f"plain-{hi} trains worse than plain-{lo} (degradation)",
            "worse",
            (f"plain{hi}", f"plain{lo}"),
            "train",
            src,
        ),
    ]
    if len(depths) > 2:
        claims.append(
            Claim(
                "plain nets' training error rises with depth (" + " -> ".join(map(str, depths)) + ")",
                "increasing",
                tuple(f"plain{d}" for d in depths),
                "train",
                src,
            )
        )
    all_res = (*depths, *extra_resnets)
    claims += [
        Claim(
            f"ResNet-{hi} trains better than plain-{hi} (shortcuts solve the degradation)",
            "better",
            (f"resnet{hi}", f"plain{hi}"),
            "train",
            src,
        ),
        Claim(
            "ResNets' test error falls with depth (" + " -> ".join(map(str, all_res)) + ")",
            "decreasing",
            tuple(f"resnet{d}" for d in all_res),
            "test",
            "Deep Residual Learning, Table 6",
        ),
        *(
            Claim(f"ResNet-{d} beats plain-{d} (test error)", "better", (f"resnet{d}", f"plain{d}"), "test", src)
            for d in depths
        ),
    ]
    return Grid(tuple(plain + res), tuple(claims))


DEGRADATION = Experiment(
    "degradation",
    "The degradation problem: plain vs residual networks",
    "Plain networks train worse as they get deeper, residual ones do not (Deep Residual Learning, Section 4.2, "
    "Figure 6; final errors beside Table 6).",
    {
        "quick": _degradation((20, 56)),
        "standard": _degradation((20, 32, 44, 56)),
        "paper": _degradation((20, 32, 44, 56), extra_resnets=(110,)),
    },
    style="degradation",
)


# -- shortcuts: Deep Residual Learning, Section 3.3 / Table 3 (options A, B, C) ------------------------
def _shortcuts(depth: int) -> Grid:
    src = "Deep Residual Learning, Table 3 (ImageNet ResNet-34)"
    arms = (
        Arm("plain", f"plain{depth}", variant="plain (no shortcuts)", paper="imagenet34-plain", depth=depth),
        Arm(
            "option-a",
            f"resnet{depth}",
            {"shortcut": "A"},
            "A: zero-padding identity shortcuts",
            "imagenet34-a",
            depth=depth,
        ),
        Arm(
            "option-b",
            f"resnet{depth}",
            {"shortcut": "B"},
            "B: projections where the shape changes",
            "imagenet34-b",
            depth=depth,
        ),
        Arm("option-c", f"resnet{depth}", {"shortcut": "C"}, "C: projections everywhere", "imagenet34-c", depth=depth),
    )
    claims = (
        Claim(
            "every shortcut option beats plain",
            "all_better",
            ("option-a", "option-b", "option-c", "plain"),
            "test",
            src,
        ),
        Claim("B is better than A", "better", ("option-b", "option-a"), "test", src),
        Claim("C is (marginally) better than B", "better", ("option-c", "option-b"), "test", src),
    )
    return Grid(arms, claims)


SHORTCUTS = Experiment(
    "shortcuts",
    "Shortcut options A, B, C (and plain)",
    "Identity (zero-padding) vs projection shortcuts on a CIFAR ResNet (Deep Residual Learning, Section 3.3); "
    "the paper's Table 3 measured them on ImageNet ResNet-34, quoted as such (another data set).",
    {"quick": _shortcuts(20), "standard": _shortcuts(56), "paper": _shortcuts(56)},
)


# -- preact-units: Identity Mappings, Figure 4 (a)-(e) / Table 2 ----------------------------------------
UNITS = (
    ("a", "original", "(a) original"),
    ("b", "bn_after_add", "(b) BN after addition"),
    ("c", "relu_before_add", "(c) ReLU before addition"),
    ("d", "relu_only_preact", "(d) ReLU-only pre-activation"),
    ("e", "full_preact", "(e) full pre-activation"),
)


def _units(depths: tuple[int, ...], paper_depth: dict[int, int]) -> Grid:
    """The five units on each depth; ``paper_depth`` maps a depth to the Table 2 row quoted beside it."""
    arms, claims = [], []
    src = "Identity Mappings, Table 2"
    for d in depths:
        model = "preact_resnet164" if d == 164 else f"resnet{d}"  # 164: the bottleneck network of Table 2
        for letter, unit, words in UNITS:
            arms.append(
                Arm(
                    f"resnet{d}-{letter}",
                    model,
                    {"unit": unit},
                    words,
                    f"unit{paper_depth[d]}-{letter}",
                    "resnet-warmup",
                    depth=d,
                )
            )
        lab = {letter: f"resnet{d}-{letter}" for letter, _, _ in UNITS}
        claims += [
            Claim(
                f"ResNet-{d}: full pre-activation (e) is the best unit",
                "lowest",
                tuple(lab[x] for x in "eabcd"),
                "test",
                src,
            ),
            Claim(
                f"ResNet-{d}: BN after addition (b) is worse than the original (a)",
                "worse",
                (lab["b"], lab["a"]),
                "test",
                src,
            ),
            Claim(
                f"ResNet-{d}: ReLU before addition (c) is worse than the original (a)",
                "worse",
                (lab["c"], lab["a"]),
                "test",
                src,
            ),
        ]
    return Grid(tuple(arms), tuple(claims))


PREACT_UNITS = Experiment(
    "preact-units",
    "Residual-unit orders (a)-(e)",
    "The five residual units of Identity Mappings Figure 4 on one CIFAR ResNet; Table 2 quoted beside "
    "(ResNet-110 for basic-block nets, ResNet-164 for the bottleneck one).",
    {
        "quick": _units((20,), {20: 110}),
        "standard": _units((110,), {110: 110}),
        "paper": _units((110, 164), {110: 110, 164: 164}),
    },
)


# -- identity-shortcuts: Identity Mappings, Figure 2 / Table 1 ------------------------------------------
#: (label, model_args, words, paper key); the identity arm passes no variant (the ResNet's default)
VARIANTS = (
    ("identity", {}, "identity shortcut (original unit)", "t1-identity"),
    (
        "scaling-0.5-1",
        {"shortcut_variant": "scaling", "shortcut_scale": 0.5, "branch_scale": 1.0},
        "constant scaling: shortcut 0.5, F 1",
        "t1-scaling-0.5-1",
    ),
    (
        "scaling-0.5-0.5",
        {"shortcut_variant": "scaling", "shortcut_scale": 0.5, "branch_scale": 0.5},
        "constant scaling: shortcut 0.5, F 0.5",
        "t1-scaling-0.5-0.5",
    ),
    (
        "exclusive-gating-0",
        {"shortcut_variant": "exclusive_gating", "gate_bias": 0.0},
        "exclusive gating, b_g init 0",
        "t1-exclusive-0",
    ),
    (
        "exclusive-gating-6",
        {"shortcut_variant": "exclusive_gating", "gate_bias": -6.0},
        "exclusive gating, b_g init -6",
        "t1-exclusive-6",
    ),
    (
        "exclusive-gating-7",
        {"shortcut_variant": "exclusive_gating", "gate_bias": -7.0},
        "exclusive gating, b_g init -7",
        "t1-exclusive-7",
    ),
    (
        "shortcut-gating-0",
        {"shortcut_variant": "shortcut_gating", "gate_bias": 0.0},
        "shortcut-only gating, b_g init 0",
        "t1-shortcut-gating-0",
    ),
    (
        "shortcut-gating-6",
        {"shortcut_variant": "shortcut_gating", "gate_bias": -6.0},
        "shortcut-only gating, b_g init -6",
        "t1-shortcut-gating-6",
    ),
    ("conv1x1", {"shortcut_variant": "conv1x1"}, "1x1 convolution shortcut", "t1-conv1x1"),
    ("dropout", {"shortcut_variant": "dropout", "shortcut_dropout": 0.5}, "dropout shortcut 0.5", "t1-dropout"),
)
QUICK_VARIANTS = ("identity", "scaling-0.5-0.5", "exclusive-gating-6", "shortcut-gating-6", "conv1x1", "dropout")


def _identity_shortcuts(depth: int, labels: tuple[str, ...] | None = None) -> Grid:
    arms = tuple(
        Arm(label, f"resnet{depth}", dict(args), words, paper, "resnet-warmup", depth=depth)
        for label, args, words, paper in VARIANTS
        if labels is None or label in labels
    )
    chosen = [a.label for a in arms]
    claim = Claim(
        "the identity shortcut is the best of the shortcut variants",
        "lowest",
        tuple(chosen),
        "test",
        "Identity Mappings, Table 1",
    )
    return Grid(arms, (claim,))


IDENTITY_SHORTCUTS = Experiment(
    "identity-shortcuts",
    "Shortcut variants (constant scaling, gating, 1x1 conv, dropout)",
    "The shortcut variants of Identity Mappings Figure 2 as options of the one ResNet, original unit; Table 1 "
    "(ResNet-110) quoted beside; 'fail' there means a test error above 20%.",
    {
        "quick": _identity_shortcuts(20, QUICK_VARIANTS),
        "standard": _identity_shortcuts(110),
        "paper": _identity_shortcuts(110),
    },
)


# -- depth: Deep Residual Learning, Table 6 -------------------------------------------------------------
def _depth(depths: tuple[int, ...]) -> Grid:
    arms = tuple(
        Arm(
            f"resnet{d}",
            f"resnet{d}",
            variant="option A",
            paper=f"resnet{d}",
            recipe="resnet-warmup" if d >= 110 else "resnet",
            depth=d,
        )
        for d in depths
    )
    upto = tuple(d for d in depths if d <= 110)
    src = "Deep Residual Learning, Table 6"
    claims = [
        Claim(
            "deeper ResNets have lower test error (" + " -> ".join(map(str, upto)) + ")",
            "decreasing",
            tuple(f"resnet{d}" for d in upto),
            "test",
            src,
        )
    ]
    claims.append(
        Claim("ResNet-1202 is worse than ResNet-110 (overfitting)", "worse", ("resnet1202", "resnet110"), "test", src)
    )
    return Grid(arms, tuple(claims))


DEPTH = Experiment(
    "depth",
    "ResNet depth on CIFAR-10",
    "ResNet-20/32/44/56/110 (1202 at the paper budget) beside Deep Residual Learning Table 6.",
    {
        "quick": _depth((20, 32, 44, 56)),
        "standard": _depth((20, 32, 44, 56, 110)),
        "paper": _depth((20, 32, 44, 56, 110, 1202)),
    },
)


# -- densenet: DenseNet, Table 2 ------------------------------------------------------------------------
def _densenet() -> Grid:
    arms = (
        Arm("densenet40", "densenet40", variant="DenseNet (L=40, k=12)", paper="densenet40", recipe="densenet"),
        Arm(
            "densenet-bc100",
            "densenet_bc100",
            variant="DenseNet-BC (L=100, k=12)",
            paper="densenet_bc100",
            recipe="densenet",
        ),
        Arm(
            "resnet110",
            "resnet110",
            variant="ResNet-110 (option A)",
            paper="densenet-resnet110",
            recipe="resnet-warmup",
            depth=110,
        ),
    )
    src = "DenseNet, Table 2 (C10+)"
    claims = (
        Claim(
            "DenseNet-40 beats ResNet-110 with fewer or similar parameters",
            "better_fewer_params",
            ("densenet40", "resnet110"),
            "test",
            src,
        ),
        Claim(
            "DenseNet-BC-100 beats ResNet-110 with fewer or similar parameters",
            "better_fewer_params",
            ("densenet-bc100", "resnet110"),
            "test",
            src,
        ),
    )
    return Grid(arms, claims)


DENSENET = Experiment(
    "densenet",
    "DenseNet-40 and DenseNet-BC-100 against ResNet-110",
    "Dense connectivity against the residual baseline with fewer parameters (DenseNet, Table 2, C10+).",
    {"quick": _densenet(), "standard": _densenet(), "paper": _densenet()},
)

EXPERIMENTS: dict[str, Experiment] = {
    e.name: e for e in (DEGRADATION, SHORTCUTS, PREACT_UNITS, IDENTITY_SHORTCUTS, DEPTH, DENSENET)
}


def list_experiments() -> list[str]:
    """The experiment names ``reslab reproduce`` accepts."""
    return list(EXPERIMENTS)


def get_experiment(name: str) -> Experiment:
    """The experiment ``name``.

    Raises:
        ConfigError: an unknown name (the message lists the known ones).
    """
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; experiments: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]
