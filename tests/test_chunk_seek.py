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
from stdan_cli.video.decode import SeekMissed, VideoReader

GOP = 6  # frames from one keyframe to the next in the test clip
LOOKAHEAD = 8 + 2  # frames the decoding thread may run ahead (pipeline.background.prefetch), in hand on each side
H264_GOP = {"qp": "0", "g": str(GOP), "keyint_min": str(GOP), "bf": "2", "sc_threshold": "0"}


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
    assembles. Returns the frames each task from 2 on decoded and then those the assembling
    run decoded, the planned chunks and the assembling run's summary."""
    plan = plan_upscale(clip, out, upscaler.descriptor, options)
    run_job(plan, upscaler, PartExecutor(upscaler, Part(1, n)), notify=notify)
    counts = count_decoded(monkeypatch)
    decoded = []
    for k in range(2, n + 1):
        before = len(counts)
        assert run_job(plan, upscaler, PartExecutor(upscaler, Part(k, n)), notify=notify).made == 1
        decoded.append(sum(counts[before:]))
    chunks = read_manifest(out.with_name(f".{out.name}.stdan-job") / MANIFEST).chunks
    before = len(counts)
    summary = upscale_video(clip, out, upscaler, options)
    return decoded + [sum(counts[before:])], chunks, summary


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
    decoded, assembling = decoded[:-1], decoded[-1]
    assert assembling <= 1 and summary.frames_in == one.frames_in  # the plan is complete: only its probe of frame 0
    for k, frames in enumerate(decoded, start=1):  # task k + 1 makes chunk k
        # its frames through the next chunk's first window, from the keyframe before, and frame 0
        # (read first for the input's facts), with the decoding thread's lookahead
        upto = chunks[k + 1].first_frame + options.window - 1 if k + 1 < n else 47
        assert frames <= 1 + (GOP - 1) + (upto - chunks[k].first_frame + 1) + LOOKAHEAD, (k, frames, chunks[k])
    assert decoded[-1] < chunks[-1].first_frame  # not every frame up to its chunk


def test_a_seek_that_reaches_another_frame_falls_back_to_the_start(tmp_path, clip, bicubic, monkeypatch):
    frames_from = VideoReader.frames_from

    def one_frame_late(self, pts):  # a landing on the next frame, with its own valid timestamp
        frames = frames_from(self, pts)
        next(frames)
        return frames

    monkeypatch.setattr(VideoReader, "frames_from", one_frame_late)
    options = replace(LOSSLESS, chunk_frames=8)
    one = upscale_video(clip, tmp_path / "one.mkv", bicubic, options)
    notes: list[str] = []
    decoded, chunks, summary = run_parts(clip, tmp_path / "out.mkv", bicubic, options, one.chunks, monkeypatch,
                                         notes.append)
    assert len(notes) == one.chunks and all("decoding from the start of the input" in line for line in notes)
    assert f"no seek reaches chunk {one.chunks - 1} exactly: the frame the seek reached is not the planned" in notes[-1]
    assert decoded[-2] >= chunks[-1].first_frame  # from the start, after the failed seek
    assert same_frames(tmp_path / "one.mkv", tmp_path / "out.mkv")


def test_a_source_that_cannot_seek_falls_back_to_the_start(tmp_path, bicubic, monkeypatch):
    # a raw H.264 stream: no timestamps (repaired while planning) and no seeking
    frames, _ = shots([10, 8], size=(32, 16))
    raw = make_video(tmp_path / "in.h264", frames=frames, size=(32, 16), options=H264_GOP)
    with VideoReader(raw) as reader:
        first = next(reader.frames())
    with VideoReader(raw) as reader, pytest.raises(SeekMissed, match="cannot seek"):
        reader.frames_from(first.pts)
    options = replace(LOSSLESS, chunk_frames=4)
    one = upscale_video(raw, tmp_path / "one.mkv", bicubic, options)
    notes: list[str] = []
    _, _, summary = run_parts(raw, tmp_path / "out.mkv", bicubic, options, one.chunks, monkeypatch, notes.append)
    assert len(notes) == one.chunks and "the plan has no seek table (the input's timestamps were repaired" in notes[0]
    assert same_frames(tmp_path / "one.mkv", tmp_path / "out.mkv")


def test_an_image_sequence_seeks_exactly(tmp_path):
    frames, _ = shots([5, 4], size=(32, 16))
    for k, rgb in enumerate(frames):
        make_video(tmp_path / f"f{k:03d}.png", frames=[rgb], size=(32, 16), codec="png", pix_fmt="rgb24")
    pattern = str(tmp_path / "f%03d.png")
    with VideoReader(pattern) as reader:
        every = list(reader.frames())
    with VideoReader(pattern) as reader:
        got = list(reader.frames_from(every[6].pts))
        assert reader._decoded_count == 1 + 3  # frame 0 (the input's facts), then frames 6 to 8
    assert [f.pts for f in got] == [f.pts for f in every[6:]] and all(
        torch.equal(a.rgb, b.rgb) for a, b in zip(got, every[6:]))


def test_the_seek_table_is_read_back_strictly(tmp_path, clip, bicubic):
    import json

    from stdan_cli.jobs.manifest import Manifest
    from stdan_cli.jobs.strict_json import Damaged

    out = tmp_path / "out.mkv"
    plan = plan_upscale(clip, out, bicubic.descriptor, replace(LOSSLESS, chunk_frames=8))
    run_job(plan, bicubic, PartExecutor(bicubic, Part(1, 9)))
    data = json.loads((tmp_path / ".out.mkv.stdan-job" / MANIFEST).read_text())
    table = Manifest.from_data(data).seek
    assert table.cuts == (20, 40) and len(table.starts) == len(data["chunks"])
    assert [s.frame for s in table.starts] == [c["first_frame"] for c in data["chunks"]]
    for damage, message in [(lambda t: t["starts"].pop(), "does not describe the chunks"),
                            (lambda t: t["starts"][1].update(sha256="0" * 63), "not a digest"),
                            (lambda t: t.update(cuts=[40, 20]), "not increasing"),
                            (lambda t: t["starts"][2].update(frame=-1), "frame")]:
        bad = json.loads(json.dumps(data))
        damage(bad["seek"])
        with pytest.raises(Damaged, match=message):
            Manifest.from_data(bad)


@pytest.mark.slow
@pytest.mark.parametrize("settings", [
    dict(start=1.25, end=4.05),  # a range that starts inside a scene and a window
    dict(mode="space", start=0.9),
    dict(mode="slowmo", window=5, stride=2),
    dict(window=3, stride=1, scene_threshold=0),
])
def test_parts_made_from_seeks_give_the_frames_of_one_process(tmp_path, clip, bicubic, monkeypatch, settings):
    options = replace(LOSSLESS, chunk_frames=5, **settings)
    one = upscale_video(clip, tmp_path / "one.mkv", bicubic, options)
    notes: list[str] = []
    _, _, summary = run_parts(clip, tmp_path / "out.mkv", bicubic, options, one.chunks, monkeypatch, notes.append)
    assert not notes and summary.resumed == one.chunks and summary.frames_out == one.frames_out
    assert same_frames(tmp_path / "one.mkv", tmp_path / "out.mkv")


def test_tasks_started_together_plan_once(tmp_path, clip, bicubic, monkeypatch):
    """A task that finds another planning waits and takes its plan: it decodes only near its
    chunk, not the whole input to plan again."""
    import fcntl
    import threading

    from stdan_cli.cluster.parts import publish_plan
    from stdan_cli.jobs import Workspace, prepare_job
    from stdan_cli.jobs.runner import ChunkRunner, decode_and_plan
    from stdan_cli.jobs.workspace import MARKER

    out = tmp_path / "out.mkv"
    plan = plan_upscale(clip, out, bicubic.descriptor, replace(LOSSLESS, chunk_frames=4))
    planning = prepare_job(plan, bicubic)
    space = Workspace(planning.work_dir, planning.chunk_format.extension, shared=True)
    counts: list[tuple[str, int]] = []
    close = VideoReader.close
    monkeypatch.setattr(VideoReader, "close",
                        lambda self: (counts.append((threading.current_thread().name, self._decoded_count)), close(self)))
    waiting = threading.Event()
    result = {}

    def task():
        def notify(line):
            if "waiting for its plan" in line:
                waiting.set()
        result["summary"] = run_job(plan, bicubic, PartExecutor(bicubic, Part(9, 9)), notify=notify)

    with open(space.dir / MARKER, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # this test plans: the task must wait for it
        thread = threading.Thread(target=task, name="task-9")
        thread.start()
        assert waiting.wait(60)
        decode_and_plan(planning, ChunkRunner(planning, space, None, wanted=lambda k: False))
        planning.manifest.planned = True
        publish_plan(planning, space)
    thread.join(120)
    space.close()
    summary = result["summary"]
    assert summary.made == 1 and summary.chunks == len(planning.manifest.chunks) >= 9
    task_decoded = sum(n for name, n in counts if name == "task-9")
    assert 0 < task_decoded < 48  # near its chunk only: less than the input's 48 frames a plan decodes


def test_the_assembling_run_makes_the_missing_chunks_from_their_first_frames(tmp_path, clip, bicubic):
    options = replace(LOSSLESS, chunk_frames=4)
    one = upscale_video(clip, tmp_path / "one.mkv", bicubic, options)
    out = tmp_path / "out.mkv"
    plan = plan_upscale(clip, out, bicubic.descriptor, options)
    made = run_job(plan, bicubic, PartExecutor(bicubic, Part(2, 3)))  # chunks 1, 4, 7...; the rest are missing
    notes: list[str] = []
    summary = upscale_video(clip, out, bicubic, options, notify=notes.append)  # runs of chunks 0, 2-3, 5-6...
    assert (summary.resumed, summary.made) == (made.made, one.chunks - made.made)
    assert not [line for line in notes if "decoding from the start" in line]
    assert summary.frames_in == one.frames_in
    assert same_frames(tmp_path / "one.mkv", out)
