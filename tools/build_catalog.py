"""The model catalogue (src/reslab/model_catalog.json): what ``reslab list`` shows without importing torch,
computed from the model and weights registries by ``make docs-gen`` (tools/gen_docs.py --catalog).

Every model's name, family, input size, parameter count and MACs (measured here, by building each model on the
meta device) and its published reference: the paper's figure where the model registry has one, else the model's
default weights' published top-1 (the weights entries are the one place those figures live).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reslab.catalog import CATALOG_PATH


def published_reference(model: str, paper_figure: str | None) -> str | None:
    """The paper's figure, else the default published weights' top-1 (``ImageNet top-1 80.858%
    (resnet50.tv2_in1k)``), else None."""
    if paper_figure:
        return paper_figure
    from reslab.weights.registry import weights_for

    for entry in weights_for(model):
        if entry.default and "top1" in entry.metrics:
            data = {"imagenet": "ImageNet", "cifar10": "CIFAR-10"}.get(entry.classes, entry.classes)
            return f"{data} top-1 {entry.metrics['top1']:g}% ({entry.name} weights)"
    return None


def build_catalog() -> dict[str, Any]:
    """The catalogue computed from the registries (builds every model on the meta device: imports torch)."""
    import torch

    from reslab.models import build_model, get_model_entry, list_models, summary

    models = []
    for name in list_models():
        e = get_model_entry(name)
        with torch.device("meta"):
            s = summary(build_model(name), e.input_size)
        models.append(
            {
                "name": name,
                "family": e.family,
                "input_size": list(e.input_size),
                "num_classes": e.num_classes,
                "params": s.total_params,
                "macs": s.macs,
                "published_params": e.params,
                "params_source": e.params_source,
                "accuracy": published_reference(name, e.accuracy),
                "paper": e.paper,
            }
        )
    return {"generated_by": "make docs-gen (tools/build_catalog.py)", "models": models}


def write_catalog(path: str | Path = CATALOG_PATH) -> Path:
    """Regenerate the catalogue file from the registries; returns its path."""
    path = Path(path)
    path.write_text(json.dumps(build_catalog(), indent=1) + "\n", encoding="utf-8")
    return path
