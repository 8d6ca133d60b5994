"""The GPU speed benchmarks, run on the CPU with tiny settings (no GPU here): benchmarks/train_throughput.py
--quick and benchmarks/cifar10_time_to_accuracy.py --quick on a small zip of real JPEG files, and
benchmarks/gpu_check.py --quick (all of them, and the GPU tests, in one run for a lent GPU machine). Their
full-size figures (and what could not be measured without a GPU) are in docs/benchmarks.md ("GPU training
speed", "GPU check")."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_throughput_quick_on_cpu(tmp_path, capsys):
    out = tmp_path / "throughput.json"
    rc = _script("train_throughput").main(
        ["--device", "cpu", "--quick", "--models", "resnet20", "--steps", "2", "--amp", "none", "--json", str(out)]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert printed.startswith("device: cpu") and "compile off" in printed  # says where and how it ran
    result = json.loads(out.read_text())
    assert result["device_type"] == "cpu" and result["quick"] and result["amp"] is None
    assert [r["model"] for r in result["rows"]] == ["resnet20"]
    for row in result["rows"]:
        assert row["tutorial_images_per_s"] > 0 and row["reslab_images_per_s"] > 0
        assert row["ratio"] == pytest.approx(row["reslab_images_per_s"] / row["tutorial_images_per_s"])
        assert len(row["reslab_epochs_images_per_s"]) == 2
        assert f"{row['model']} {row['image_size']}x{row['image_size']}" in printed


def _jpeg_zip(path: Path, classes=("cat", "dog"), per_class: int = 10) -> Path:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as zf:
        for k, name in enumerate(classes):
            for i in range(per_class):
                pixels = (rng.random((32, 32, 3)) * 60 + 150 * k).astype(np.uint8)
                jpeg = path.parent / "tmp.jpg"
                Image.fromarray(pixels).save(jpeg, quality=90)
                zf.write(jpeg, f"{name}/{i:04d}.jpg")
    return path


@pytest.mark.slow
def test_time_to_accuracy_quick_through_the_cli(tmp_path, capsys):
    """The script runs ``reslab train`` on a zip of JPEG class folders with 10% held out, as on CIFAR-10."""
    data = _jpeg_zip(tmp_path / "train.zip")
    out = tmp_path / "tta.json"
    rc = _script("cifar10_time_to_accuracy").main(
        [
            "--device",
            "cpu",
            "--quick",
            "--data",
            str(data),
            "--limit",
            "8",
            "--threads",
            "1",
            "--out",
            str(tmp_path / "run"),
            "--json",
            str(out),
            "--",
            "--batch-size",
            "4",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert printed.startswith("device: cpu")
    assert "--val-split 0.1" in printed and "--batch-size 4" in printed
    result = json.loads(out.read_text())
    assert result["device"] == "cpu" and result["epochs"] == 1 and result["limit"] == 8
    assert result["split"] == "val" and result["n"] == 2  # 10% of 20 images, one per class
    assert 0.0 <= result["top1"] <= 1.0 and result["wall_s"] >= result["epochs_s"] > 0
    assert (tmp_path / "run" / "best.pt").is_file()


def test_time_to_accuracy_without_the_zip_is_one_line(tmp_path, capsys):
    rc = _script("cifar10_time_to_accuracy").main(["--quick", "--data", str(tmp_path / "missing.zip")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "missing.zip is not a file" in err


def test_tutorial_transfer_benchmark_on_a_tiny_zip(tmp_path, capsys):
    """benchmarks/tutorial_transfer.py on 32 px JPEGs: both loops train on as many images, reslab through
    the feature cache (the backbone frozen), and the ratio printed is the two rates' ratio."""
    data = _jpeg_zip(tmp_path / "train.zip", per_class=10)
    out = tmp_path / "tutorial.json"
    argv = ["--data", str(data), "--per-class", "10", "--epochs", "2", "--model", "resnet18", "--image-size", "64"]
    rc = _script("tutorial_transfer").main([*argv, "--threads", "1", "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "resnet18 at 64 px, 18 training images x 2 epochs" in printed and "reslab / tutorial" in printed
    result = json.loads(out.read_text())
    assert result["reslab"]["feature_cache"] is True
    assert result["tutorial"]["images"] == result["reslab"]["images"] == 36
    assert result["ratio"] == pytest.approx(result["reslab"]["images_per_s"] / result["tutorial"]["images_per_s"])


def test_tutorial_transfer_benchmark_without_the_zip_is_one_line(tmp_path, capsys):
    rc = _script("tutorial_transfer").main(["--data", str(tmp_path / "missing.zip")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "missing.zip" in err


GPU_CHECK_STEPS = ["gpu-tests", "train-throughput", "time-to-accuracy", "inference", "inference-compile", "torchrun"]


@pytest.mark.slow
def test_gpu_check_quick_runs_every_step_on_the_cpu(tmp_path, capsys, monkeypatch):
    """make gpu-check's script with --quick: every step in order, the CUDA-only ones (the GPU tests, the
    compiled inference) recorded as skipped, the others run as subprocesses and their figures read."""
    monkeypatch.setenv("RESLAB_CACHE_DIR", str(tmp_path / "cache"))
    data = _jpeg_zip(tmp_path / "train.zip")
    out = tmp_path / "results"
    rc = _script("gpu_check").main(["--quick", "--data", str(data), "--out", str(out), "--work", str(tmp_path / "w")])
    printed = capsys.readouterr().out
    result = json.loads((out / "gpu_check.json").read_text())
    steps = {s["name"]: s for s in result["steps"]}
    assert [s["name"] for s in result["steps"]] == GPU_CHECK_STEPS
    assert {n: s["status"] for n, s in steps.items()} == {
        "gpu-tests": "skipped: no CUDA",
        "train-throughput": "ok",
        "time-to-accuracy": "ok",
        "inference": "ok",
        "inference-compile": "skipped: no CUDA",
        "torchrun": "ok",
    }, {n: s.get("tail") for n, s in steps.items()}
    assert rc == 0
    assert result["quick"] and result["device"]["device"] == "cpu" and result["device"]["torch"] in printed
    figures = {n: s["figures"] for n, s in steps.items()}
    assert figures["train-throughput"]["models"]["resnet20"]["ratio"] > 0
    assert figures["time-to-accuracy"]["n"] == 2 and figures["time-to-accuracy"]["epochs"] == 1
    assert figures["inference"]["reslab_inference_images_per_s"] > 0
    assert figures["torchrun"]["split"] == "val" and 0.0 <= figures["torchrun"]["top1"] <= 1.0
    assert (tmp_path / "w" / "torchrun-run" / "summary.json").is_file()
    assert all(s["rc"] == 0 and s["seconds"] > 0 for s in steps.values() if s["status"] == "ok")
    table = (out / "gpu_check.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith(("| step", "| ---"))]
    assert [row.split(" | ")[0][2:] for row in rows] == GPU_CHECK_STEPS
    assert table in printed  # the table is printed at the end
    assert "===== torchrun:" in (out / "gpu_check.log").read_text()


def test_gpu_check_records_a_failed_and_a_timed_out_step_and_goes_on(tmp_path, capsys, monkeypatch):
    """A step that fails and one that outlives its timeout (its child process too) are recorded with their
    output's last lines; the next step still runs, and the exit status is 1."""
    gpu_check = _script("gpu_check")
    sleeper = tmp_path / "sleeper.pid"
    hang = f"import subprocess, time; open({str(sleeper)!r}, 'w').write(str(subprocess.Popen(['sleep', '60']).pid)); "
    hang += "print('hanging', flush=True); time.sleep(60)"
    steps = [
        gpu_check.Step("fails", "exits 3", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"], 20, 1),
        gpu_check.Step("hangs", "sleeps", [sys.executable, "-c", hang], 3, 1),
        gpu_check.Step("passes", "prints", [sys.executable, "-c", "print('fine')"], 20, 1),
    ]
    monkeypatch.setattr(gpu_check, "make_steps", lambda args, work: steps)
    for step in steps:
        step.parse = lambda step, text: {}
    start = time.perf_counter()
    rc = gpu_check.main(["--quick", "--data", str(tmp_path / "none.zip"), "--out", str(tmp_path / "r")])
    assert rc == 1 and time.perf_counter() - start < 30
    result = json.loads((tmp_path / "r" / "gpu_check.json").read_text())
    fails, hangs, passes = result["steps"]
    assert fails["status"] == "failed" and fails["rc"] == 3 and fails["tail"] == ["boom"]
    assert hangs["status"] == "timed out" and hangs["tail"] == ["hanging"] and hangs["timeout_s"] == 3
    assert passes["status"] == "ok" and passes["rc"] == 0
    pid = int(sleeper.read_text())
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    table = (tmp_path / "r" / "gpu_check.md").read_text()
    assert "| fails | failed (rc 3) |" in table and "| hangs | timed out |" in table


def test_gpu_check_reads_the_gpu_steps_figures_from_their_output():
    """What only a GPU run prints (the GPU tests' summary, torchvision's line in reslab bench) is read too."""
    gpu_check = _script("gpu_check")
    pytest_out = (
        "..ss.F\nSKIPPED [9] tests/models/gpu_helpers.py:12: no CUDA GPU\n"
        "1 failed, 23 passed, 10 skipped, 239 deselected in 7.57s\n"
    )
    step = gpu_check.Step("gpu-tests", "", [], 1, 1)
    figures = gpu_check.parse_pytest(step, pytest_out)
    assert (figures["passed"], figures["failed"], figures["skipped"], figures["deselected"]) == (23, 1, 10, 239)
    assert figures["skip_reasons"] == ["SKIPPED [9] tests/models/gpu_helpers.py:12: no CUDA GPU"]
    bench_out = (
        "resnet50 on cuda, batch 256, 224x224 (threads=16, amp=bf16, channels_last=True, compile=True, fuse=False)\n"
        "  reslab inference                 9000.0 images/s   peak memory 1.0 MiB (CUDA max_memory_allocated)\n"
        "  torchvision inference            7500.0 images/s   peak memory 1.0 MiB (CUDA max_memory_allocated)\n"
        "  inference: reslab / torchvision = 1.20x\n"
    )
    figures = gpu_check.parse_bench(step, bench_out)
    assert figures["torchvision_inference_images_per_s"] == 7500.0 and figures["reslab_vs_torchvision"] == 1.2
    # a train-throughput step killed at its timeout: the models it printed before
    printed = "resnet20 32x32 batch 512: tutorial 9,876 img/s, reslab 54,321 img/s (epochs: 1, 2, 3): ratio 5.50x\n"
    figures = gpu_check.parse_throughput(gpu_check.Step("train-throughput", "", [], 1, 1), printed)
    assert figures["models"]["resnet20"]["reslab_images_per_s"] == 54321.0 and figures["from"] == "printed lines"


def test_profile_train_accounts_for_the_profiled_epoch(tmp_path, capsys, monkeypatch):
    """benchmarks/profile_train.py wraps the trainer's phases from outside: it must still find them all."""
    module = _script("profile_train")
    monkeypatch.setattr(module, "CIFAR10_MINI", tmp_path / "absent")  # synthetic images
    assert module.main(["--limit", "256", "--amp", "none", "--channels-last", "off", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "amp fp32, channels-last False; epoch 2 profiled" in printed
    wall = float(printed.split("profiled: ")[1].split(" s wall")[0])
    rows = {}
    for line in printed.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[1].replace(".", "").isdigit():
            rows[cells[0]] = float(cells[1])
    for phase in ("data", "forward+backward", "optimizer", "evaluation", "checkpoint", "other"):
        assert phase in rows
    assert rows["forward+backward"] > 0 and rows["evaluation"] > 0
    phases = sum(rows[p] for p in ("data", "forward+backward", "optimizer", "evaluation", "checkpoint"))
    assert phases <= wall * 1.02  # the phases lie inside the profiled epoch (the final test pass not counted)
    assert rows["convolution backward"] > 0 and rows["convolution forward"] > 0
