"""GPU check: the GPU tests and the GPU benchmarks in one run, for a lent GPU machine (``make gpu-check``).

Six steps, in this order, each a subprocess with its own timeout (its process group is killed when the
time is up); a step that fails or times out is recorded (exit status, the last lines of its output) and
the next one runs:

1. ``gpu-tests``: the GPU-marked tests (``pytest -q -rs tests/models -k "torchvision or gpu or cuda"
   tests/data/test_loader.py``): passed / failed / skipped counts, the skip reasons;
2. ``train-throughput``: ``benchmarks/train_throughput.py`` (reslab vs the tutorial pipeline, resnet20 /
   resnet56 at 32 px, resnet50 at 224 px): per-model images/s and ratios, from its ``--json``;
3. ``time-to-accuracy``: ``benchmarks/cifar10_time_to_accuracy.py`` (resnet20, 30 epochs on the CIFAR-10
   JPEG zip, 10% held out): wall time, the epochs' time, held-out accuracy, from its ``--json``;
4. ``inference`` and ``inference-compile``: ``reslab bench resnet50 --amp bf16 --channels-last``, without
   and with ``--compile``: images/s (reslab's, and torchvision's where it imports), from its report lines;
5. ``torchrun``: ``torchrun --standalone --nproc-per-node 1 -m reslab train --model resnet20 --data folder
   --val-split 0.1 --epochs 2`` on the zip (launched as tests/distributed does: ``python -m
   torch.distributed.run``): exit status and accuracy from its ``summary.json``.

    python benchmarks/gpu_check.py [--out DIR] [--data ZIP] [--device cuda|cpu] [--budget 450]
        [--work DIR] [--quick]

Results: ``DIR/gpu_check.json`` (every step: status, seconds, key figures, command, last output lines;
the device description and torch version), ``DIR/gpu_check.md`` (the same as a table, also printed at the
end) and ``DIR/gpu_check.log`` (every step's whole output). The run directories and the steps' own JSON
files go to ``--work`` (default: a temporary folder, removed at the end), so that DIR holds three files.
Exit status: 0 when every step ran and passed, 1 when one failed, timed out or was not run for want of
time (after the results are written); steps skipped for want of CUDA do not count as failures.

Time: each step has a cap, and the whole run a budget (``--budget``, default 450 s: under 8 minutes with
Python's start); a step gets its cap or what the budget leaves after the later steps' minimums, whichever
is less, and is not started (``skipped: time budget spent``) when that is under its own minimum.

Data: ``--data`` (default ``local-data/train.zip`` in the checkout if present, else
``../shared/data/cifar10-jpeg/train.zip`` beside it).

``--quick``: the same plumbing on the CPU with tiny settings (each script's ``--quick`` or tiny flags,
``--device cpu``, one epoch on a few images, resnet50 inference at 64 px); the CUDA-only steps (the GPU
tests, the compiled inference) are recorded as ``skipped: no CUDA`` where there is no CUDA device. Pass a
small zip of class folders as ``--data``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCAL_ZIP = ROOT / "local-data" / "train.zip"
SHARED_ZIP = ROOT.parent / "shared" / "data" / "cifar10-jpeg" / "train.zip"
TAIL_LINES = 40
NO_CUDA = "skipped: no CUDA"
NO_TIME = "skipped: time budget spent"


def default_data() -> Path:
    return LOCAL_ZIP if LOCAL_ZIP.is_file() else SHARED_ZIP


class Step:
    """One step: its command, its time cap and minimum (seconds), whether it needs CUDA or the zip, how its
    figures are read (``parse(step, output)``), extra environment, and the files it leaves."""

    def __init__(
        self,
        name: str,
        what: str,
        cmd: list[str],
        cap: float,
        floor: float,
        cuda_only: bool = False,
        needs_data: bool = False,
        parse=None,
        env: dict[str, str] | None = None,
        json_file: Path | None = None,
        run_dir: Path | None = None,
    ):
        self.name, self.what, self.cmd, self.cap, self.floor = name, what, cmd, cap, floor
        self.cuda_only, self.needs_data, self.parse, self.env = cuda_only, needs_data, parse, env or {}
        self.json_file, self.run_dir = json_file, run_dir


# -- reading each step's figures --------------------------------------------------------------------------
def parse_pytest(step: Step, text: str) -> dict:
    counts = {}
    summary = [line for line in text.splitlines() if re.search(r"\d+ (passed|failed|skipped|error|deselected)", line)]
    if summary:
        for n, what in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)", summary[-1]):
            counts["errors" if what.startswith("error") else what] = int(n)
    reasons = [line.strip() for line in text.splitlines() if line.startswith("SKIPPED")]
    return {
        "passed": counts.get("passed", 0),
        "failed": counts.get("failed", 0) + counts.get("errors", 0),
        "skipped": counts.get("skipped", 0),
        "deselected": counts.get("deselected", 0),
        "skip_reasons": reasons[:10],
    }


THROUGHPUT_LINE = re.compile(
    r"^(\w+) (\d+)x\d+ batch (\d+): tutorial ([\d,.]+) img/s, reslab ([\d,.]+) img/s .*ratio ([\d.]+)x", re.M
)


def parse_throughput(step: Step, text: str) -> dict:
    """Its --json; else (a timeout) the models it printed before it stopped."""
    if step.json_file and step.json_file.is_file():
        data = json.loads(step.json_file.read_text())
        models = {
            r["model"]: {
                "image_size": r["image_size"],
                "batch": r["batch"],
                "tutorial_images_per_s": round(r["tutorial_images_per_s"], 1),
                "reslab_images_per_s": round(r["reslab_images_per_s"], 1),
                "ratio": round(r["ratio"], 3),
            }
            for r in data["rows"]
        }
        return {"models": models, "from": "json", "compile": data["compile"], "amp": data["amp"]}
    models = {
        m[0]: {
            "image_size": int(m[1]),
            "batch": int(m[2]),
            "tutorial_images_per_s": float(m[3].replace(",", "")),
            "reslab_images_per_s": float(m[4].replace(",", "")),
            "ratio": float(m[5]),
        }
        for m in THROUGHPUT_LINE.findall(text)
    }
    return {"models": models, "from": "printed lines"} if models else {}


def parse_time_to_accuracy(step: Step, text: str) -> dict:
    if not (step.json_file and step.json_file.is_file()):
        return {}
    data = json.loads(step.json_file.read_text())
    keys = ("epochs", "limit", "wall_s", "epochs_s", "split", "top1", "n", "command")
    return {k: round(data[k], 2) if isinstance(data[k], float) and k != "top1" else data[k] for k in keys}


BENCH_LINE = re.compile(r"^\s+(reslab|torchvision) (inference|train step)\s+([\d.]+) images/s", re.M)


def parse_bench(step: Step, text: str) -> dict:
    """reslab bench prints one line per measurement (``  reslab inference   1234.5 images/s ...``)."""
    figures = {f"{who}_{phase.replace(' ', '_')}_images_per_s": float(v) for who, phase, v in BENCH_LINE.findall(text)}
    if "reslab_inference_images_per_s" in figures and "torchvision_inference_images_per_s" in figures:
        figures["reslab_vs_torchvision"] = round(
            figures["reslab_inference_images_per_s"] / figures["torchvision_inference_images_per_s"], 3
        )
    notes = [line.strip()[len("note: ") :] for line in text.splitlines() if line.strip().startswith("note: ")]
    if notes:
        figures["notes"] = notes
    return figures


def parse_torchrun(step: Step, text: str) -> dict:
    summary = step.run_dir / "summary.json" if step.run_dir else None
    if not (summary and summary.is_file()):
        return {}
    data = json.loads(summary.read_text())
    return {k: data[k] for k in ("split", "top1", "n") if k in data}


# -- the steps -----------------------------------------------------------------------------------------------
def make_steps(args: argparse.Namespace, work: Path) -> list[Step]:
    py = sys.executable
    dev = args.device
    quick = args.quick
    data = str(args.data)
    threads = ["--threads", "1"] if quick else []
    steps = []

    tests = ["tests/models", "-k", "torchvision or gpu or cuda", "tests/data/test_loader.py"]
    pytest = [py, "-m", "pytest", "-q", "-rs", *tests]
    steps.append(Step("gpu-tests", "the GPU-marked tests", pytest, 120, 30, cuda_only=True, parse=parse_pytest))

    tp = work / "train_throughput.json"
    tp_args = ["--quick", "--models", "resnet20", "--steps", "2", "--amp", "none"] if quick else []
    steps.append(
        Step(
            "train-throughput",
            "training images/s, reslab vs the tutorial pipeline",
            [py, "benchmarks/train_throughput.py", "--device", dev, *tp_args, *threads, "--json", str(tp)],
            210,
            90,
            parse=parse_throughput,
            json_file=tp,
        )
    )

    tta = work / "time_to_accuracy.json"
    tta_args = ["--quick", "--limit", "8"] if quick else []
    tta_extra = ["--", "--batch-size", "4"] if quick else []
    steps.append(
        Step(
            "time-to-accuracy",
            "resnet20 on the CIFAR-10 zip through reslab train",
            [py, "benchmarks/cifar10_time_to_accuracy.py", "--device", dev, "--data", data, *tta_args, *threads]
            + ["--out", str(work / "tta-run"), "--json", str(tta), *tta_extra],
            120,
            60,
            needs_data=True,
            parse=parse_time_to_accuracy,
            json_file=tta,
            run_dir=work / "tta-run",
        )
    )

    bench = [py, "-m", "reslab", "bench", "resnet50", "--device", dev, "--amp", "bf16", "--channels-last"]
    sizes = ["--batch-size", "2", "--image-size", "64", "--steps", "1", "--warmup", "1"] if quick else []
    sizes = sizes or ["--batch-size", "256", "--steps", "20", "--warmup", "5"]
    steps.append(
        Step("inference", "reslab bench resnet50, eager", [*bench, *sizes, *threads], 60, 20, parse=parse_bench)
    )
    steps.append(
        Step(
            "inference-compile",
            "reslab bench resnet50, --compile",
            [*bench, *sizes, *threads, "--compile"],
            120,
            45,
            cuda_only=True,
            parse=parse_bench,
        )
    )

    run = work / "torchrun-run"
    train = ["--model", "resnet20", "--data", "folder", "--data-dir", data, "--val-split", "0.1"]
    train += ["--epochs", "1" if quick else "2", "--device", dev, "--out", str(run), "--progress", "plain"]
    train += [*threads, "--batch-size", "4"] if quick else []
    launch = [py, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=1", "-m", "reslab", "train"]
    steps.append(
        Step(
            "torchrun",
            "1-GPU torchrun reslab train",
            [*launch, *train],
            90,
            30,
            needs_data=True,
            parse=parse_torchrun,
            env={"OMP_NUM_THREADS": "1"} if quick else {},
            run_dir=run,
        )
    )
    return steps


# -- running -------------------------------------------------------------------------------------------------
def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)  # a launcher around this script must not leak into the torchrun step
    return env


def run_command(cmd: list[str], timeout: float, log: Path, env: dict[str, str]) -> tuple[int | None, bool, str]:
    """Run ``cmd`` in its own process group, output to ``log``; returns (rc, timed out, output)."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        timed_out = False
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    continue
            rc = proc.returncode
        # the group's leftovers (DataLoader workers, compile workers) go too
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return rc, timed_out, log.read_text(errors="replace")


def device_description(device: str, cuda: bool) -> dict:
    import torch

    info = {"device": device, "torch": torch.__version__, "cuda_available": cuda, "cpu_count": os.cpu_count()}
    if cuda:  # asked in a subprocess, with a timeout: a wedged driver must not hang the check
        code = "import json, torch; p = torch.cuda.get_device_properties(0); "
        code += "print(json.dumps([torch.cuda.get_device_name(0), p.total_memory, torch.version.cuda]))"
        try:
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
            name, memory, cuda_version = json.loads(out.stdout.strip().splitlines()[-1])
            info.update(name=name, memory_gib=round(memory / 2**30, 1), cuda=cuda_version)
        except Exception as e:  # noqa: BLE001 - recorded, not raised
            info["name"] = f"unknown ({type(e).__name__})"
    else:
        info["name"] = f"cpu ({os.cpu_count()} cores)"
    info["description"] = f"{info['name']}, torch {info['torch']}"
    return info


def key_figures_text(step: dict) -> str:
    """The step's figures in a few words, for the table."""
    f = step.get("figures") or {}
    name = step["name"]
    if name == "gpu-tests" and f:
        return f"{f['passed']} passed, {f['failed']} failed, {f['skipped']} skipped"
    if name == "train-throughput" and f.get("models"):
        return "; ".join(
            f"{m} {v['image_size']}px: reslab {v['reslab_images_per_s']:,.0f} vs tutorial "
            f"{v['tutorial_images_per_s']:,.0f} img/s ({v['ratio']:.2f}x)"
            for m, v in f["models"].items()
        )
    if name == "time-to-accuracy" and f:
        limit = f" on {f['limit']} images" if f.get("limit") else ""
        return (
            f"{f['epochs']} epochs{limit}: epochs {f['epochs_s']:.1f} s, command {f['wall_s']:.1f} s; "
            f"{f['split']} top-1 {f['top1']:.4f} (n={f['n']})"
        )
    if name.startswith("inference") and "reslab_inference_images_per_s" in f:
        text = f"reslab {f['reslab_inference_images_per_s']:,.1f} img/s"
        if "torchvision_inference_images_per_s" in f:
            text += f", torchvision {f['torchvision_inference_images_per_s']:,.1f} ({f['reslab_vs_torchvision']:.2f}x)"
        elif any(n.startswith("torchvision not available") for n in f.get("notes", [])):
            text += " (torchvision not available)"
        return text
    if name == "torchrun" and "top1" in f:
        return f"rc {step['rc']}; {f['split']} top-1 {f['top1']:.4f} (n={f['n']})"
    return ""


def failure_line(text: str) -> str:
    """The line of a failed step's output that says why: the last ``reslab: error`` or exception line with a
    message (torchrun's closing report has none), else the last line with words."""
    lines = [line.strip() for line in text.splitlines() if re.search(r"[A-Za-z]", line)]
    errors = [
        line for line in lines if re.match(r"(\[rank\d+\]:)?\s*(reslab: error|[\w.]*(Error|Exception)\b.*:\s*\S)", line)
    ]
    line = (errors or lines or [""])[-1]
    return line if len(line) <= 160 else line[:157] + "..."


def markdown(result: dict) -> str:
    d = result["device"]
    lines = [
        "# GPU check",
        "",
        f"device: {d['description']} ({'quick, ' if result['quick'] else ''}--device {d['device']}); "
        f"started {result['started']}, {result['seconds']:.0f} s in all",
        "",
        "| step | status | seconds | key figures |",
        "| --- | --- | --- | --- |",
    ]
    for s in result["steps"]:
        status = s["status"] + (f" (rc {s['rc']})" if s["status"] == "failed" and s.get("rc") is not None else "")
        figures = key_figures_text(s) or s.get("note", "") or s.get("error", "")
        lines.append(f"| {s['name']} | {status} | {s['seconds']:.1f} | {figures.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--out", type=Path, default=None, help="where the results go (default: $OUT, else gpu-check-results)"
    )
    p.add_argument("--data", type=Path, default=None, help=f"the CIFAR-10 JPEG zip (default {default_data()})")
    p.add_argument("--device", default=None, help="cuda (default), cpu (--quick's default)")
    p.add_argument("--budget", type=float, default=None, help="seconds for the whole run (450; --quick 300)")
    p.add_argument("--work", type=Path, default=None, help="run directories (default: a temporary folder)")
    p.add_argument("--quick", action="store_true", help="tiny settings on the CPU: proves the plumbing")
    args = p.parse_args(argv)
    args.out = args.out or Path(os.environ.get("OUT") or "gpu-check-results")
    args.data = (args.data or default_data()).resolve()
    args.device = args.device or ("cpu" if args.quick else "cuda")
    budget = args.budget or (300.0 if args.quick else 450.0)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    deadline = start + budget

    import torch

    cuda = args.device.startswith("cuda") and torch.cuda.is_available()
    device = device_description(args.device, cuda)
    print(f"gpu check: {device['description']}, --device {args.device}, budget {budget:.0f} s", flush=True)
    print(f"data: {args.data}{'' if args.data.is_file() else ' (missing)'}", flush=True)

    tmp = None if args.work else tempfile.mkdtemp(prefix="gpu-check-")
    work = (args.work or Path(tmp)).resolve()
    work.mkdir(parents=True, exist_ok=True)
    steps = make_steps(args, work)
    log_path = args.out / "gpu_check.log"
    log_path.write_text("")
    result = {
        "device": device,
        "quick": args.quick,
        "data": str(args.data),
        "budget_s": budget,
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "seconds": 0.0,
        "steps": [],
    }

    def write_results() -> str:
        result["seconds"] = round(time.perf_counter() - start, 1)
        (args.out / "gpu_check.json").write_text(json.dumps(result, indent=1))
        table = markdown(result)
        (args.out / "gpu_check.md").write_text(table)
        return table

    try:
        for i, step in enumerate(steps):
            record = {"name": step.name, "what": step.what, "command": shlex.join(step.cmd), "rc": None, "seconds": 0.0}
            record["figures"] = {}
            later = sum(s.floor for s in steps[i + 1 :] if not (s.cuda_only and not cuda))
            left = deadline - time.perf_counter()
            timeout = min(step.cap, max(step.floor, left - later))  # never more than is left: see the skip below
            if step.cuda_only and not cuda:
                record["status"] = NO_CUDA
            elif step.needs_data and not args.data.is_file():
                record.update(status="failed", note=f"no data: {args.data} is not a file (pass --data ZIP)")
            elif left < step.floor:
                record.update(status=NO_TIME, note=f"{max(left, 0):.0f} s left, under its minimum {step.floor:.0f} s")
            else:
                print(f"[{i + 1}/{len(steps)}] {step.name}: {step.what} (timeout {timeout:.0f} s)", flush=True)
                for path in (step.run_dir, step.json_file):  # a --work used before: its runs would be refused
                    if path and path.is_dir():
                        shutil.rmtree(path)
                    elif path and path.exists():
                        path.unlink()
                t0 = time.perf_counter()
                rc, timed_out, text = run_command(step.cmd, timeout, work / f"{step.name}.log", child_env(step.env))
                record["seconds"] = round(time.perf_counter() - t0, 1)
                record["rc"] = rc
                record["timeout_s"] = round(timeout, 1)
                with open(log_path, "a") as log:
                    log.write(f"===== {step.name}: {record['command']}\n{text}\n")
                try:
                    record["figures"] = step.parse(step, text) or {}
                except Exception as e:  # noqa: BLE001 - a figure not found is recorded, the check goes on
                    record["note"] = f"figures not read: {type(e).__name__}: {e}"
                if timed_out:
                    record["status"] = "timed out"
                    record["note"] = f"killed after {timeout:.0f} s"
                else:
                    record["status"] = "ok" if rc == 0 else "failed"
                if record["status"] != "ok":
                    record["error"] = failure_line(text)
                    record["tail"] = text.splitlines()[-TAIL_LINES:]
                print(f"    {record['status']} in {record['seconds']:.1f} s: {key_figures_text(record)}", flush=True)
            if record["rc"] is None:
                note = f" ({record['note']})" if record.get("note") else ""
                print(f"[{i + 1}/{len(steps)}] {step.name}: {record['status']}{note}", flush=True)
            result["steps"].append(record)
            write_results()  # after each step: a run stopped from outside still leaves what it measured
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    table = write_results()
    print()
    print(table, end="")
    print(f"\nresults: {args.out / 'gpu_check.json'}, {args.out / 'gpu_check.md'}, {log_path}")
    failed = [s["name"] for s in result["steps"] if s["status"] in ("failed", "timed out", NO_TIME)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
