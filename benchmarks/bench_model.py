"""Benchmark one STDAN window on this machine (official configuration).

    python benchmarks/bench_model.py [--sizes 64x112,128x224] [--precisions fp32,bf16] [--runs 3] [--profile 15]
    python benchmarks/bench_model.py --sizes 64x112 --precisions fp32 --backends torch,compile --threads 2

For each input size and precision, in a fresh subprocess (so peak RSS is that case's own):
warm-up, then the median of --runs forward passes of a (1, 4, 3, H, W) window. Also measures
the machine's fp32 and bf16 matmul GFLOP/s in the same run and prints
``ratio = time / (official GFLOP / matmul GFLOP/s)``: below 1 means faster than the official
network's arithmetic could run at the machine's matmul rate. On a machine shared with other
work the rate changes from second to second, so each timed window is paired with the matmul
rate of its precision measured just before and just after it (their mean; the "matmul" column
is the median of those), and the ratio printed is the median of the windows' own ratios.

With ``--profile N``, each case also runs one more window under ``torch.profiler`` and prints
its N top operators by self CPU time (total seconds, calls, milliseconds a call): where the
time goes besides the matmuls. The profiled window is not among the timed ones.

``--precisions`` takes fp32, bf16, fp16 and auto (what ``--precision auto`` picks on this CPU).

``--backends torch,compile`` adds ``--backend compile`` rows (the network's repeated blocks
compiled, :mod:`stdan_cli.upscalers.engines.regional`), timed and rated the same way as the
eager rows, each case in a fresh process with a new, empty PyTorch compiled-code cache (so
compiling is measured, not read back). Below the table, per compile case: its preparation
(compiling, as ``stdan upscale`` prepares it before the run), the graphs compiled, the first
window at the timed size after it and the first window at ``--second-size`` (graphs compiled
by each: 0 when other sizes reuse the prepared graphs).

Weights: the parity fixture (official shapes) when ../shared/reference is present, else a
random initialisation (speed does not depend on the values).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO.parent / "shared" / "reference" / "parity_weights_fp16.pt"
# FLOPs of one official window (4 frames in, 7 out), as measured on the official code.
OFFICIAL_GFLOP = {(64, 112): 821.0, (128, 224): 3283.0}


def matmul_gflops(dtype: torch.dtype, n: int = 2048, runs: int = 5, pick=min) -> float:
    """GFLOP/s of an n x n matmul: ``pick`` (min: the best; statistics.median) of ``runs`` timings."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / pick(times) / 1e9


def profile_window(forward, x: torch.Tensor, top: int) -> list[dict]:
    """The ``top`` operators of one window by self CPU time: name, seconds, calls."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        forward(x)
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return [{"op": e.key, "seconds": e.self_cpu_time_total / 1e6, "calls": e.count} for e in rows]


def compiled_forward(model, precision: str, second: tuple[int, int], window: int = 4):
    """``--backend compile``'s engine for ``model``, prepared as ``stdan upscale`` prepares it,
    and what preparing and the first windows at a new size took."""
    from stdan_cli.model import upscale_window
    from stdan_cli.upscalers.engines import build_engine, place
    from stdan_cli.upscalers.engines.regional import compiled_graphs

    engine = build_engine(place("compile", "cpu", precision), model, torch.get_num_threads())
    graphs, t = compiled_graphs(), time.perf_counter()
    engine.prepare(window)
    info = {"prepare_s": time.perf_counter() - t, "prepared_graphs": compiled_graphs() - graphs}

    def forward(x: torch.Tensor) -> torch.Tensor:
        return upscale_window(engine, x)

    def first(key: str, x: torch.Tensor) -> None:
        graphs, t = compiled_graphs(), time.perf_counter()
        forward(x)
        info[key] = {"size": f"{x.shape[-2]}x{x.shape[-1]}", "seconds": time.perf_counter() - t,
                     "graphs": compiled_graphs() - graphs}

    def first_second_size() -> None:
        first("second_size", torch.rand(1, window, 3, *second, generator=torch.Generator().manual_seed(1)))

    return forward, info, first, first_second_size


def run_case(h: int, w: int, precision: str, runs: int, top: int = 0, backend: str = "torch",
             second: tuple[int, int] = (64, 128)) -> dict:
    from stdan_cli.model import STDAN, load_model
    from stdan_cli.model.precision import use_low_precision_matmuls

    model = load_model(FIXTURE).model if FIXTURE.is_file() else STDAN().eval()
    if precision == "auto":
        from stdan_cli.upscalers.device import resolve_precision

        precision = resolve_precision("auto", torch.device("cpu")).name
    if precision != "fp32":
        use_low_precision_matmuls(model, {"bf16": torch.bfloat16, "fp16": torch.float16}[precision])
    x = torch.rand(1, 4, 3, h, w, generator=torch.Generator().manual_seed(0))
    forward, compile_info = model, None
    if backend == "compile":
        forward, compile_info, first, first_second_size = compiled_forward(model, precision, second)
    dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    rate = lambda: matmul_gflops(dtype, runs=3, pick=statistics.median)  # noqa: E731
    with torch.inference_mode():
        if compile_info is not None:
            first("first_window", x)  # also the warm-up
        else:
            forward(x)  # warm-up
        times, rates = [], [rate()]
        for _ in range(runs):
            t = time.perf_counter()
            out = forward(x)
            times.append(time.perf_counter() - t)
            rates.append(rate())
        if compile_info is not None:
            first_second_size()
    seconds = statistics.median(times)
    around = [(before + after) / 2 for before, after in zip(rates, rates[1:])]  # each window's rate
    official = OFFICIAL_GFLOP.get((h, w))
    return {
        "size": f"{h}x{w}",
        "precision": precision,
        "backend": backend,
        "matmul_gflops": statistics.median(around),
        "ratio": statistics.median(t / (official / r) for t, r in zip(times, around)) if official else None,
        "profile": profile_window(forward, x, top) if top else [],
        "seconds": seconds,
        "all_seconds": times,
        "output_fps": out.shape[1] / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "compile": compile_info,
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64x112,128x224", help="LR input sizes HxW (default: %(default)s)")
    parser.add_argument("--precisions", default="fp32,bf16", help="(default: %(default)s)")
    parser.add_argument("--backends", default="torch",
                        help="torch (eager) and/or compile (--backend compile), comma-separated (default: %(default)s)")
    parser.add_argument("--second-size", default="64x128", metavar="HxW",
                        help="compile rows: the size of one more window after the timed ones, to show whether "
                             "another size compiles again (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also profile one window per case and print its N top operators by self CPU "
                             "time (default: %(default)s, no profile)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this process
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    second = tuple(int(v) for v in args.second_size.lower().split("x"))
    if args.case:
        h, w, precision, backend = args.case.split(":")
        print(json.dumps(run_case(int(h), int(w), precision, args.runs, args.profile, backend, second)))
        return

    backends = args.backends.split(",")
    shown_backend = backends != ["torch"]  # the eager-only table keeps its columns
    gflops = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; weights: "
          f"{'parity fixture' if FIXTURE.is_file() else 'random init'}; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"matmul: fp32 {gflops['fp32']:.0f} GFLOP/s, bf16 {gflops['bf16']:.0f} GFLOP/s")
    profiles, compiled = [], []
    backend_column = f" {'backend':>8}" if shown_backend else ""
    print(f"{'input':>9} {'prec':>9}{backend_column} {'s/window':>9} {'out fps':>8} {'peak RSS':>9} {'matmul':>7} "
          f"{'ratio':>6}" + (f" {'load':>5}" if shown_backend else ""))
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.lower().split("x"))
        for precision in args.precisions.split(","):
            for backend in backends:
                cmd = [sys.executable, __file__, "--case", f"{h}:{w}:{precision}:{backend}", "--runs", str(args.runs),
                       "--second-size", args.second_size]
                if args.threads:
                    cmd += ["--threads", str(args.threads)]
                if args.profile:
                    cmd += ["--profile", str(args.profile)]
                with tempfile.TemporaryDirectory() as inductor_cache:  # compile from scratch
                    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": inductor_cache}
                    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout)
                ratio = f"{res['ratio']:6.2f}" if res["ratio"] is not None else "   n/a"
                shown = precision if precision == res["precision"] else f"{precision}={res['precision']}"
                row = (f"{size:>9} {shown:>9}" + (f" {backend:>8}" if shown_backend else "")
                       + f" {res['seconds']:9.2f} {res['output_fps']:8.2f} {res['peak_rss_mb']:7.0f}MB "
                       f"{res['matmul_gflops']:7.0f} {ratio}")
                print(row + (f" {res['load_average'][0]:5.2f}" if shown_backend else ""), flush=True)
                # each case's raw result as it finishes, so a long run is never lost to a later failure
                print(json.dumps({k: v for k, v in res.items() if k != "profile"}), file=sys.stderr, flush=True)
                case = f"{size} {shown}" + (f" {backend}" if shown_backend else "")
                profiles.append((case, res["profile"]))
                if res["compile"]:
                    compiled.append((case, res["compile"]))
    for case, c in compiled:
        print(f"\n{case}: prepared (compiled) in {c['prepare_s']:.1f} s, {c['prepared_graphs']} graphs; "
              + "; ".join(f"first {c[k]['size']} window after it {c[k]['seconds']:.2f} s, {c[k]['graphs']} graphs "
                          "compiled" for k in ("first_window", "second_size")))
    for case, rows in profiles:
        if rows:
            print(f"\nprofile of one {case} window, top {len(rows)} operators by self CPU time:")
            print(f"{'operator':>36} {'self s':>7} {'calls':>7} {'ms/call':>8}")
            for r in rows:
                print(f"{r['op'][:36]:>36} {r['seconds']:7.3f} {r['calls']:7d} {1e3 * r['seconds'] / r['calls']:8.3f}")


if __name__ == "__main__":
    main()
