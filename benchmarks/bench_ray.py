"""Benchmark ``--ray`` on one machine: two single-thread workers against one two-thread process.

    python benchmarks/bench_ray.py [--input bikes.mp4] [--seconds 2] [--size 160x68]
                                   [--chunk-frames 6] [--weights PATH]

1. Ray's start-up: ``ray.init(num_cpus=2)`` alone, then two workers started (each loading the
   model and receiving the input through the object store) until both answer.
2. STDAN (default: random weights of the official configuration, saved to a temporary file;
   the time does not depend on the weights' values) on the input cut to --seconds and scaled
   to --size, in chunks of --chunk-frames input frames: one process with 2 threads, then a
   local Ray cluster with 2 workers of 1 thread, both written losslessly (FFV1 in Matroska).
   Prints both wall times, the throughput ratio (one process / Ray: above 1, Ray is faster)
   and how many decoded values of the two outputs differ (docs/clusters.md promises none).
3. Ray's cost per chunk: the same input in chunks of 3 frames with the bicubic model (whose
   own work is negligible), one process against one Ray worker with the same 2 threads; the
   difference divided by the chunks (each Ray chunk decodes the input up to itself, travels
   back as bytes and is written by the driver).

The machine's load average is printed before and after: other work on shared cores skews
every number.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_upscale import add_clip_arguments, clip_size, cut, random_official_weights  # noqa: E402


def options(chunk_frames: int):
    """Lossless output, so that the comparison of the two runs' frames sees every code value."""
    from stdan_cli.pipeline import UpscaleOptions
    from stdan_cli.video.encoders import EncodeSettings

    return UpscaleOptions(overwrite=True, chunk_frames=chunk_frames, encoding=EncodeSettings(codec="ffv1"))


def local_run(clip: Path, out: Path, upscaler, chunk_frames: int):
    from stdan_cli.api import upscale_video

    started = time.perf_counter()
    summary = upscale_video(clip, out, upscaler, options(chunk_frames))
    return time.perf_counter() - started, summary


def ray_run(ray, clip: Path, out: Path, spec, layout, weights, chunk_frames: int):
    """(seconds to start the workers, seconds to run the job, summary)."""
    from stdan_cli.cluster import RayExecutor

    started = time.perf_counter()
    with RayExecutor(ray, clip, spec, layout, weights) as workers:
        ready = time.perf_counter()
        plan = workers.plan(clip, out, options(chunk_frames))
        summary = workers.run(plan)
        done = time.perf_counter()
    return ready - started, done - ready, summary


def frame_difference(a: Path, b: Path) -> str:
    """How the decoded frames of two outputs differ: counts, and the largest difference in code values."""
    import av
    import numpy as np

    def frames(path):
        with av.open(str(path)) as f:
            return [fr.to_ndarray(format="rgb24").astype(np.int16) for fr in f.decode(video=0)]

    fa, fb = frames(a), frames(b)
    if len(fa) != len(fb):
        return f"{len(fa)} frames against {len(fb)}"
    diffs = [np.abs(x - y) for x, y in zip(fa, fb)]
    changed = [int((d > 0).sum()) for d in diffs]
    return (f"{len(fa)} frames of {fa[0].size} values: {sum(c > 0 for c in changed)} frames differ, "
            f"{sum(changed)} values in all, largest difference {max(int(d.max()) for d in diffs)} code values")


def load() -> str:
    return "load average " + ", ".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_clip_arguments(parser)
    parser.add_argument("--chunk-frames", type=int, default=6, help="(default: %(default)s)")
    parser.add_argument("--weights", default=None, help="(default: random weights, official configuration)")
    args = parser.parse_args()
    width, height = clip_size(parser, args)

    import ray

    from stdan_cli.cluster import WorkerLayout, WorkerSpec
    from stdan_cli.upscalers import build_upscaler

    print(f"start: {load()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="stdan-bench-ray-"))
    clip = work / "clip.mp4"
    cut(args.input, clip, args.seconds, width, height)
    weights = args.weights or random_official_weights(work)

    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(HERE.parent)}})
    init = time.perf_counter() - t
    two = WorkerLayout(2, "cpu", 1, 1, 0)
    one_worker = WorkerLayout(1, "cpu", 2, 2, 0)

    # 2. STDAN: one process x 2 threads, then 2 Ray workers x 1 thread
    local = build_upscaler("stdan", weights, "cpu", "fp32", 2)
    wall_local, s_local = local_run(clip, work / "local.mkv", local, args.chunk_frames)
    del local
    print(f"one process x 2 threads: {wall_local:.1f} s, {s_local.frames_out} frames out, {s_local.chunks} chunks, "
          f"{s_local.frames_out / wall_local:.3f} fps; {load()}", flush=True)
    start_two, wall_ray, s_ray = ray_run(ray, clip, work / "ray.mkv", WorkerSpec("stdan", "cpu", "fp32", 1), two,
                                         weights, args.chunk_frames)
    print(f"Ray, 2 workers x 1 thread: {wall_ray:.1f} s ({s_ray.frames_out / wall_ray:.3f} fps), {s_ray.retried} "
          f"redone; {load()}", flush=True)

    # 3. Ray's cost per chunk, with a model that costs nothing
    bicubic = build_upscaler("bicubic", threads=2)
    wall_b, s_b = local_run(clip, work / "local-b.mkv", bicubic, 3)
    start_one, wall_rb, s_rb = ray_run(ray, clip, work / "ray-b.mkv", WorkerSpec("bicubic", "cpu", "fp32", 2),
                                       one_worker, None, 3)
    ray.shutdown()

    print(f"\ninput: {args.input.name}, {args.seconds:g} s at {width}x{height}; {s_local.frames_out} output frames, "
          f"{s_local.scenes} scene(s), {s_local.chunks} chunks of <= {args.chunk_frames} input frames; "
          f"STDAN official configuration, fp32, CPU")
    print(f"Ray start-up: ray.init(num_cpus=2) {init:.1f} s; 2 STDAN workers ready {start_two:.1f} s; "
          f"1 bicubic worker ready {start_one:.1f} s")
    print(f"one process x 2 threads : {wall_local:8.1f} s  {s_local.frames_out / wall_local:.3f} fps")
    print(f"Ray 2 workers x 1 thread: {wall_ray:8.1f} s  {s_ray.frames_out / wall_ray:.3f} fps  "
          f"(job only; start-up above)")
    print(f"frames, Ray against one process: {frame_difference(work / 'ray.mkv', work / 'local.mkv')}")
    print(f"throughput Ray / one process: {wall_local / wall_ray:.3f}; "
          f"with Ray's start-up: {wall_local / (init + start_two + wall_ray):.3f}")
    print(f"cost per chunk (bicubic, {s_b.chunks} chunks of 3 frames): one process {wall_b:.2f} s, "
          f"1 Ray worker x 2 threads {wall_rb:.2f} s -> {(wall_rb - wall_b) / s_b.chunks * 1000:.0f} ms per chunk")
    print(f"end: {load()}")


if __name__ == "__main__":
    main()
