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
from tests.tiny_runs import train_tiny

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


def fake_probe(monkeypatch, **times):
    """The probe measures ``times`` (arm -> seconds; fp32 NCHW 1.0 unless given); returns the arms asked for."""
    asked = []
    monkeypatch.delenv("RESLAB_PROBE", raising=False)

    def probe(model, input_shape, batch, arms, *, train=True):
        asked.append(arms)
        return {a: times.get(a, 1.0) for a in arms}

    monkeypatch.setattr(precision, "probe_times", probe)
    return asked


def test_cpu_without_native_bf16_never_times_bf16(monkeypatch):
    asked = fake_probe(monkeypatch, fp32_cl=0.8)
    p = choose_precision("auto", "auto", CPU, model=tiny(), input_shape=(3, 8, 8))
    assert (p.amp, p.channels_last) == (None, True) and asked == [("fp32", "fp32_cl")]
    assert p.reason == (
        "auto on the CPU: fp32 + channels-last (no native bf16: neither avx512_bf16 nor amx_bf16 in the CPU "
        "flags; probe of training steps: fp32 channels-last 1.25x NCHW (needs 1.1x))"
    )
    # nothing left to choose: no probe at all
    asked.clear()
    p = choose_precision("auto", False, CPU, model=tiny(), input_shape=(3, 8, 8))
    assert (p.amp, p.channels_last, asked) == (None, False, [])
    assert (
        p.reason == "auto on the CPU: fp32 (no native bf16: neither avx512_bf16 nor amx_bf16 in the CPU flags; "
        "channels-last False given)"
    )


@pytest.mark.parametrize(
    "fp32_cl, bf16_cl, amp, cl",
    [
        (0.8, 0.5, "bf16", True),  # bf16 1.6x the faster fp32 layout
        (0.8, 0.7, None, True),  # bf16 only 1.14x fp32 channels-last (1.43x NCHW): not enough
        (0.95, 0.9, None, False),  # channels-last 1.05x: not enough, and bf16 1.11x NCHW
        (0.95, 0.6, "bf16", True),  # bf16 + channels-last against fp32 NCHW
    ],
)
def test_cpu_with_native_bf16_follows_the_probe(fp32_cl, bf16_cl, amp, cl, monkeypatch):
    monkeypatch.setenv("RESLAB_CPU_FLAGS", "avx512f avx512_bf16")
    asked = fake_probe(monkeypatch, fp32_cl=fp32_cl, bf16_cl=bf16_cl)
    p = choose_precision("auto", "auto", CPU, model=tiny(), input_shape=(3, 8, 8))
    assert (p.amp, p.channels_last) == (amp, cl) and asked == [("fp32", "fp32_cl", "bf16_cl")]
    assert f"fp32 channels-last {1 / fp32_cl:.2f}x NCHW (needs 1.1x)" in p.reason
    fp32 = fp32_cl if fp32_cl <= 1 / 1.1 else 1.0
    assert f"bf16 + channels-last {fp32 / bf16_cl:.2f}x fp32" in p.reason and "needs 1.2x; avx512_bf16" in p.reason


def test_cpu_given_one_of_the_two(monkeypatch):
    monkeypatch.setenv("RESLAB_CPU_FLAGS", "avx512_bf16")
    asked = fake_probe(monkeypatch, bf16=0.5, fp32_cl=0.7, bf16_cl=0.6)
    # --no-channels-last: bf16 NCHW against fp32 NCHW
    p = choose_precision("auto", False, CPU, model=tiny(), input_shape=(3, 8, 8))
    assert (p.amp, p.channels_last, asked[-1]) == ("bf16", False, ("fp32", "bf16"))
    assert p.reason.startswith("auto on the CPU: bf16 (channels-last False given; probe of training steps: bf16 2.00x")
    # --channels-last: both arms channels-last (bf16 1.17x: fp32 stays)
    p = choose_precision("auto", True, CPU, model=tiny(), input_shape=(3, 8, 8))
    assert (p.amp, p.channels_last, asked[-1]) == (None, True, ("fp32_cl", "bf16_cl"))
    # --amp none: the layout alone
    p = choose_precision(None, "auto", CPU, model=tiny(), input_shape=(3, 8, 8))
    assert (p.amp, p.channels_last, asked[-1]) == (None, True, ("fp32", "fp32_cl"))
    # --amp bf16: channels-last goes with it, unprobed
    n = len(asked)
    assert choose_precision("bf16", "auto", CPU).channels_last is True and len(asked) == n
    # inference: forward passes
    p = choose_precision("auto", "auto", CPU, model=tiny(), input_shape=(3, 8, 8), train=False)
    assert "probe of forward passes" in p.reason
    assert precision._probe_batch(128, (3, 32, 32)) == 32 and precision._probe_batch(128, (3, 224, 224)) == 16
    assert precision._probe_batch(8, (3, 32, 32)) == 8
    # not images: no layout to choose
    p = choose_precision(None, "auto", CPU, model=tiny(), input_shape=(64,))
    assert (p.amp, p.channels_last) == (None, False) and len(asked) == n + 1


def test_no_probe_without_a_network_or_with_reslab_probe_0(monkeypatch):
    monkeypatch.setenv("RESLAB_CPU_FLAGS", "avx512_bf16")
    monkeypatch.setattr(precision, "probe_times", lambda *a, **k: pytest.fail("probed"))
    p = choose_precision("auto", "auto", CPU)
    assert (p.amp, p.channels_last) == (None, False) and p.reason == "auto on the CPU: fp32 (nothing to probe)"
    monkeypatch.setenv("RESLAB_PROBE", "0")
    p = choose_precision("auto", "auto", CPU, model=tiny(), input_shape=(3, 8, 8))
    assert (p.amp, p.channels_last) == (None, False) and "RESLAB_PROBE=0: not probed" in p.reason


def test_the_probe_leaves_the_network_and_the_random_generators_as_they_were():
    net = tiny()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    precision._probe_cache.clear()
    arms = ("fp32", "fp32_cl", "bf16_cl")
    times = precision.probe_times(net, (3, 8, 8), 4, arms)
    assert set(times) == set(arms) and all(t > 0 for t in times.values())
    assert torch.equal(torch.rand(3), expected)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # BN statistics too
    assert next(iter(net.parameters())).is_contiguous()  # the run's network keeps its layout
    assert precision.probe_times(net, (3, 8, 8), 4, arms) == times  # measured once per network, batch and arms


def bf16_run(tmp_path, monkeypatch):
    """A tiny run on a CPU faked to have native bf16, whose probe measures bf16 1.9x faster: its directory."""
    monkeypatch.setenv("RESLAB_CPU_FLAGS", "avx512_bf16")
    fake_probe(monkeypatch, fp32_cl=0.95, bf16_cl=1 / 1.9)
    return train_tiny(tmp_path / "run", **DATA)


def test_a_run_records_the_choice_and_says_why(tmp_path, monkeypatch):
    out = bf16_run(tmp_path, monkeypatch)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (saved["amp"], saved["channels_last"]) == ("bf16", True)
    log = (out / "train.log").read_text()
    assert (
        "precision: auto on the CPU: bf16 + channels-last (probe of training steps: fp32 channels-last 1.05x NCHW "
        "(needs 1.1x), bf16 + channels-last 1.90x fp32 (needs 1.2x; avx512_bf16))"
    ) in log
    # eval of the checkpoint repeats its training precision and layout (so its figures repeat); amp=None is
    # fp32 (the layout then as the rule chooses: RESLAB_PROBE=0 here, NCHW)
    import reslab.training.evaluation as evaluation

    seen = []
    real = evaluation.evaluate_model
    monkeypatch.setattr(
        evaluation, "evaluate_model", lambda *a, **k: seen.append((k["amp_dtype"], k["channels_last"])) or real(*a, **k)
    )
    reslab.evaluate(str(out))
    monkeypatch.setenv("RESLAB_PROBE", "0")
    reslab.evaluate(str(out), amp=None)
    assert seen == [(torch.bfloat16, True), (None, False)]


def test_the_cli_default_on_a_cpu_without_bf16_and_explicit_flags(tmp_path):
    out = tmp_path / "run"
    base = [sys.executable, "-m", "reslab", "train", "--model", "resnet20", "--model-arg", "widths=[4,8,8]"]
    base += ["--data", "synthetic", "--image-size", "8", "--epochs", "1", "--device", "cpu", "--threads", "1"]
    proc = subprocess.run([*base, "--out", str(out)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "precision: auto on the CPU: fp32 (no native bf16: neither avx512_bf16 nor amx_bf16" in proc.stderr
    assert "RESLAB_PROBE=0: not probed" in proc.stderr
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


def test_the_cli_probes_the_fp32_layout_on_a_cpu_without_bf16(tmp_path):
    """The real probe, as a user's run meets it: the log says what it measured, config.yaml what it chose."""
    import os
    import re

    env = {k: v for k, v in os.environ.items() if k != "RESLAB_PROBE"}
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "reslab", "train", "--model", "resnet20", "--model-arg", "widths=[4,8,8]"]
    cmd += ["--data", "synthetic", "--image-size", "16", "--epochs", "1", "--device", "cpu", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr
    found = re.search(
        r"precision: auto on the CPU: (fp32(?: \+ channels-last)?) \(no native bf16: .*; probe of "
        r"training steps: fp32 channels-last (\d+\.\d\d)x NCHW \(needs 1\.1x\)\)",
        proc.stderr,
    )
    assert found, proc.stderr
    chosen, ratio = found.group(1), float(found.group(2))
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["amp"] is None and saved["channels_last"] is (chosen == "fp32 + channels-last")
    assert saved["channels_last"] is (ratio >= 1.1)
