"""What a job may remove, replace or mix: only names it recorded itself (issue 29).

A work folder's cleanup removes the chunks its manifest records, never a name that merely
looks like a chunk; a marker copied into another folder does not make that folder the tool's;
a batch plans every output before any work; ``--part`` tasks of two different jobs never mix
in one folder. Tiny clips, the bicubic model.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from lavfi import lavfi_video, needs_ffmpeg
from media import InterruptAt, make_video

from stdan_cli.api import upscale_video
from stdan_cli.cli import main
from stdan_cli.errors import JobInterrupted, WorkFolderError
from stdan_cli.jobs.manifest import MANIFEST
from stdan_cli.jobs.workspace import LOCK, MARKER
from stdan_cli.pipeline import UpscaleOptions
from stdan_cli.video.encoders import EncodeSettings

LOSSLESS = UpscaleOptions(encoding=EncodeSettings(codec="ffv1", pix_fmt="yuv444p"), chunk_frames=3)
USERS = {MANIFEST: "my notes", LOCK: "my lock", "chunk-000003.wav": "my audio", "chunk-123456.png": "my picture",
         ".manifest.json.0123456789abcdef.tmp": "my draft"}


@pytest.fixture
def src(tmp_path) -> Path:
    return make_video(tmp_path / "in.mkv", n_frames=12, codec="ffv1", pix_fmt="yuv444p")


def upscale(*args):
    return CliRunner(env={"COLUMNS": "400"}).invoke(main, ["upscale", *map(str, args)])


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def interrupted(src: Path, out: Path, bicubic, work: Path) -> None:
    """A job stopped with done chunks in ``work``."""
    with pytest.raises(JobInterrupted):
        upscale_video(src, out, InterruptAt(bicubic, 4), replace(LOSSLESS, work_dir=work))
    assert len(list(work.glob("*.done.json"))) == 3


# --- the work folder's cleanup ---------------------------------------------------------------


@needs_ffmpeg
@pytest.mark.parametrize("restart", [False, True])
def test_an_output_in_the_work_folder_is_refused_and_kept(tmp_path, restart):
    """`upscale in/chunk-000005.mp4 out/chunk-000005.mp4 --work-dir out` said "wrote" and left
    out/ empty: the cleanup took the output for a chunk. It is refused before anything is made;
    an output already there is kept."""
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    lavfi_video(tmp_path / "in" / "chunk-000005.mp4", "16x12", 10, 3)
    out = tmp_path / "out" / "chunk-000005.mp4"
    result = upscale(tmp_path / "in" / "chunk-000005.mp4", out, "--work-dir", tmp_path / "out", "--model", "bicubic",
                     *(["--restart"] if restart else []))
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: the work folder") and "would hold" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert list((tmp_path / "out").iterdir()) == []
    out.write_bytes(b"an earlier output")  # with -y too: refused, and the file stays
    again = upscale(tmp_path / "in" / "chunk-000005.mp4", out, "--work-dir", tmp_path / "out", "--model", "bicubic",
                    "-y")
    assert again.exit_code == 1 and len(again.output.strip().splitlines()) == 1, again.output
    assert contents(tmp_path / "out") == {"chunk-000005.mp4": b"an earlier output"}


def test_an_input_in_the_work_folder_is_refused(tmp_path, src, bicubic):
    """In a folder of the user's (no marker) and in the job's own folder: the input is never
    taken for a chunk."""
    work = tmp_path / "work"
    work.mkdir()
    inside = work / "chunk-000000.mkv"
    shutil.copyfile(src, inside)
    with pytest.raises(WorkFolderError, match="not empty and was not made by stdan"):
        upscale_video(inside, tmp_path / "out.mkv", bicubic, replace(LOSSLESS, work_dir=work))
    assert sorted(p.name for p in work.iterdir()) == ["chunk-000000.mkv"]
    ours = tmp_path / "ours"
    interrupted(src, tmp_path / "out.mkv", bicubic, ours)
    shutil.copyfile(src, ours / "chunk-000009.mkv")
    before = contents(ours)
    with pytest.raises(WorkFolderError, match="would hold"):
        upscale_video(ours / "chunk-000009.mkv", tmp_path / "out.mkv", bicubic,
                      replace(LOSSLESS, work_dir=ours, restart=True))
    assert contents(ours) == before


@pytest.mark.parametrize("restart", [False, True])
def test_a_copied_marker_does_not_make_a_folder_ours(tmp_path, src, bicubic, restart):
    """A user's folder holding a marker copied from a real work folder: --restart and success
    removed the user's manifest.json, lock, chunk-000003.wav, chunk-123456.png and a temporary-
    looking file. The marker names the folder it was made in, so this folder is refused, untouched."""
    real = tmp_path / "real"
    interrupted(src, tmp_path / "out.mkv", bicubic, real)
    mine = tmp_path / "mine"
    mine.mkdir()
    for name, text in USERS.items():
        (mine / name).write_text(text)
    shutil.copyfile(real / MARKER, mine / MARKER)
    before = contents(mine)
    with pytest.raises(WorkFolderError, match="made for another folder"):
        upscale_video(src, tmp_path / "out.mkv", bicubic, replace(LOSSLESS, work_dir=mine, restart=restart))
    assert contents(mine) == before and not (tmp_path / "out.mkv").exists()


def test_a_copied_work_folder_is_not_ours(tmp_path, src, bicubic):
    """A whole work folder copied elsewhere (its chunks and manifest too) is refused as well."""
    real = tmp_path / "real"
    interrupted(src, tmp_path / "out.mkv", bicubic, real)
    copy = tmp_path / "copy"
    shutil.copytree(real, copy)
    before = contents(copy)
    with pytest.raises(WorkFolderError, match="made for another folder"):
        upscale_video(src, tmp_path / "out.mkv", bicubic, replace(LOSSLESS, work_dir=copy, restart=True))
    assert contents(copy) == before
    upscale_video(src, tmp_path / "out.mkv", bicubic, replace(LOSSLESS, work_dir=real))  # the real one resumes
    assert not real.exists()


def test_restart_and_success_remove_only_recorded_chunks(tmp_path, src, bicubic):
    """Files named like chunks but not recorded (another extension, an index the job never
    planned) survive --restart and success in the job's own folder."""
    work, out = tmp_path / "work", tmp_path / "out.mkv"
    interrupted(src, out, bicubic, work)
    for name in ("chunk-000003.wav", "chunk-123456.png", "chunk-123456.mkv", "chunk-000001.MKV"):
        (work / name).write_text("mine")
    upscale_video(src, out, bicubic, replace(LOSSLESS, work_dir=work, restart=True))
    assert sorted(p.name for p in work.iterdir()) == ["chunk-000001.MKV", "chunk-000003.wav", "chunk-123456.mkv",
                                                      "chunk-123456.png"]
    assert out.exists()


def test_restart_removes_the_recorded_chunks_of_another_extension(tmp_path, src, bicubic):
    """--restart with an output of another extension removes the chunks the manifest recorded
    with theirs, and the folder is left empty at the end."""
    work = tmp_path / "work"
    interrupted(src, tmp_path / "out.mkv", bicubic, work)
    assert sorted(p.name for p in work.glob("chunk-*.mkv"))
    upscale_video(src, tmp_path / "out.mp4", bicubic, replace(LOSSLESS, work_dir=work, restart=True,
                                                              encoding=EncodeSettings()))
    assert not work.exists() and (tmp_path / "out.mp4").exists()


# --- a batch plans every output first ----------------------------------------------------------


@needs_ffmpeg
def test_a_batch_whose_output_is_another_items_input_is_refused(tmp_path):
    """`upscale clips/ clips/ -y` with a.flv and a.mkv replaced a.mkv by the upscale of a.flv,
    and the table said a.mkv was skipped. Refused before any work; nothing is written."""
    clips = tmp_path / "clips"
    clips.mkdir()
    lavfi_video(clips / "a.flv", "16x12", 10, 2)
    lavfi_video(clips / "a.mkv", "16x12", 10, 2)
    before = contents(clips)
    result = upscale(clips, clips, "-y", "--model", "bicubic")
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the output") and "would replace the input" in lines[0]
    assert contents(clips) == before


@needs_ffmpeg
def test_a_batch_where_two_inputs_share_an_output_is_refused(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    lavfi_video(tmp_path / "x" / "a.mp4", "16x12", 10, 2)
    lavfi_video(tmp_path / "y" / "a.mp4", "16x12", 10, 2)
    result = upscale(tmp_path / "x" / "a.mp4", tmp_path / "y" / "a.mp4", tmp_path / "out", "-y", "--model", "bicubic")
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "would both be written to" in lines[0]
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


# --- --part tasks compare the whole job -------------------------------------------------------


def test_part_tasks_of_two_jobs_in_one_folder_never_mix(tmp_path, bicubic):
    """Tasks of two different jobs (same size, rate and length; other content) given one
    --work-dir, both planning before either publishes: the plans' chunk tables agree, so the
    second used to take the first's manifest and the merged output mixed the two videos. The
    second is refused, naming what differs, and the first job's output holds its frames only."""
    import numpy as np
    from job_runs import same_frames

    from stdan_cli.cluster.parts import Part, PartExecutor, publish_plan
    from stdan_cli.errors import JobMismatch
    from stdan_cli.jobs import Workspace, prepare_job, run_job
    from stdan_cli.jobs.runner import ChunkRunner, decode_and_plan
    from stdan_cli.pipeline import plan_upscale

    rng = np.random.default_rng(0)
    clips = [make_video(tmp_path / f"{name}.mkv", n_frames=9, codec="ffv1", pix_fmt="yuv444p",
                        frames=[rng.integers(0, 256, (16, 24, 3), dtype=np.uint8) for _ in range(9)])
             for name in ("a", "b")]
    work, out = tmp_path / "shared-work", tmp_path / "out.mkv"
    options = replace(LOSSLESS, work_dir=work)
    plans = [plan_upscale(clip, out, bicubic.descriptor, options) for clip in clips]
    jobs = [prepare_job(plan, bicubic) for plan in plans]
    spaces = [Workspace(job.work_dir, job.chunk_format.extension, shared=True) for job in jobs]
    for job, space in zip(jobs, spaces):
        decode_and_plan(job, ChunkRunner(job, space, None, wanted=lambda k: False))
        job.manifest.planned = True
    assert jobs[0].manifest.chunks == jobs[1].manifest.chunks  # the plans alone cannot tell the jobs apart
    publish_plan(jobs[0], spaces[0])
    with pytest.raises(JobMismatch, match="belongs to another job, it differs in the input") as refused:
        publish_plan(jobs[1], spaces[1])
    assert "\n" not in str(refused.value) and "--restart (without --part)" in str(refused.value)
    for space in spaces:
        space.close()
    run_job(plans[0], bicubic, PartExecutor(bicubic, Part(1, 2)))
    with pytest.raises(JobMismatch, match="differs in the input"):  # a task of b started later: refused too
        run_job(plans[1], bicubic, PartExecutor(bicubic, Part(2, 2)))
    upscale_video(clips[0], out, bicubic, options)
    upscale_video(clips[0], tmp_path / "alone.mkv", bicubic, replace(LOSSLESS, work_dir=tmp_path / "alone"))
    assert same_frames(out, tmp_path / "alone.mkv")
