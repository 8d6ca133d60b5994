"""Inference speed on this CPU: ResNet-50 at 224x224, batch 32, one process, alternating configurations.

* eager: the registry's resnet50, fp32, NCHW (the baseline).
* folded + channels_last: conv-BN folded (``model.fuse()``) and channels-last memory format.
* folded + channels_last + bf16: the same under CPU bf16 autocast -- measured only where the CPU has native
  bf16 instructions (avx512_bf16 / amx_bf16; elsewhere PyTorch emulates bf16 and the number says nothing
  about the option), unless ``--force-bf16``.
* onnxruntime: the same network exported by ``reslab.export.export_onnx`` (fp32), run by onnxruntime's CPU
  provider with as many threads as torch uses.

Each configuration runs ``--warmup`` untimed batches, then the configurations take turns, ``--repeats``
times ``--steps`` batches each; the median images/s of each is reported with ratios to eager (all measured
in this run). Random weights with randomised BN statistics (speed does not depend on the values); the
folded model's logits are checked against eager's first.

    python benchmarks/inference.py [--threads N] [--steps 2] [--repeats 3] [--warmup 1] [--no-onnx]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from reslab import create_model  # noqa: E402

BATCH, SIZE = 32, 224


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _randomise_bn(model: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            # mild statistics: the logits stay O(1), where the export's 1e-4 absolute check is meaningful
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.01)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.2 + 0.9)
    return model.eval()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch / onnxruntime threads")
    p.add_argument("--steps", type=int, default=2, help="timed batches per turn")
    p.add_argument("--repeats", type=int, default=3, help="turns per configuration (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed batches per configuration")
    p.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime measurement")
    p.add_argument("--force-bf16", action="store_true", help="measure bf16 even without native bf16 instructions")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"CPU: {_cpu_name()}, {args.threads} torch threads, torch {torch.__version__}")
    print(f"resnet50 inference, batch {BATCH}, {SIZE}x{SIZE}, {args.steps} batches x {args.repeats} turns")

    eager = _randomise_bn(create_model("resnet50"))
    folded = _randomise_bn(create_model("resnet50"))
    folded.load_state_dict(eager.state_dict())
    folded.fuse()
    folded = folded.to(memory_format=torch.channels_last)
    x = torch.randn(BATCH, 3, SIZE, SIZE)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        diff = (folded(x_cl[:2]) - eager(x[:2])).abs().max().item()
        scale = eager(x[:2]).abs().max().item()
    print(f"folded + channels_last vs eager logits: max |diff| {diff:.2e} (largest logit {scale:.2f})")

    def run_torch(model, inp, bf16=False):
        def step():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                model(inp)

        return step

    configs = {
        "eager fp32 NCHW": run_torch(eager, x),
        "folded + channels_last": run_torch(folded, x_cl),
    }
    if _native_bf16() or args.force_bf16:
        configs["folded + channels_last + bf16"] = run_torch(folded, x_cl, bf16=True)
    else:
        print(
            "bf16: not measured -- this CPU has no native bf16 instructions (avx512_bf16/amx_bf16); "
            "--force-bf16 measures PyTorch's emulation"
        )

    tmp = tempfile.TemporaryDirectory()
    if not args.no_onnx:
        try:
            import onnxruntime as ort

            from reslab.export import ExportOptions, export_onnx
        except ImportError as e:
            print(f"onnxruntime: not measured ({e}); pip install 'reslab[export]'")
        else:
            start = time.perf_counter()
            path, _ = export_onnx(
                eager,
                Path(tmp.name) / "resnet50.onnx",
                ExportOptions(
                    input_size=(3, SIZE, SIZE),
                    class_names=None,
                    preprocessing=None,
                    model_name="resnet50",
                    model_args=None,
                ),
            )
            print(f"exported {path.name} in {time.perf_counter() - start:.0f} s (checked against PyTorch)")
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = args.threads
            opts.inter_op_num_threads = 1
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            feed = {"input": x.numpy()}
            configs["onnxruntime fp32"] = lambda: session.run(["logits"], feed)

    for step in configs.values():
        for _ in range(args.warmup):
            step()
    rates: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.repeats):
        for name, step in configs.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            rates[name].append(BATCH * args.steps / (time.perf_counter() - start))
    base = statistics.median(rates["eager fp32 NCHW"])
    print(f"{'configuration':<32} {'images/s':>9}  vs eager")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"{name:<32} {rate:9.1f}  {rate / base:5.2f}x")
    if "onnxruntime fp32" in rates:
        best = max((n for n in rates if n != "onnxruntime fp32"), key=lambda n: statistics.median(rates[n]))
        ratio = statistics.median(rates["onnxruntime fp32"]) / statistics.median(rates[best])
        print(f"onnxruntime / best PyTorch ({best}): {ratio:.2f}x")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
