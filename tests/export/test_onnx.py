"""ONNX export: the interface other code relies on (names, dynamic batch, metadata), checked against PyTorch."""

from __future__ import annotations

import json

import pytest
import torch

from reslab import create_model
from reslab.errors import ConfigError, DataError, ExportError

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'reslab[export]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'reslab[export]')")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install 'reslab[export]')")

from reslab.export import ExportOptions, export_onnx, read_onnx_metadata  # noqa: E402

PREP = {
    "input_size": [3, 32, 32],
    "resize": 32,
    "crop": "center",
    "interpolation": "bilinear",
    "mean": [0.49, 0.48, 0.45],
    "std": [0.25, 0.24, 0.26],
    "mode": "reslab",
    "channel_order": "RGB",
}
NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _randomise_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics, so eval mode differs from training mode and from an identity."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = _randomise_bn(create_model("resnet20"))
    path = tmp_path_factory.mktemp("onnx") / "resnet20.onnx"
    out, result = export_onnx(
        model,
        path,
        ExportOptions(
            input_size=(3, 32, 32),
            class_names=NAMES,
            preprocessing=PREP,
            model_name="resnet20",
            model_args={"zero_init_residual": True},
        ),
    )
    return model, out, result


def test_one_self_contained_file_with_named_dynamic_io(exported):
    model, path, result = exported
    assert path.is_file() and sorted(p.name for p in path.parent.iterdir()) == ["resnet20.onnx"]
    proto = onnx.load(str(path))
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "input" and out.name == "logits"
    dims = inp.type.tensor_type.shape.dim
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims[0].dim_param and not dims[0].dim_value  # the batch axis is symbolic
    assert [d.dim_value for d in dims[1:]] == [3, 32, 32]
    assert result.runtime == "onnxruntime" and result.max_abs_diff <= 1e-4 and result.batch == 2
    assert "onnx.checker ok, onnxruntime max |diff|" in result.describe()


@pytest.mark.parametrize("batch", [1, 3, 7])
def test_onnxruntime_matches_pytorch_at_any_batch(exported, batch):
    model, path, _ = exported
    x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(batch))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"input": x.numpy()})
    with torch.no_grad():
        expected = model.eval()(x)
    assert got.shape == (batch, 10)
    assert float((torch.from_numpy(got) - expected).abs().max()) <= 1e-4


def test_metadata_round_trip(exported):
    _, path, _ = exported
    meta = read_onnx_metadata(path)
    from reslab import __version__

    assert meta == {
        "reslab_version": __version__,
        "model_name": "resnet20",
        "model_args": {"zero_init_residual": True},
        "class_names": NAMES,
        "preprocessing": PREP,
        "input_size": [3, 32, 32],
    }
    # every value is a string property in the file itself (what other ONNX tools see)
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    assert json.loads(props["class_names"]) == NAMES and props["model_name"] == "resnet20"


def test_read_metadata_refuses_other_files(tmp_path, exported):
    not_onnx = tmp_path / "notes.onnx"
    not_onnx.write_text("hello, not a protobuf\n" * 10)
    with pytest.raises(DataError, match="notes.onnx is not an ONNX model"):
        read_onnx_metadata(not_onnx)
    with pytest.raises(DataError, match="not found"):
        read_onnx_metadata(tmp_path / "missing.onnx")
    # a valid ONNX model from elsewhere: no reslab metadata
    _, path, _ = exported
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    plain = tmp_path / "plain.onnx"
    onnx.save(proto, str(plain))
    with pytest.raises(DataError, match="plain.onnx has no reslab metadata"):
        read_onnx_metadata(plain)


def test_failed_check_keeps_nothing_and_leaves_the_old_file(tmp_path, monkeypatch):
    from reslab.export import onnx as onnx_export

    old = tmp_path / "model.onnx"
    old.write_bytes(b"the user's previous export")
    real = onnx_export.check_onnx

    def wrong(path, model, input_size, *, what=None):
        # the exported file checked against another network: a silent wrong answer must be caught
        return real(path, create_model("resnet20"), input_size, what=what)

    monkeypatch.setattr(onnx_export, "check_onnx", wrong)
    with pytest.raises(ExportError, match=r"onnxruntime differs from PyTorch by up to .* the export was not kept"):
        export_onnx(
            create_model("resnet20"),
            old,
            ExportOptions(
                input_size=(3, 32, 32),
                class_names=None,
                preprocessing=None,
                model_name="resnet20",
                model_args={},
            ),
        )
    assert old.read_bytes() == b"the user's previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


@pytest.mark.parametrize("opset", [5, 99])
def test_bad_opset_is_one_line(tmp_path, opset):
    with pytest.raises(ConfigError, match=rf"--opset must be 18-\d+ .*got {opset}"):
        export_onnx(
            create_model("resnet20"),
            tmp_path / "m.onnx",
            ExportOptions(
                input_size=(3, 32, 32),
                class_names=None,
                preprocessing=None,
                model_name="resnet20",
                model_args={},
                opset=opset,
            ),
        )
    assert not list(tmp_path.iterdir())
