"""Every registered model exports, at the smallest input size it takes, and the exported file computes what
the network computes (the check inside each export: <= 1e-4, or 1e-5 of the logits beyond 10).

Timings on the 2-core CPU dev machine (one torch thread, 10 classes): safetensors + TorchScript for all 48
models about 2 minutes; torch.export 4-25 s a model (resnet1202 alone 90 s); ONNX 8-40 s a model. In CI, so
that the suite stays well under its time limit:

* safetensors and TorchScript: every registered model;
* torch.export: one model per construction (:data:`PROGRAM_MODELS`: every network class, every residual unit
  and layout, both GoogLeNet heads, both AlexNet layouts);
* ONNX: one model per network class, chosen to cover every kind of operation the registry uses (option-A
  padding, max pooling and projection shortcuts, the pre-activation bottleneck, LRN and grouped
  convolutions, concatenation, inception, tanh and average pooling).

``RESLAB_EXPORT_ALL=1`` exports every registered model to every format. Measured before the CI selection:
torch.export passed for every model but the two 1000-layer ones, ONNX for 14 models (the 8 here, alexnet,
resnet50, resnet50_keras, preact_resnet110, densenet_bc100, googlenet_paper).
"""

from __future__ import annotations

import os

import pytest
import torch

from reslab import create_model, list_models
from reslab.export import FORMATS, export_model, read_export_metadata
from reslab.export.checks import tolerance
from reslab.models import get_model_entry

#: everything, every format (RESLAB_EXPORT_ALL=1; see the module docstring)
ALL = os.environ.get("RESLAB_EXPORT_ALL") == "1"
#: torch.export: one model per construction (the cheapest of each; see the module docstring)
PROGRAM_MODELS = (
    list_models()
    if ALL
    else [
        "resnet20",
        "resnet18",
        "resnet50",
        "resnet50_keras",
        "resnet50v2",
        "plain20",
        "preact_resnet110",
        "preact_resnet164",
        "alexnet",
        "alexnet_paper",
        "densenet40",
        "densenet_bc100",
        "googlenet",
        "googlenet_paper",
        "lenet5",
        "vgg11",
        "vgg11_bn",
        "tutorial_resnet18",  # Keras 'same' padding (Conv2dSame), the 3x3 'valid' stem
        "tutorial_resnet50",  # conv-ReLU-BN units, 3x3 projections, 'same' max-pool, a 7x7 head pool
        "tutorial_googlenet",
        "tutorial_densenet121",  # Scale layers
    ]
)
#: ONNX: one model per distinct construction (the cheapest of each)
ONNX_MODELS = (
    list_models()
    if ALL
    else [
        "resnet20",
        "resnet18",
        "resnet50v2",
        "alexnet_paper",
        "densenet40",
        "googlenet",
        "lenet5",
        "vgg11_bn",
        "tutorial_resnet18",
        "tutorial_googlenet",
    ]
)


def smallest(name: str) -> tuple[torch.nn.Module, tuple[int, int, int]]:
    """The registered model (10 classes, its registered arguments) in eval mode, and the smallest input it takes;
    deep networks whose random-initialisation outputs overflow get their residual branches scaled down."""
    net = create_model(name, num_classes=10).eval()
    size = getattr(net, "fixed_input_size", None) or max(int(getattr(net, "min_input_size", 1)), 1)
    input_size = (int(net.in_chans), size, size)
    with torch.no_grad():
        out = net(torch.randn(2, *input_size, generator=torch.Generator().manual_seed(0)))
    if not torch.isfinite(getattr(out, "logits", out)).all():
        net = _tame(name)
    return net, input_size


def _tame(name: str) -> torch.nn.Module:
    """Each residual branch's last BatchNorm at gamma 1/blocks (not 0: the branches still count), so that 1000
    layers of random residual branches do not overflow fp32."""
    net = create_model(name, num_classes=10, zero_init_last=True).eval()
    zeroed = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d) and not m.weight.any()]
    with torch.no_grad():
        for m in zeroed:
            m.weight.fill_(1.0 / len(zeroed))
    return net


def _export(net, name, input_size, fmt, tmp_path):
    path, result = export_model(
        net,
        tmp_path / f"{name}{FORMATS[fmt].extension}",
        fmt,
        input_size=input_size,
        class_names=[f"c{i}" for i in range(10)],
        preprocessing=None,
        model_name=name,
        model_args={},
    )
    assert result.max_abs_diff <= result.tolerance
    meta = read_export_metadata(path, fmt)
    assert meta["model_name"] == name and meta["class_names"][9] == "c9"
    if fmt != "safetensors":
        assert meta["input_size"] == list(input_size)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_every_model_exports_to_safetensors_and_torchscript(name, tmp_path):
    net, input_size = smallest(name)
    for fmt in ("safetensors", "torchscript"):
        _export(net, name, input_size, fmt, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", PROGRAM_MODELS)
def test_torch_export_per_construction(name, tmp_path):
    net, input_size = smallest(name)
    _export(net, name, input_size, "export", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ONNX_MODELS)
def test_onnx_per_network_class(name, tmp_path):
    net, input_size = smallest(name)
    path = _export(net, name, input_size, "onnx", tmp_path)
    import onnxruntime as ort

    # the dynamic batch axis: another batch than the check's
    x = torch.randn(3, *input_size, generator=torch.Generator().manual_seed(5))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"input": x.numpy()})
    with torch.no_grad():
        expected = net(x)
    assert got.shape == (3, 10)
    assert float((torch.from_numpy(got) - expected).abs().max()) <= tolerance(float(expected.abs().max()))


def test_onnx_and_torch_export_models_cover_every_network_class():
    classes = {get_model_entry(n).cls for n in list_models()}
    assert {get_model_entry(n).cls for n in ONNX_MODELS} == classes
    assert {get_model_entry(n).cls for n in PROGRAM_MODELS} == classes
    assert set(ONNX_MODELS) <= set(PROGRAM_MODELS)


def test_googlenet_exports_its_inference_path_only(tmp_path):
    """With its auxiliary classifiers built, GoogLeNet's export is the eval-mode network: the main logits."""
    net = create_model("googlenet", num_classes=10, aux_logits=True).eval()
    assert net.aux1 is not None
    path = _export(net, "googlenet", (3, 64, 64), "torchscript", tmp_path)
    out = torch.jit.load(str(path))(torch.randn(2, 3, 64, 64))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
