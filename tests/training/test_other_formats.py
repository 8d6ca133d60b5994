"""A file ``reslab export`` writes, given where a checkpoint goes: named by its format, with what takes it."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from reslab.errors import CheckpointError
from reslab.training.checkpoint import load_checkpoint


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()


def write_exports(folder: Path) -> dict[str, Path]:
    """Real files of every format reslab export writes, of a tiny network: {format: path}."""
    net, x = _net(), torch.randn(1, 3, 8, 8)
    files = {
        "torchscript": folder / "model.torchscript.pt",
        "export": folder / "model.pt2",
        "safetensors": folder / "model.safetensors",
        "onnx": folder / "model.onnx",
    }
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream; reslab export still writes it
        torch.jit.save(torch.jit.trace(net, x), str(files["torchscript"]))
    torch.export.save(torch.export.export(net, (x,)), str(files["export"]))
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(files["safetensors"]))
    onnx = pytest.importorskip("onnx")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["input"], ["logits"])],
        "g",
        [onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 2])],
        [onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1, 2])],
    )
    onnx.save(onnx.helper.make_model(graph), str(files["onnx"]))
    return files


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    return write_exports(tmp_path_factory.mktemp("exports"))


@pytest.mark.parametrize(
    ("fmt", "named", "taken_by"),
    [
        ("torchscript", "is a TorchScript file", "torch.jit.load"),
        ("export", "is a torch.export program", "torch.export.load"),
        ("onnx", "is an ONNX file", "reslab predict --onnx"),
        ("safetensors", "is a safetensors weights file", "--model MODEL --pretrained"),
    ],
)
def test_an_exported_file_is_named_by_its_format(exports, fmt, named, taken_by):
    path = exports[fmt]
    with pytest.raises(CheckpointError, match=rf"^{path} {named} .*not a reslab checkpoint: .*{taken_by}") as e:
        load_checkpoint(path)
    assert "corrupt" not in str(e.value) and "\n" not in str(e.value)
