"""The one script a person with a GPU runs: is the model right on this device, how far do the
low precisions move it, and how fast is it?

    python benchmarks/gpu_check.py                      # the first CUDA device (else MPS, else CPU)
    python benchmarks/gpu_check.py --device cuda:1 --sizes 64x112,128x224,272x480 --runs 5

1. Parity: the official fixtures (../shared/reference, or --fixtures DIR) in fp32 with TF32 off,
   against the fixture README's tolerance.
2. Precision: relative L2 error against fp32 on fixture case b for bf16 and fp16 (our mixed
   precision), torch.autocast in bf16 and fp16, and the whole model cast with .to(bfloat16)
   and .half(); non-finite outputs are reported as such.
3. Speed: seconds per (1, 4, 3, H, W) window of the official configuration (median of --runs
   after a warm-up) per precision, the time spent in each stage of the network, and peak
   device memory.
4. What `stdan eval` records about the device (its hardware name), and the API's error for
   frames on another device than the model's.
5. Training (`stdan train`): a few iterations of the training loop per training precision
   (autocast bf16, fp16 with loss scaling, fp32): seconds per iteration, peak device memory,
   whether every loss was finite. Run on GPUs (and on the CPU with --train).
6. Engines (on a CUDA GPU, or those named by --engines): ONNX Runtime's CUDA provider, its
   TensorRT provider (when this ONNX Runtime has it) and torch.compile with CUDA graphs, in fp32
   and fp16: preparation time (the ONNX export is made once and shared), relative L2 against
   eager fp32 on fixture case b, and seconds per window at the first --sizes entry.
Everything ends in a Markdown table to paste into an issue.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from stdan_cli.evaluation.provenance import device_name
from stdan_cli.model import STDAN, STDANConfig, load_model, pad_to_multiple, upscale_window
from stdan_cli.model.precision import use_low_precision_matmuls
from stdan_cli.upscalers.device import resolve_device, resolve_precision, tf32_allowed
from stdan_cli.upscalers.engines.backends import OpenVinoTarget, OrtTarget

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "reference"
STAGES = ("conv_first", "feature_extraction", "pcd_align_modified", "fusion_f_b", "stdfa", "feature_recon",
          "conv_before_upsample", "upsample", "conv_last")
LOW = {"bf16": torch.bfloat16, "fp16": torch.float16}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def parity_error(out: torch.Tensor, ref: torch.Tensor) -> tuple[float, bool]:
    """Max abs error, and the fixture README's verdict (max <= 1e-5, or a top-2 near-tie flip:
    max <= 1e-3 with mean <= 1e-6 and at most 1% of elements above 1e-5)."""
    diff = (out.float().cpu() - ref.float()).abs()
    ok = diff.max() <= 1e-5 or (diff.max() <= 1e-3 and diff.mean() <= 1e-6 and (diff > 1e-5).float().mean() <= 0.01)
    return diff.max().item(), bool(ok)


def relative_l2(out: torch.Tensor, ref: torch.Tensor) -> str:
    out, ref = out.float().cpu(), ref.float().cpu()
    if not torch.isfinite(out).all():
        return "not finite"
    return f"{((out - ref).norm() / ref.norm()).item():.2e}"


def check_parity(fixtures: Path, device: torch.device) -> list[tuple[str, str, str]]:
    rows = []
    model = load_model(fixtures / "parity_weights_fp16.pt", device=device).model
    with torch.inference_mode():
        case_a = torch.load(fixtures / "parity_case_a.pt", weights_only=True)
        err, ok = parity_error(model(case_a["input"].to(device)), case_a["output"])
        rows.append(("parity case a (fp32, TF32 off)", f"max abs {err:.2e}", "pass" if ok else "FAIL"))
        case_b = torch.load(fixtures / "parity_case_b.pt", weights_only=True)
        err, ok = parity_error(upscale_window(model, case_b["input"].to(device)), case_b["output"])
        rows.append(("parity case b (fp32, TF32 off)", f"max abs {err:.2e}", "pass" if ok else "FAIL"))
    return rows


def check_precisions(fixtures: Path, device: torch.device, crop: int | None = None) -> list[tuple[str, str, str]]:
    fp32 = load_model(fixtures / "parity_weights_fp16.pt", device=device).model
    x = torch.load(fixtures / "parity_case_b.pt", weights_only=True)["input"]
    if crop:
        x = x[..., :crop, :crop]
    x = pad_to_multiple(x.contiguous(), 8).to(device)
    with torch.inference_mode():
        ref = fp32(x)
    variants = {}
    for name, dtype in LOW.items():
        variants[f"{name} (mixed: low-precision matmuls)"] = (use_low_precision_matmuls(copy.deepcopy(fp32), dtype), None)
        variants[f"autocast {name}"] = (fp32, torch.autocast(device.type, dtype=dtype))
    variants["model.to(torch.bfloat16)"] = (copy.deepcopy(fp32).to(torch.bfloat16), torch.bfloat16)
    variants["model.half()"] = (copy.deepcopy(fp32).half(), torch.float16)
    rows = []
    for name, (model, how) in variants.items():
        try:
            with torch.inference_mode():
                if isinstance(how, torch.dtype):
                    out = model(x.to(how))
                else:
                    with how or nullcontext():
                        out = model(x)
            rows.append((name, "rel. L2 vs fp32", relative_l2(out, ref)))
        except Exception as exc:  # report and go on: one precision failing must not hide the others
            rows.append((name, "error", f"{type(exc).__name__}: {str(exc)[:80]}"))
    return rows


def check_eval_records(device: torch.device) -> list[tuple[str, str, str]]:
    """What `stdan eval` records about the device, and the API's error for frames left on another device."""
    name = device_name(device)
    rows = [("eval: device's hardware name recorded", name or "none",
             "pass" if name or device.type not in ("cpu", "cuda") else "FAIL")]
    if device.type != "cpu":
        model = STDAN(STDANConfig.small()).eval().to(device)
        try:
            upscale_window(model, torch.rand(1, 4, 3, 8, 8))
            rows.append(("upscale_window: CPU frames, model on " + str(device), "no error", "FAIL"))
        except ValueError as exc:
            said = f"frames.to('{model.conv_first.weight.device}')" in str(exc)
            rows.append(("upscale_window: CPU frames, model on " + str(device), str(exc)[:60], "pass" if said else "FAIL"))
    return rows


def time_window(model: torch.nn.Module, device: torch.device, h: int, w: int, runs: int) -> tuple[float, dict, float]:
    """(median seconds per window, seconds per stage in the last run, peak device memory in MB)."""
    x = torch.rand(1, 4, 3, h, w, generator=torch.Generator().manual_seed(0)).to(device)
    spent: dict[str, float] = {}
    started: dict[str, float] = {}

    def before(name):
        def hook(module, args):
            sync(device)
            started[name] = time.perf_counter()
        return hook

    def after(name):
        def hook(module, args, output):
            sync(device)
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - started[name]
        return hook

    handles = []
    for name in STAGES:
        module = model.get_submodule(name)
        handles += [module.register_forward_pre_hook(before(name)), module.register_forward_hook(after(name))]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    try:
        with torch.inference_mode():
            model(x)  # warm-up
            for _ in range(runs):
                spent.clear()
                sync(device)
                t = time.perf_counter()
                model(x)
                sync(device)
                times.append(time.perf_counter() - t)
    finally:
        for handle in handles:
            handle.remove()
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    return statistics.median(times), dict(spent), peak


ENGINE_TARGETS = {  # row name -> (backend, its runtime target for CUDA device index i, needs CUDA)
    "ort-cuda": ("onnxruntime", lambda i: OrtTarget(("CUDAExecutionProvider",), i, f"cuda:{i}"), True),
    "tensorrt": ("onnxruntime", lambda i: OrtTarget(("TensorrtExecutionProvider", "CUDAExecutionProvider"), i,
                                                    f"tensorrt:{i}"), True),
    "compile": ("compile", lambda i: None, False),
    "ort-cpu": ("onnxruntime", lambda i: OrtTarget(()), False),
    "openvino-cpu": ("openvino", lambda i: OpenVinoTarget("CPU"), False),
}


def engine_rows(args, device: torch.device, config: STDANConfig) -> list[str]:
    """Each engine in fp32 and fp16 against eager fp32 on fixture case b (or a seeded input of
    the first size with --small or without fixtures), and its time per window."""
    import tempfile

    from stdan_cli.upscalers.engines import BACKENDS, Placement, build_engine, relative_l2

    names = args.engines.split(",") if args.engines not in ("auto", "none") else []
    if args.engines == "auto" and device.type == "cuda":
        names = ["ort-cuda", "tensorrt", "compile"]
    if not names:
        return [f"| engines | - | skipped: no CUDA device ({device}); name them with --engines | | |"]
    case_b = args.fixtures / "parity_case_b.pt"
    h, w = (int(v) for v in args.sizes.split(",")[0].lower().split("x"))
    if args.small or not case_b.is_file():
        model = STDAN(config).eval()
        x = torch.rand(1, 4, 3, h, w, generator=torch.Generator().manual_seed(0))
    else:
        model = load_model(args.fixtures / "parity_weights_fp16.pt").model
        x = torch.load(case_b, weights_only=True)["input"]
    model = model.to(device)
    with torch.inference_mode():
        reference = upscale_window(model, x.to(device)).cpu()
    timed = torch.rand(1, 4, 3, h, w, generator=torch.Generator().manual_seed(1))
    lines = []
    with tempfile.TemporaryDirectory(prefix="stdan-gpu-check-") as cache:
        for name in names:
            backend, target, needs_cuda = ENGINE_TARGETS[name]
            for precision in ("fp32", "fp16"):
                if needs_cuda and device.type != "cuda":
                    lines.append(f"| {name} | {precision} | skipped: needs a CUDA device | | |")
                    continue
                if precision == "fp16" and device.type != "cuda":
                    lines.append(f"| {name} | {precision} | skipped: fp16 engines need a GPU | | |")
                    continue
                engine_device = device if backend == "compile" or needs_cuda else torch.device("cpu")
                placement = Placement(BACKENDS[backend], engine_device, target(device.index or 0), precision)
                try:
                    net = model if precision == "fp32" or backend != "compile" else \
                        use_low_precision_matmuls(copy.deepcopy(model), torch.float16)
                    engine = build_engine(placement, net, cache_dir=cache)
                    start = time.perf_counter()
                    with torch.inference_mode():
                        out = upscale_window(engine, x.to(engine_device)).cpu()  # prepares (exports, builds) first
                    prepare = time.perf_counter() - start
                    times = []
                    with torch.inference_mode():
                        for _ in range(args.runs + 1):
                            start = time.perf_counter()
                            upscale_window(engine, timed.to(engine_device))
                            sync(engine_device)
                            times.append(time.perf_counter() - start)
                    lines.append(f"| {name} | {precision} | {prepare:.1f} | {relative_l2(out, reference):.2e} | "
                                 f"{statistics.median(times[1:]):.3f} |")
                except Exception as exc:  # a missing provider or a failed build is a result, not a crash
                    lines.append(f"| {name} | {precision} | failed: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__} | | |")
    return lines


def device_line(device: torch.device) -> str:
    parts = [f"torch {torch.__version__}", f"python {platform.python_version()}", str(device)]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        parts += [props.name, f"compute {props.major}.{props.minor}", f"{props.total_memory / 2**30:.1f} GiB",
                  f"CUDA {torch.version.cuda}"]
    elif device.type == "cpu":
        parts += [platform.processor() or platform.machine(), f"{torch.get_num_threads()} threads"]
    return ", ".join(parts)


def check_training(device: torch.device, small: bool, iterations: int = 4) -> list[tuple[str, str, str]]:
    """The training loop's device paths: autocast bf16, fp16 with its GradScaler, fp32 (batch 2, crop 32)."""
    import tempfile

    import numpy as np

    from stdan_cli.training import load_recipe, train
    from stdan_cli.training.trainer import autocast_dtype

    class Septuplets:  # seeded random texture moving a pixel a frame
        def __len__(self):
            return 4

        def frames(self, index):
            base = np.random.default_rng(index).integers(0, 256, (128, 128, 3), dtype=np.uint8)
            return np.stack([np.roll(base, t, axis=1) for t in range(7)])

    rows = []
    recipe = load_recipe("small" if small else "official", iterations=iterations, batch_size=2, val_every=0,
                         log_every=1, save_every=iterations)
    for precision in ("bf16", "fp16", "fp32"):
        times, losses = [], []

        def on_step(step):
            sync(device)
            times.append(time.perf_counter())
            losses.append(step.loss)

        try:
            autocast_dtype(precision, device)
        except Exception as exc:  # a precision the device cannot train in: say why
            rows.append((f"training {precision}", "skipped", str(exc)))
            continue
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                train(recipe, Septuplets(), tmp, device=str(device), precision=precision, on_step=on_step)
        except Exception as exc:
            rows.append((f"training {precision}", str(exc).splitlines()[0], "FAIL"))
            continue
        per = statistics.median(b - a for a, b in zip(times, times[1:])) if len(times) > 1 else float("nan")
        peak = f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MB" if device.type == "cuda" else "n/a"
        ok = all(np.isfinite(losses))
        rows.append((f"training {precision} (batch 2, crop 32)", f"{per:.3f} s/iteration, peak {peak}",
                     "ok" if ok else "FAIL"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: %(default)s)")
    parser.add_argument("--sizes", default="64x112,128x224,272x480", help="LR window sizes HxW (default: %(default)s)")
    parser.add_argument("--precisions", default="fp32,bf16,fp16", help="timed precisions; those the device "
                        "cannot run are skipped with the reason (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up (default: %(default)s)")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="parity fixtures (default: %(default)s)")
    parser.add_argument("--small", action="store_true", help="time STDANConfig.small() instead of the official "
                        "configuration (a smoke test of this script)")
    parser.add_argument("--engines", default="auto", help="engine rows: auto (on CUDA: ort-cuda, tensorrt, "
                        "compile; elsewhere none), none, or a list of ort-cuda, tensorrt, compile, ort-cpu, "
                        "openvino-cpu (default: %(default)s)")
    parser.add_argument("--crop", type=int, default=None, metavar="PX", help="precision checks on the top-left "
                        "PX x PX of the fixture input (CPUs without native bf16/fp16 take minutes on the whole)")
    parser.add_argument("--train", action="store_true", help="check the training loop on a CPU too (always on GPUs)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    with tf32_allowed(False):  # the checks against the reference are fp32; the tf32 rows allow it themselves
        return report(args, device)


def report(args: argparse.Namespace, device: torch.device) -> int:
    """The checks' and timings' tables for ``device``; 1 when a parity check failed."""
    print(f"# stdan gpu_check\n\n{device_line(device)}\n")

    rows: list[tuple[str, str, str]] = []
    if (args.fixtures / "parity_case_a.pt").is_file():
        rows += check_parity(args.fixtures, device)
        rows += check_precisions(args.fixtures, device, args.crop)
    else:
        rows.append(("parity and precision checks", "skipped", f"no fixtures in {args.fixtures}"))
    rows += check_eval_records(device)
    if device.type != "cpu" or args.train:
        rows += check_training(device, args.small)
    print("| check | measure | result |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")

    config = STDANConfig.small() if args.small else STDANConfig()
    print(f"\n| input | precision | s/window | peak MB | {' | '.join(STAGES)} |")
    print("|---|---|---|---|" + "---|" * len(STAGES))
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.lower().split("x"))
        for name in args.precisions.split(","):
            try:
                precision = resolve_precision(name, device)
            except Exception as exc:
                print(f"| {h}x{w} | {name} | skipped: {exc} |")
                continue
            model = STDAN(config).eval().to(device)
            if precision.matmul_dtype is not None:
                use_low_precision_matmuls(model, precision.matmul_dtype)
            with tf32_allowed(precision.tf32):
                seconds, stages, peak = time_window(model, device, h, w, args.runs)
            print(f"| {h}x{w} | {precision.name} | {seconds:.3f} | {peak:.0f} | "
                  + " | ".join(f"{stages.get(s, 0.0):.3f}" for s in STAGES) + " |")
    print("\n| engine | precision | prepare s | rel. L2 vs eager fp32 (case b) | s/window |\n|---|---|---|---|---|")
    for line in engine_rows(args, device, config):
        print(line)
    failed = any(result == "FAIL" for _, _, result in rows)
    print("\nparity: " + ("FAILED" if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
