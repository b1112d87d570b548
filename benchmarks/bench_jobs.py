"""Benchmark jobs: the cost of chunks against one pass, and memory as the input grows.

    python benchmarks/bench_jobs.py [--input bikes.mp4] [--seconds 2] [--size 160x68]
                                    [--chunk-frames 8] [--weights PATH] [--memory-seconds 2,5,10]

1. Wall time of ``stdan upscale`` on the input cut to --seconds and scaled to --size, with the
   STDAN model (default: random weights of the official configuration, saved to a temporary
   file; the time does not depend on the weights' values), once as one chunk and once in
   chunks of --chunk-frames input frames, in that order, with the same loaded model. Prints
   both wall times, the time inside the model, and chunked / one pass.
2. Peak RSS of whole runs (each in its own process, bicubic model, so that only the pipeline's
   own memory is measured) on the input at --size played in a loop for --memory-seconds
   seconds: it should not grow with the length.
3. With --parts N: the first and the last of N ``--part`` tasks of a long bicubic job, timed
   with the plan already published (task 2 plans it first, timed apart): a lavfi testsrc2 clip
   (one shot, FFmpeg's default keyframe every 250 frames) of --parts-seconds at --parts-size,
   in N chunks. Each task's seconds and the frames its decoders gave are printed, with the
   load average; --before TREE runs the same tasks with the stdan_cli of another checkout too
   (e.g. /work/main), in its own process with PYTHONPATH=TREE.

    python benchmarks/bench_jobs.py --skip-timing --memory-seconds "" --parts 16 --before /work/main
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_upscale import add_clip_arguments, clip_size, cut, peak_rss_mib, random_official_weights  # noqa: E402


def looped(src: Path, dst: Path, seconds: float, width: int, height: int) -> None:
    """``src`` scaled to width x height, played again and again until ``seconds`` long."""
    import av

    with av.open(str(src)) as inp:
        rate = inp.streams.video[0].average_rate
        frames = [f.reformat(width=width, height=height, format="yuv420p") for f in inp.decode(video=0)]
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = {"crf": "12"}
        stream.time_base = 1 / rate
        for k in range(round(seconds * rate)):
            frame = frames[k % len(frames)]
            frame.pts, frame.time_base = k, 1 / rate
            for p in stream.encode(frame):
                out.mux(p)
        for p in stream.encode(None):
            out.mux(p)


def timed_run(clip: Path, out: Path, upscaler, chunk_frames: int) -> dict:
    from stdan_cli.api import upscale_video
    from stdan_cli.pipeline import UpscaleOptions

    spent = [0.0]
    inner = upscaler.__call__

    class Timed:
        def __getattr__(self, name):
            return getattr(upscaler, name)

        def __call__(self, *args, **kwargs):
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - t

    started = time.perf_counter()
    summary = upscale_video(clip, out, Timed(), UpscaleOptions(overwrite=True, chunk_frames=chunk_frames))
    wall = time.perf_counter() - started
    return {"wall": wall, "model": spent[0], "chunks": summary.chunks, "scenes": summary.scenes,
            "frames_out": summary.frames_out}


def memory_child(clip: Path, out: Path) -> None:
    """Run one bicubic job and print its peak RSS (MiB) as JSON."""
    from stdan_cli.api import upscale_video
    from stdan_cli.pipeline import UpscaleOptions
    from stdan_cli.upscalers import build_upscaler

    summary = upscale_video(clip, out, build_upscaler("bicubic"), UpscaleOptions(overwrite=True))
    peak = peak_rss_mib()
    print(json.dumps({"frames_in": summary.frames_in, "chunks": summary.chunks, "peak_mib": peak}))


def long_testsrc(dst: Path, seconds: float, width: int, height: int) -> None:
    """A lavfi testsrc2 clip: one continuous shot (no cut), H.264 with FFmpeg's default GOP (250 frames)."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25",
                    "-t", f"{seconds:g}", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(dst)], check=True)


def parts_child(clip: Path, out: Path, n: int, chunk_frames: int) -> None:
    """With the stdan_cli on PYTHONPATH: task 2 of n plans (and makes its chunk), then tasks 1 and
    n are timed; one JSON line each (seconds, frames decoded, load average). Bicubic model."""
    from stdan_cli.cluster.parts import Part, PartExecutor
    from stdan_cli.jobs import run_job
    from stdan_cli.pipeline import UpscaleOptions, plan_upscale
    from stdan_cli.upscalers import build_upscaler
    from stdan_cli.video.decode import VideoReader

    counts: list[int] = []
    close = VideoReader.close

    def counting(self):
        counts.append(self._decoded_count)
        close(self)

    VideoReader.close = counting
    bicubic = build_upscaler("bicubic")
    plan = plan_upscale(clip, out, bicubic.descriptor, UpscaleOptions(chunk_frames=chunk_frames))
    for k in (2, 1, n):
        before, started = len(counts), time.perf_counter()
        s = run_job(plan, bicubic, PartExecutor(bicubic, Part(k, n)))
        print(json.dumps({"task": k, "seconds": time.perf_counter() - started, "decoded": sum(counts[before:]),
                          "chunks": s.chunks, "made": s.made, "frames_made": s.frames_made,
                          "load": os.getloadavg()[0]}), flush=True)


def time_parts(args, work: Path) -> None:
    width, height = (int(v) for v in args.parts_size.split("x"))
    clip = work / "long.mp4"
    long_testsrc(clip, args.parts_seconds, width, height)
    frames = round(args.parts_seconds * 25)
    chunk_frames = math.ceil(frames / args.parts) + 3  # N chunks (a chunk ends at a window start)
    print(f"--parts: testsrc2 {args.parts_seconds:g} s ({frames} frames) at {width}x{height}, bicubic, "
          f"{args.parts} tasks, --chunk-frames {chunk_frames}", flush=True)
    trees = ([("before", Path(args.before))] if args.before else []) + [("after", HERE.parent)]
    for label, tree in trees:
        out = work / f"parts-{label}.mp4"
        child = subprocess.run([sys.executable, __file__, "--parts-child", str(clip), str(out), str(args.parts),
                                str(chunk_frames)], capture_output=True, text=True,
                               env=dict(os.environ, PYTHONPATH=str(tree), HF_HUB_OFFLINE="1"))
        if child.returncode:
            raise SystemExit(child.stderr)
        for line in child.stdout.strip().splitlines():
            r = json.loads(line)
            role = {2: "plans (task 2)", 1: "first (task 1)"}.get(r["task"], f"last (task {args.parts})")
            print(f"{label:>6} {role:>16}: {r['seconds']:7.2f} s, {r['decoded']:6d} frames decoded, "
                  f"{r['made']} of {r['chunks']} chunks made ({r['frames_made']} frames), load average {r['load']:.1f}",
                  flush=True)
        shutil.rmtree(work / f".parts-{label}.mp4.stdan-job", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_clip_arguments(parser)
    parser.add_argument("--chunk-frames", type=int, default=8, help="(default: %(default)s)")
    parser.add_argument("--weights", default=None, help="(default: random weights, official configuration)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--memory-seconds", default="2,10,40", help="(default: %(default)s; empty: skip)")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--parts", type=int, default=0, help="time the first and last of N --part tasks (default: 0, skip)")
    parser.add_argument("--parts-seconds", type=float, default=180.0, help="(default: %(default)s)")
    parser.add_argument("--parts-size", default="160x96", help="(default: %(default)s)")
    parser.add_argument("--before", default=None, help="another checkout whose stdan_cli runs the --parts tasks too")
    parser.add_argument("--memory-child", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--parts-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        return memory_child(*args.memory_child)
    if args.parts_child:
        clip, out, n, chunk_frames = args.parts_child
        return parts_child(Path(clip), Path(out), int(n), int(chunk_frames))
    width, height = clip_size(parser, args)

    from stdan_cli.upscalers import build_upscaler

    work = Path(tempfile.mkdtemp(prefix="stdan-bench-jobs-"))
    if args.parts:
        time_parts(args, work)
    if not args.skip_timing:
        clip = work / "clip.mp4"
        cut(args.input, clip, args.seconds, width, height)
        weights = args.weights or random_official_weights(work)
        upscaler = build_upscaler("stdan", weights, "cpu", "fp32", args.threads)
        print(f"input: {args.input.name}, {args.seconds:g} s at {width}x{height}; STDAN official configuration, "
              f"{torch.get_num_threads()} threads", flush=True)
        results = []
        for name, chunk_frames in (("one pass", 10**9), (f"chunks of {args.chunk_frames}", args.chunk_frames)):
            r = timed_run(clip, work / "out.mp4", upscaler, chunk_frames=chunk_frames)
            results.append(r)
            print(f"{name:>16}: {r['chunks']:3d} chunk(s), {r['scenes']} scene(s), {r['frames_out']} frames  "
                  f"wall {r['wall']:8.1f} s  model {r['model']:8.1f} s  outside the model {r['wall'] - r['model']:6.2f} s",
                  flush=True)
        one, chunked = results
        print(f"chunked / one pass: wall {chunked['wall'] / one['wall']:.3f}, "
              f"outside the model {chunked['wall'] - chunked['model'] - (one['wall'] - one['model']):+.2f} s")

    lengths = [float(s) for s in args.memory_seconds.split(",") if s.strip()]
    for seconds in lengths:
        clip = work / f"mem{seconds:g}.mp4"
        looped(args.input, clip, seconds, width, height)
        child = subprocess.run([sys.executable, __file__, "--memory-child", str(clip), str(work / "mem-out.mp4")],
                               capture_output=True, text=True, check=True)
        r = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"memory: {seconds:g} s input ({r['frames_in']} frames, {r['chunks']} chunk(s), bicubic): "
              f"peak RSS {r['peak_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
