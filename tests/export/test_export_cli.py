"""``reslab export`` as a user meets it: a checkpoint trained in the test, each format written, read back and
compared with the checkpoint's network; one-line errors; nothing of the user's replaced."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from reslab.cli import main
from reslab.export import FORMATS, read_export_metadata
from reslab.training.loading import load_model

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'reslab[export]')")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install 'reslab[export]')")

CLASSES = ["class_0", "class_1", "class_2", "class_3"]


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def load_exported(path, fmt):
    """The exported file as a callable, loaded the way its users load it."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda x: torch.from_numpy(session.run(["logits"], {"input": x.numpy()})[0])
    if fmt == "torchscript":
        return torch.jit.load(str(path))
    if fmt == "export":
        return torch.export.load(str(path)).module()
    from reslab import create_model

    return create_model("resnet20", pretrained=str(path)).eval()


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_each_format_from_a_checkpoint(fmt, tiny_run, tmp_path, capsys):
    out = tmp_path / f"tiny{FORMATS[fmt].extension}"
    code, said, err = run(["export", str(tiny_run), "--format", fmt, "--out", str(out)], capsys)
    assert code == 0, err
    assert err == ""  # nothing but reslab's lines (torch.export.save warned about the .pt2 name here)
    assert f"wrote {out} ({fmt}" in said and "resnet20 from" in said and "input 3x8x8" in said
    assert "checked: " in said and "vs PyTorch (batch 2)" in said
    if fmt == "onnx":
        assert "checked: onnx.checker ok, onnxruntime max |diff| " in said
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary file left
    meta = read_export_metadata(out, fmt)
    assert meta["model_name"] == "resnet20" and meta["class_names"] == CLASSES
    assert meta["model_args"] == {"widths": [4, 8, 8]}
    prep = meta["preprocessing"]
    assert prep["input_size"] == [3, 8, 8] and prep["mode"] == "reslab" and len(prep["mean"]) == 3
    # the exported model computes what the checkpoint's network computes, at another batch than the check's
    net = load_model(tiny_run).net
    x = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        diff = (load_exported(out, fmt)(x) - net(x)).abs().max()
    assert float(diff) <= 1e-4


def test_default_out_is_model_name_in_the_current_directory(tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, said, err = run(["export", str(tiny_run / "last.pt"), "--format", "torchscript"], capsys)
    assert code == 0, err
    assert (tmp_path / "resnet20.torchscript.pt").is_file() and said.startswith("wrote resnet20.torchscript.pt")


def test_a_previous_export_is_replaced_a_users_file_is_not(tiny_run, tmp_path, capsys):
    out = tmp_path / "m.pt2"
    assert run(["export", str(tiny_run), "--format", "export", "--out", str(out)], capsys)[0] == 0
    assert run(["export", str(tiny_run), "--format", "export", "--out", str(out)], capsys)[0] == 0
    mine = tmp_path / "mine.onnx"
    mine.write_bytes(b"my own notes")
    code, said, err = run(["export", str(tiny_run), "--out", str(mine)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"--out {mine} exists and is not a reslab onnx export; it is left as it is" in err
    assert mine.read_bytes() == b"my own notes"
    # a reslab export of another format is not this format's file either
    code, _, err = run(["export", str(tiny_run), "--format", "torchscript", "--out", str(out)], capsys)
    assert code == 2 and "is not a reslab torchscript export" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", "{tmp}/missing.pt"], "missing.pt"),
        (["export", "{run}", "--format", "tflite"], "argument --format: invalid choice: 'tflite'"),
        (["export", "{run}", "--opset", "5"], "--opset must be 18-"),
        (["export", "{run}", "--opset", "x"], "argument --opset"),
        (["export", "{run}", "--format", "torchscript", "--opset", "18"], "--opset applies to --format onnx only"),
        (["export", "{run}", "--out", "{tmp}"], "is a directory; --out takes a file name"),
        (["export", "{run}", "--out", "{tmp}/no/such/m.onnx"], "does not exist"),
        (["export", "{run}", "--batch", "0"], "argument --batch"),
        (["export", "{run}", "--format", "safetensors", "--fuse-bn"], "--fuse-bn does not apply to safetensors"),
        (["export"], "say what to export"),
        (["export", "--model", "no_such_net"], "no_such_net"),
    ],
)
def test_bad_input_gives_one_line_errors(argv, message, tiny_run, tmp_path, capsys):
    argv = [a.replace("{run}", str(tiny_run)).replace("{tmp}", str(tmp_path)) for a in argv]
    code, said, err = run_catching_exit(argv, capsys)
    assert code == 2, (said, err)
    assert message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not any(p.suffix in (".onnx", ".pt", ".pt2", ".tmp") for p in tmp_path.rglob("*"))


def run_catching_exit(argv, capsys):
    try:
        return run(argv, capsys)
    except SystemExit as e:  # argparse's own errors
        captured = capsys.readouterr()
        return e.code, captured.out, captured.err


def test_fuse_bn_calls_reslab_models_fuse_and_checks_against_the_unfolded_network(
    tiny_run, tmp_path, monkeypatch, capsys
):
    import reslab.models

    calls = []

    def exact(model):  # a folding that changes nothing: the check passes
        calls.append(model)
        return model

    monkeypatch.setattr(reslab.models, "fuse", exact, raising=False)
    out = tmp_path / "f.onnx"
    code, said, err = run(["export", str(tiny_run), "--fuse-bn", "--out", str(out)], capsys)
    assert code == 0, err
    assert len(calls) == 1 and "BatchNorm folded" in said and out.is_file()

    def wrong(model):  # a broken folding: the exported file no longer computes the network
        with torch.no_grad():
            model.fc.bias.add_(1.0)
        return model

    monkeypatch.setattr(reslab.models, "fuse", wrong)
    bad = tmp_path / "bad.onnx"
    code, said, err = run(["export", str(tiny_run), "--fuse-bn", "--out", str(bad), "--format", "onnx"], capsys)
    assert code == 2 and "differs from PyTorch by up to 1" in err and "the export was not kept" in err
    assert not bad.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["f.onnx"]


def test_subprocess_one_line_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "reslab", "export", str(tmp_path / "nothing.pt")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("reslab: error: ") and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_full_disk_gives_one_line_and_leaves_no_temporary_file(fmt, tiny_run, tmp_path):
    """The write fails (RLIMIT_FSIZE: past 4 kB a write fails with EFBIG, as a full disk fails with ENOSPC).
    torch's own writers aborted the process here (``c10::Error``, rc 134) and left their temporary file;
    ONNX and safetensors gave tracebacks."""
    out = tmp_path / "out" / f"tiny{FORMATS[fmt].extension}"
    out.parent.mkdir()
    script = (
        "import resource, signal, sys\n"
        "from reslab.cli import main\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        f"sys.exit(main(['export', {str(tiny_run)!r}, '--format', {fmt!r}, '--out', {str(out)!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    assert proc.stderr.strip() == f"reslab: error: could not write {out}: file too large; nothing was written"
    assert list(out.parent.iterdir()) == []  # no temporary file left


def test_safetensors_metadata_carries_the_version_and_input_size(tiny_run, tmp_path, capsys):
    import reslab

    out = tmp_path / "tiny.safetensors"
    code, _, err = run(["export", str(tiny_run), "--format", "safetensors", "--out", str(out)], capsys)
    assert code == 0, err
    meta = read_export_metadata(out, "safetensors")
    assert meta["reslab_version"] == reslab.__version__ and meta["input_size"] == [3, 8, 8]


def test_an_export_under_another_name_than_pt2_says_nothing_but_reslabs_lines(tiny_run, tmp_path):
    """torch.export warned twice ("Expect archive file to be a file ending in .pt2", "Unable to load package")
    about the check's temporary file although the export succeeded."""
    out = tmp_path / "model.bin"
    cmd = [sys.executable, "-m", "reslab", "export", str(tiny_run), "--format", "export", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout.startswith(f"wrote {out} (export")
    assert read_export_metadata(out, "export")["model_name"] == "resnet20"
