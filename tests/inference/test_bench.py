"""`reslab bench`: tiny settings (a few images, one step), the report's lines, one-line errors."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types

import torch

from reslab import create_model
from reslab.cli import main
from reslab.training.bench import bench

TINY = ["--batch-size", "2", "--steps", "1", "--warmup", "0", "--threads", "1"]
HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None


def _error(capsys, argv: list[str], match: str) -> None:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err
    assert err[0].startswith("reslab: error: ") or err[0].startswith("reslab bench: error: ")


def test_cli_inference_and_train_step(capsys):
    assert main(["bench", "resnet20", *TINY, "--train"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("resnet20 on cpu, batch 2, 32x32 (threads=1, amp=fp32")
    inference = next(line for line in out if "reslab inference" in line)
    train = next(line for line in out if "reslab train step" in line)
    for line in (inference, train):
        assert float(line.split("images/s")[0].split()[-1]) > 0
        assert "peak memory" in line and ("process peak RSS in this phase" in line or "ru_maxrss" in line)
    if not HAS_TORCHVISION:
        assert any("torchvision not available" in line for line in out)


def test_cli_inference_options(capsys):
    assert main(["bench", "resnet20", *TINY, "--fuse", "--channels-last", "--amp", "bf16", "--image-size", "16"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "16x16" in out[0] and "amp=bf16, channels_last=True, compile=False, fuse=True" in out[0]
    assert not any("train step" in line for line in out)


def test_cli_channels_last_auto_follows_the_probe_and_a_flag_wins(capsys, monkeypatch):
    from reslab.training import precision

    asked = []
    monkeypatch.delenv("RESLAB_PROBE", raising=False)

    def probe(model, input_shape, batch, arms, *, train=True):
        asked.append((arms, train))
        return {"fp32": 1.0, "fp32_cl": 0.7}

    monkeypatch.setattr(precision, "probe_times", probe)
    assert main(["bench", "resnet20", *TINY, "--amp", "none"]) == 0  # the layout: auto, probed (forward passes)
    assert "amp=fp32, channels_last=True" in capsys.readouterr().out.splitlines()[0]
    assert asked == [(("fp32", "fp32_cl"), False)]
    assert main(["bench", "resnet20", *TINY, "--amp", "none", "--no-channels-last"]) == 0
    assert "amp=fp32, channels_last=False" in capsys.readouterr().out.splitlines()[0] and len(asked) == 1


def test_torchvision_measured_in_the_same_run_with_the_ratio(monkeypatch):
    """Where torchvision imports, its model of the same name is measured too and the ratio printed (a stand-in
    torchvision here: the real one does not import on this machine)."""
    fake = types.ModuleType("torchvision")
    fake.models = types.ModuleType("torchvision.models")
    built = []

    def resnet20(weights=None, num_classes=10):
        built.append(num_classes)
        return create_model("resnet20", num_classes=num_classes)

    fake.models.resnet20 = resnet20
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    monkeypatch.setitem(sys.modules, "torchvision.models", fake.models)
    result = bench("resnet20", batch_size=2, steps=1, warmup=0, train=True, threads=1)
    assert built == [10]
    assert [m.what for m in result.runs] == [
        "reslab inference",
        "reslab train step",
        "torchvision inference",
        "torchvision train step",
    ]
    lines = result.lines()
    assert any(line.strip().startswith("inference: reslab / torchvision = ") for line in lines)
    assert any(line.strip().startswith("train step: reslab / torchvision = ") for line in lines)
    # a model torchvision lacks is named as such
    assert "torchvision has no resnet32" in bench("resnet32", batch_size=1, steps=1, warmup=0, threads=1).notes[0]


def test_threads_restored():
    before = torch.get_num_threads()
    bench("resnet20", batch_size=1, steps=1, warmup=0, threads=2, compare_torchvision=False)
    assert torch.get_num_threads() == before


def test_one_line_errors(capsys):
    _error(capsys, ["bench", "resnet20", *TINY, "--fuse", "--train"], "cannot be combined with --train")
    _error(capsys, ["bench", "resnet20", *TINY, "--image-size", "2"], "at least 4x4")
    _error(capsys, ["bench", "nosuch", *TINY], "unknown model 'nosuch'")
    _error(capsys, ["bench", "resnet20", *TINY, "--amp", "fp16", "--device", "cpu"], "--amp fp16 needs a CUDA device")
    _error(capsys, ["bench", "resnet20", "--batch-size", "0"], "expected a whole number >= 1, got '0'")
    _error(capsys, ["bench", "resnet20", "--warmup", "-1"], "expected a whole number >= 0, got '-1'")
    if not torch.cuda.is_available():
        _error(capsys, ["bench", "resnet20", *TINY, "--device", "cuda"], "CUDA")


def test_subprocess_error_has_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "reslab", "bench", "resnet20", "--image-size", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "reslab: error: resnet20 needs inputs of at least 4x4 (its strides reduce smaller ones to nothing), got 2x2"
    ]
