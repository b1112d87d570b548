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
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_clip_arguments(parser)
    parser.add_argument("--chunk-frames", type=int, default=8, help="(default: %(default)s)")
    parser.add_argument("--weights", default=None, help="(default: random weights, official configuration)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--memory-seconds", default="2,10,40", help="(default: %(default)s; empty: skip)")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--memory-child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        return memory_child(*args.memory_child)
    width, height = clip_size(parser, args)

    from stdan_cli.upscalers import build_upscaler

    work = Path(tempfile.mkdtemp(prefix="stdan-bench-jobs-"))
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
