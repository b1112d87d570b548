"""Benchmark one STDAN window on this machine (official configuration).

    python benchmarks/bench_model.py [--sizes 64x112,128x224] [--precisions fp32,bf16] [--runs 3]

For each input size and precision, in a fresh subprocess (so peak RSS is that case's own):
warm-up, then the median of --runs forward passes of a (1, 4, 3, H, W) window. Also measures
the machine's fp32 and bf16 matmul GFLOP/s in the same run and prints
``ratio = time / (official GFLOP / matmul GFLOP/s)``: below 1 means faster than the official
network's arithmetic could run at the machine's matmul rate.

Weights: the parity fixture (official shapes) when ../shared/reference is present, else a
random initialisation (speed does not depend on the values).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO.parent / "shared" / "reference" / "parity_weights_fp16.pt"
# FLOPs of one official window (4 frames in, 7 out), as measured on the official code.
OFFICIAL_GFLOP = {(64, 112): 821.0, (128, 224): 3283.0}


def matmul_gflops(dtype: torch.dtype, n: int = 2048, runs: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / min(times) / 1e9


def run_case(h: int, w: int, precision: str, runs: int) -> dict:
    from stdan_cli.model import STDAN, load_model
    from stdan_cli.model.precision import use_low_precision_matmuls

    model = load_model(FIXTURE).model if FIXTURE.is_file() else STDAN().eval()
    if precision != "fp32":
        use_low_precision_matmuls(model, {"bf16": torch.bfloat16, "fp16": torch.float16}[precision])
    x = torch.rand(1, 4, 3, h, w, generator=torch.Generator().manual_seed(0))
    times = []
    with torch.inference_mode():
        model(x)  # warm-up
        for _ in range(runs):
            t = time.perf_counter()
            out = model(x)
            times.append(time.perf_counter() - t)
    seconds = statistics.median(times)
    return {
        "size": f"{h}x{w}",
        "precision": precision,
        "seconds": seconds,
        "all_seconds": times,
        "output_fps": out.shape[1] / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64x112,128x224", help="LR input sizes HxW (default: %(default)s)")
    parser.add_argument("--precisions", default="fp32,bf16", help="(default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this process
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.case:
        h, w, precision = args.case.split(":")
        print(json.dumps(run_case(int(h), int(w), precision, args.runs)))
        return

    gflops = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; weights: "
          f"{'parity fixture' if FIXTURE.is_file() else 'random init'}")
    print(f"matmul: fp32 {gflops['fp32']:.0f} GFLOP/s, bf16 {gflops['bf16']:.0f} GFLOP/s")
    print(f"{'input':>9} {'prec':>5} {'s/window':>9} {'out fps':>8} {'peak RSS':>9} {'ratio':>6}")
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.lower().split("x"))
        for precision in args.precisions.split(","):
            cmd = [sys.executable, __file__, "--case", f"{h}:{w}:{precision}", "--runs", str(args.runs)]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            official = OFFICIAL_GFLOP.get((h, w))
            rate = gflops["bf16" if precision != "fp32" else "fp32"]
            ratio = f"{res['seconds'] / (official / rate):6.2f}" if official else "   n/a"
            print(f"{size:>9} {precision:>5} {res['seconds']:9.2f} {res['output_fps']:8.2f} "
                  f"{res['peak_rss_mb']:7.0f}MB {ratio}")


if __name__ == "__main__":
    main()
