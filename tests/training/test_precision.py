"""``amp: auto`` / ``channels_last: auto``: each branch of the choice (the capabilities faked), the probe on a
real network, and what a run records and says."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import yaml

import reslab
from reslab.training import precision
from reslab.training.precision import choose_precision, cpu_flags, native_bf16_flag

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
DATA = dict(data="synthetic", data_args={"num_samples": 64, "num_classes": 2}, image_size=8)


def tiny():
    return reslab.create_model("resnet20", widths=[4, 8, 8], num_classes=2)


def test_explicit_values_are_kept():
    assert choose_precision("bf16", False, CPU) == precision.Precision("bf16", False)
    assert choose_precision(None, True, CUDA) == precision.Precision(None, True)
    assert choose_precision("fp16", False, CUDA).reason == ""


def test_cuda_bf16_where_the_gpu_has_it_else_fp16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    p = choose_precision("auto", "auto", CUDA)
    assert (p.amp, p.channels_last) == ("bf16", True) and "the GPU supports bfloat16" in p.reason
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    p = choose_precision("auto", False, CUDA)
    assert (p.amp, p.channels_last) == ("fp16", False) and "fp16: the GPU has no bfloat16" in p.reason


def test_cpu_flags_come_from_the_variable_else_proc_cpuinfo(monkeypatch):
    monkeypatch.setenv("RESLAB_CPU_FLAGS", "sse avx512_bf16")
    assert cpu_flags() == {"sse", "avx512_bf16"} and native_bf16_flag() == "avx512_bf16"
    monkeypatch.setenv("RESLAB_CPU_FLAGS", "amx_bf16 amx_tile")
    assert native_bf16_flag() == "amx_bf16"
    monkeypatch.delenv("RESLAB_CPU_FLAGS")
    real = cpu_flags()  # this machine's own
    assert isinstance(real, frozenset) and (not real or "fpu" in real or "sse2" in real)


def test_cpu_without_native_bf16_runs_fp32_without_probing(monkeypatch):
    monkeypatch.setattr(precision, "probe_bf16_speedup", lambda *a, **k: pytest.fail("probed"))
    p = choose_precision("auto", "auto", CPU, model=tiny(), input_shape=(3, 8, 8))
    assert (p.amp, p.channels_last) == (None, False)
    assert "fp32 (no native bf16 instructions: neither avx512_bf16 nor amx_bf16" in p.reason


@pytest.mark.parametrize("speedup, amp", [(2.1, "bf16"), (1.05, None)])
def test_cpu_with_native_bf16_follows_the_probe(speedup, amp, monkeypatch):
    monkeypatch.setenv("RESLAB_CPU_FLAGS", "avx512f avx512_bf16")
    monkeypatch.setattr(precision, "probe_bf16_speedup", lambda *a, **k: speedup)
    p = choose_precision("auto", "auto", CPU, model=tiny(), input_shape=(3, 8, 8))
    assert (p.amp, p.channels_last) == (amp, amp == "bf16")
    assert f"{speedup:.2f}x fp32's training steps" in p.reason
    # only channels_last auto: it follows the given precision
    assert choose_precision("bf16", "auto", CPU).channels_last is True
    assert choose_precision(None, "auto", CPU).channels_last is False


def test_the_probe_leaves_the_network_and_the_random_generators_as_they_were():
    net = tiny()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    precision._probe_cache.clear()
    speedup = precision.probe_bf16_speedup(net, (3, 8, 8), 4)
    assert speedup > 0 and torch.equal(torch.rand(3), expected)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # BN statistics too
    assert precision.probe_bf16_speedup(net, (3, 8, 8), 4) == speedup  # measured once per shape


def bf16_run(tmp_path, monkeypatch):
    """A tiny run on a CPU faked to have native bf16, whose probe measures bf16 1.9x faster: its directory."""
    monkeypatch.setenv("RESLAB_CPU_FLAGS", "avx512_bf16")
    monkeypatch.setattr(precision, "probe_bf16_speedup", lambda *a, **k: 1.9)
    out = tmp_path / "run"
    reslab.train(
        model="resnet20",
        model_args={"widths": [4, 8, 8]},
        epochs=1,
        device="cpu",
        out=str(out),
        progress="none",
        **DATA,
    )
    return out


def test_a_run_records_the_choice_and_says_why(tmp_path, monkeypatch):
    out = bf16_run(tmp_path, monkeypatch)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (saved["amp"], saved["channels_last"]) == ("bf16", True)
    log = (out / "train.log").read_text()
    assert "precision: auto on the CPU: bf16 + channels-last (avx512_bf16; probe: 1.90x fp32's training steps)" in log
    # eval of the checkpoint repeats its training precision (so its figures repeat); amp=None is fp32
    import reslab.training.evaluation as evaluation

    seen = []
    real = evaluation.evaluate_model
    monkeypatch.setattr(evaluation, "evaluate_model", lambda *a, **k: seen.append(k["amp_dtype"]) or real(*a, **k))
    reslab.evaluate(str(out))
    reslab.evaluate(str(out), amp=None)
    assert seen == [torch.bfloat16, None]


def test_the_cli_default_on_a_cpu_without_bf16_and_explicit_flags(tmp_path):
    out = tmp_path / "run"
    base = [sys.executable, "-m", "reslab", "train", "--model", "resnet20", "--model-arg", "widths=[4,8,8]"]
    base += ["--data", "synthetic", "--image-size", "8", "--epochs", "1", "--device", "cpu", "--threads", "1"]
    proc = subprocess.run([*base, "--out", str(out)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "precision: auto on the CPU: fp32 (no native bf16 instructions" in proc.stderr
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["amp"] is None and saved["channels_last"] is False
    proc = subprocess.run(
        [*base, "--out", str(tmp_path / "explicit"), "--amp", "none", "--no-channels-last"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0 and "precision:" not in proc.stderr, proc.stderr
    proc = subprocess.run([*base, "--out", str(tmp_path / "fp16"), "--amp", "fp16"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("reslab: error: --amp fp16 needs")


def test_predict_repeats_the_checkpoints_training_precision(tmp_path, monkeypatch):
    out = bf16_run(tmp_path, monkeypatch)
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (8, 8), (120, 30, 200)).save(image)
    seen = []
    real = torch.autocast

    def spy(*a, **k):
        seen.append((k.get("dtype"), k.get("enabled", True)))
        return real(*a, **k)

    monkeypatch.setattr(torch, "autocast", spy)
    bf16 = reslab.predict(str(out), [image], topk=2)
    fp32 = reslab.predict(str(out), [image], topk=2, amp=None)
    assert (torch.bfloat16, True) in seen and len(seen) == 1  # fp32 opens no autocast
    assert [n for n, _ in bf16[0]] == [n for n, _ in fp32[0]]
    assert abs(bf16[0][0][1] - fp32[0][0][1]) < 0.05
