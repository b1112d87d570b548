"""Every installed backend side by side: seconds per window, preparation, memory, accuracy.

    python benchmarks/bench_backends.py                       # official configuration, CPU
    python benchmarks/bench_backends.py --sizes 64x112 --backends torch,onnxruntime --cache /tmp/engines
    python benchmarks/bench_backends.py --device cuda          # ORT-CUDA (TensorRT first), compile with CUDA graphs

Each backend runs in its own process, so peak RSS is its own: preparation (exporting the ONNX
files into the engine cache, loading or compiling them; compile: compiling the repeated blocks,
with PyTorch's compiled-code cache kept in the engine cache; less when --cache already holds them)
and inference (one 4-frame window per size, the median of --runs after a warm-up). Outputs
are compared with eager PyTorch float32 on the same input (relative L2). Weights: the parity
fixtures' (deformable offsets not zero) when present, else seeded random official weights.
Run it on a quiet machine; the table says how many threads were used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

FIXTURE_WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "parity_weights_fp16.pt"
DEFAULT_BACKENDS = "torch,onnxruntime,openvino,compile"


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 10 ms)."""

    def __enter__(self):
        self.peak, self._stop = self._rss(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _rss() -> float:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except OSError:  # not Linux: the lifetime peak
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)

    def _sample(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def run_one(args) -> dict:
    """One backend in this process: prepare, then time each size; outputs saved for comparison."""
    from stdan_cli.model import load_model, upscale_window
    from stdan_cli.upscalers.engines import build_engine, place

    torch.set_num_threads(args.threads)
    placement = place(args.one, args.device, "fp32")
    model = load_model(args.weights, device=placement.device).model
    runner, prep = model, 0.0
    with PeakRSS() as prep_rss:
        if placement.backend.engine:
            runner = build_engine(placement, model, args.threads, args.cache)
            start = time.perf_counter()
            runner.prepare(4)  # compile: compiles the repeated blocks (a small window through them)
            prep = time.perf_counter() - start
    result = {"backend": args.one, "target": placement.target, "prepare_s": prep, "prepare_rss": prep_rss.peak,
              "sizes": {}}
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.split("x"))
        x = torch.rand(1, 4, 3, h, w, generator=torch.Generator().manual_seed(0))
        times = []
        with PeakRSS() as rss, torch.inference_mode():
            for i in range(args.runs + 1):
                start = time.perf_counter()
                out = upscale_window(runner, x.to(placement.device))
                if placement.device.type == "cuda":
                    torch.cuda.synchronize(placement.device)
                times.append(time.perf_counter() - start)
        torch.save(out.cpu(), Path(args.outputs) / f"{args.one}-{size}.pt")
        result["sizes"][size] = {"s": statistics.median(times[1:]), "first_s": times[0], "rss": rss.peak}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=DEFAULT_BACKENDS, help="(default: %(default)s; those not installed "
                        "are listed as such)")
    parser.add_argument("--device", default="cpu", help="--device for every backend (default: %(default)s)")
    parser.add_argument("--sizes", default="64x112,128x224", help="window sizes HxW (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=1, help="timed runs after a warm-up (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="(default: %(default)s)")
    parser.add_argument("--weights", type=Path, default=None, help="checkpoint (default: the fixtures' weights)")
    parser.add_argument("--cache", type=Path, default=None, help="engine cache (default: a new temporary folder, "
                        "so preparation is measured)")
    parser.add_argument("--limit", type=float, default=None, help="seconds one backend may take, preparation "
                        "included; one past it is listed as not finished (default: no limit)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--outputs", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args)))
        return 0
    with tempfile.TemporaryDirectory(prefix="stdan-bench-") as tmp:
        if args.weights is None:
            if FIXTURE_WEIGHTS.is_file():
                args.weights = FIXTURE_WEIGHTS
            else:
                from bench_upscale import random_official_weights

                args.weights = random_official_weights(Path(tmp))
        cache = args.cache or Path(tmp) / "engines"
        names = ["torch"] + [b for b in args.backends.split(",") if b != "torch"]
        rows = {}
        for name in names:
            cmd = [sys.executable, __file__, "--one", name, "--device", args.device, "--sizes", args.sizes,
                   "--runs", str(args.runs), "--threads", str(args.threads), "--weights", str(args.weights),
                   "--cache", str(cache), "--outputs", tmp]
            start = time.perf_counter()
            # PyTorch's compiled code is cached beside the engines, so a new --cache measures compiling
            env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache / "torchinductor")}
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.limit, env=env)
            except subprocess.TimeoutExpired:
                rows[name] = f"not finished within {args.limit:.0f} s"
                print(f"{name}: {rows[name]}", file=sys.stderr, flush=True)
                continue
            lines = done.stdout.strip().splitlines()
            if done.returncode != 0 or not lines:
                rows[name] = "failed: " + (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            else:
                rows[name] = json.loads(lines[-1])
            # Each backend's raw result as it finishes, so a long table is never lost to a later failure.
            print(f"{name} ({time.perf_counter() - start:.0f} s): {json.dumps(rows[name])}", file=sys.stderr, flush=True)
        print(f"\n{args.device}, {args.threads} threads, torch {torch.__version__}, weights {args.weights.name}\n")
        print("| backend | target | size | s/window | vs eager | first window s | prepare s | peak RSS prepare MB "
              "| peak RSS inference MB | rel. L2 vs eager |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, row in rows.items():
            if isinstance(row, str):
                print(f"| {name} | {row} |")
                continue
            for size, r in row["sizes"].items():
                from stdan_cli.upscalers.engines import relative_l2

                eager = rows["torch"]["sizes"][size] if isinstance(rows.get("torch"), dict) else None
                ref, out = (Path(tmp) / f"{n}-{size}.pt" for n in ("torch", name))
                err = f"{relative_l2(torch.load(out), torch.load(ref)):.2e}" if ref.exists() and out.exists() else "-"
                ratio = f"{eager['s'] / r['s']:.2f}x" if eager else "-"
                print(f"| {name} | {row['target']} | {size} | {r['s']:.2f} | {ratio} | {r['first_s']:.2f} | "
                      f"{row['prepare_s']:.1f} | {row['prepare_rss']:.0f} | {r['rss']:.0f} | {err} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
