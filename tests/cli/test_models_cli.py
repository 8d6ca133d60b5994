"""`reslab list` / `reslab summary`, the summary table, and the model catalogue (the generated model table in
docs/reference/models.md is checked by tests/docs/test_generated.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import reslab
from reslab.catalog import find_models, load_catalog
from reslab.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_list_shows_params_macs_and_family(capsys):
    assert main(["list", "resnet*0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "params", "MACs", "input", "family", "source"]
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert rows["resnet50"][1:5] == ["25,557,032", "4.09G", "3x224x224", "imagenet"]  # torchvision: 4.09 GFLOPS
    assert rows["resnet20"][1:5] == ["269,722", "40.6M", "3x32x32", "cifar"]  # paper: 41M FLOPs
    assert " ".join(rows["resnet20"][5:]) == "He et al. 2015"
    assert "resnet18" not in rows


def test_list_tutorial_networks_with_their_source_and_counts(capsys):
    assert main(["list", "tutorial_*"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert len(rows) == 9
    assert (
        "11,223,140" in rows["tutorial_resnet18"] and "tutorial 000 (TensorFlow 2 / Keras)" in rows["tutorial_resnet18"]
    )
    assert "47,734,760" in rows["tutorial_resnet50"] and "3x227x227" in rows["tutorial_resnet50"]
    assert rows["tutorial_resnet50v2"].rstrip().endswith("tutorial 002 (PyTorch)")


def test_list_and_summary_take_model_arguments(capsys):
    assert main(["list", "resnet2*", "--model-arg", "widths=[8,16,32]"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in out[1:]] == [["resnet20", "68,050"]]  # measured with the arguments
    assert main(["list", "resnet*", "--model-arg", "shortcut_pad=split"]) == 0  # only the models that take it
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert "resnet20" in names and "vgg16" not in names
    assert main(["summary", "resnet20", "--model-arg", "shortcut=C"]) == 0
    assert "Total params: 283,962" in capsys.readouterr().out  # projections on every unit (option C)
    assert main(["summary", "resnet20", "--model-arg", "nope=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown argument 'nope' for ResNet" in err[0]
    assert main(["list", "vgg1*", "--model-arg", "nope=1"]) == 2
    assert "no model matching the pattern takes --model-arg nope" in capsys.readouterr().err


def test_list_without_matches(capsys):
    assert main(["list", "nothing*"]) == 1
    assert "no model matches" in capsys.readouterr().out


def test_summary_command(capsys):
    assert main(["summary", "resnet20", "--num-classes", "100"]) == 0
    out = capsys.readouterr().out
    assert "layer3.2.conv2 (Conv2d)" in out and "[1, 64, 8, 8]" in out
    assert "Total params: 275,572" in out  # 269,722 - 650 + 64 * 100 + 100
    assert "Multiply-accumulates (MACs): 40," in out


def test_summary_with_other_input_size(capsys):
    assert main(["summary", "resnet18", "--input-size", "1", "64", "64"]) == 0
    assert "Output shape: [1, 1000]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["summary", "resnet5O"], "unknown model 'resnet5O'; did you mean"),
        (["summary", "resnet18", "--input-size", "3", "8", "8"], "at least 32x32"),
        (["summary", "resnet18", "--num-classes", "-3"], "num_classes"),
    ],
)
def test_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("reslab: error: ") and message in err and err.count("\n") == 1


def test_console_script_runs_as_a_module():
    proc = subprocess.run([sys.executable, "-m", "reslab", "summary", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "unknown model" in proc.stderr


def test_summary_api_counts_real_forward_macs():
    model = reslab.create_model("resnet18")
    s = reslab.summary(model, (3, 224, 224))
    assert s.total_params == 11_689_512 and s.trainable_params == s.total_params
    assert round(s.macs / 1e9, 2) == 1.81  # torchvision's published 1.81 GFLOPS (MACs)
    assert model.training  # mode restored
    s = reslab.summary(reslab.create_model("resnet20"))  # default input size from the registry
    assert s.output_shape == (1, 10)
    model.requires_grad_(False)
    assert reslab.summary(model, (3, 64, 64)).trainable_params == 0
    assert torch.is_tensor(next(model.parameters()))


def test_model_catalog_is_generated_from_the_registry():
    """`reslab list` reads the shipped catalogue; it must say what the registry builds."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from build_catalog import build_catalog
    finally:
        sys.path.pop(0)
    assert load_catalog() == build_catalog()["models"], "src/reslab/model_catalog.json is stale: run `make docs-gen`"


def test_list_matches_the_registry_and_families():
    assert [e["name"] for e in find_models()] == reslab.list_models()
    assert [e["name"] for e in find_models("RESNET1*", family="imagenet")] == reslab.list_models("resnet1*", "imagenet")


def test_list_does_not_import_torch():
    """`reslab list` needs no model built and no torch (importing torch alone costs ~2 s on a busy 2-core
    machine); wall time: benchmarks/list_speed.py."""
    code = (
        "import sys; from reslab.cli import main; rc = main(['list', 'resnet2*']); "
        "print('torch imported' if 'torch' in sys.modules else 'no torch'); sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1].split()[:2] == ["resnet20", "269,722"]
    assert proc.stdout.strip().splitlines()[-1] == "no torch"
