"""Chunks decoded from where they start: a ``--part`` task (or a Ray worker) seeks to its chunk's
first frame instead of decoding the input up to it, checks that it reached exactly that frame,
and falls back to decoding from the start (with a notice) where it cannot. Frames are compared
exactly with a one-process run through a lossless codec; the model is bicubic."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from job_runs import LOSSLESS, same_frames
from media import make_video
from scene_media import shots

from stdan_cli.api import upscale_video
from stdan_cli.cluster.parts import Part, PartExecutor
from stdan_cli.jobs import run_job
from stdan_cli.jobs.manifest import MANIFEST, read_manifest
from stdan_cli.pipeline import plan_upscale
from stdan_cli.pipeline.windows import WindowScheduler
from stdan_cli.upscalers import build_upscaler
from stdan_cli.video.decode import SeekMissed, VideoReader

GOP = 6  # frames from one keyframe to the next in the test clip
LOOKAHEAD = 8 + 2  # frames the decoding thread may run ahead (pipeline.background.prefetch), in hand on each side
H264_GOP = {"qp": "0", "g": str(GOP), "keyint_min": str(GOP), "bf": "2", "sc_threshold": "0"}


@pytest.fixture(scope="module")
def bicubic():
    return build_upscaler("bicubic")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """Three shots (cuts at 20 and 40), 48 frames at 32x16, H.264 with B-frames and a keyframe every 6 frames."""
    frames, _ = shots([20, 20, 8], size=(32, 16))
    return make_video(tmp_path_factory.mktemp("clip") / "in.mp4", frames=frames, size=(32, 16), options=H264_GOP)


def count_decoded(monkeypatch) -> list[int]:
    """The frames each VideoReader decodes (before any filter), appended when it closes."""
    counts: list[int] = []
    close = VideoReader.close

    def counting(self):
        counts.append(self._decoded_count)
        close(self)

    monkeypatch.setattr(VideoReader, "close", counting)
    return counts


def run_parts(clip: Path, out: Path, upscaler, options, n: int, monkeypatch, notify=lambda line: None):
    """Tasks 1..n of an array job, one after the other (task 1 plans), then the run that
    assembles. Returns the frames each task from 2 on decoded, the planned chunks and the
    assembling run's summary."""
    plan = plan_upscale(clip, out, upscaler.descriptor, options)
    run_job(plan, upscaler, PartExecutor(upscaler, Part(1, n)), notify=notify)
    counts = count_decoded(monkeypatch)
    decoded = []
    for k in range(2, n + 1):
        before = len(counts)
        assert run_job(plan, upscaler, PartExecutor(upscaler, Part(k, n)), notify=notify).made == 1
        decoded.append(sum(counts[before:]))
    chunks = read_manifest(out.with_name(f".{out.name}.stdan-job") / MANIFEST).chunks
    return decoded, chunks, upscale_video(clip, out, upscaler, options)


def test_the_scheduler_after_n_frames_is_the_one_n_pushes_leave():
    for window, stride in [(4, 3), (5, 2), (2, 1), (7, 6)]:
        pushed = WindowScheduler(window, stride)
        for n in range(0, 3 * window + 4):
            after = WindowScheduler.after(n, window, stride)
            assert (after.count, after.next_start, after.emitted) == (pushed.count, pushed.next_start, pushed.emitted)
            assert [i for i, _ in after.buffer] == [i for i, _ in pushed.buffer]
            pushed.push(n)


def test_frames_from_gives_exactly_the_frames_from_that_one_on(clip):
    with VideoReader(clip) as reader:
        every = list(reader.frames())
    for k in (0, 1, GOP - 1, GOP, 17, 29, len(every) - 1):
        with VideoReader(clip) as reader:
            got = list(reader.frames_from(every[k].pts))
            assert reader._decoded_count <= 1 + (len(every) - k) + GOP  # the first frame, then from a keyframe
        assert [(f.pts, f.duration) for f in got] == [(f.pts, f.duration) for f in every[k:]]
        assert all(torch.equal(a.rgb, b.rgb) for a, b in zip(got, every[k:]))
    with VideoReader(clip) as reader, pytest.raises(SeekMissed, match="no frame has the timestamp"):
        reader.frames_from(every[9].pts + 1)  # between two frames
    with VideoReader(clip, video_filter="hflip") as reader, pytest.raises(SeekMissed, match="--vf hflip"):
        reader.frames_from(every[9].pts)
    with VideoReader(clip, deinterlace="on") as reader, pytest.raises(SeekMissed, match="deinterlacing"):
        reader.frames_from(every[9].pts)


def test_a_late_part_decodes_only_from_near_its_chunk(tmp_path, clip, bicubic, monkeypatch):
    options = replace(LOSSLESS, chunk_frames=4)
    one = upscale_video(clip, tmp_path / "one.mkv", bicubic, options)
    n = one.chunks
    notes: list[str] = []
    decoded, chunks, summary = run_parts(clip, tmp_path / "out.mkv", bicubic, options, n, monkeypatch, notes.append)
    assert summary.resumed == n and not notes
    assert same_frames(tmp_path / "one.mkv", tmp_path / "out.mkv")
    assert n >= 10 and chunks[-1].first_frame >= 40
    for k, frames in enumerate(decoded, start=1):  # task k + 1 makes chunk k
        # its frames through the next chunk's first window, from the keyframe before, and frame 0
        # (read first for the input's facts), with the decoding thread's lookahead
        upto = chunks[k + 1].first_frame + options.window - 1 if k + 1 < n else 47
        assert frames <= 1 + (GOP - 1) + (upto - chunks[k].first_frame + 1) + LOOKAHEAD, (k, frames, chunks[k])
    assert decoded[-1] < chunks[-1].first_frame  # not every frame up to its chunk
