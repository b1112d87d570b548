"""Data safety: a run never deletes, overwrites, truncates or follows what it did not create.

Each test reproduces one way earlier versions destroyed or hung on a user's files (issue 20)
and checks that nothing outside what the run made is touched. Everything happens inside the
test's temporary folder; frames are tiny and the model is bicubic.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from folder_snapshot import snapshot
from media import InterruptAt, make_video, read_frames

import stdan_cli.jobs.assemble as assemble_module
from stdan_cli.api import upscale_video
from stdan_cli.cli import main
from stdan_cli.errors import JobInterrupted, OutputError, SceneFileError, WorkFolderError
from stdan_cli.jobs import Workspace
from stdan_cli.jobs.manifest import MANIFEST, record_name
from stdan_cli.jobs.strict_json import Damaged, parse
from stdan_cli.jobs.workspace import MARKER
from stdan_cli.pipeline import UpscaleOptions
from stdan_cli.pipeline.scene_list import read_scene_list
from stdan_cli.safe_files import create_exclusive, put_in_place
from stdan_cli.video.encoders import EncodeSettings

LOSSLESS = UpscaleOptions(encoding=EncodeSettings(codec="ffv1", pix_fmt="yuv444p"), chunk_frames=3)
BICUBIC = ["--model", "bicubic", "--codec", "ffv1", "--pix-fmt", "yuv444p"]


@pytest.fixture
def src(tmp_path) -> Path:
    return make_video(tmp_path / "in.mkv", n_frames=12, codec="ffv1", pix_fmt="yuv444p")


def interrupted_job(src: Path, out: Path, bicubic, options=LOSSLESS) -> Path:
    """Leave a job with done chunks in its work folder (returned)."""
    with pytest.raises(JobInterrupted):
        upscale_video(src, out, InterruptAt(bicubic, 4), options)
    work = Path(options.work_dir) if options.work_dir else out.with_name(f".{out.name}.stdan-job")
    assert len(list(work.glob("*.done.json"))) == 3
    return work


# --- the work folder is never someone else's ---------------------------------------------------


def test_work_dir_dot_keeps_every_file(tmp_path, src, monkeypatch):
    """`--work-dir .` used to delete the whole folder on success, the input and output included."""
    (tmp_path / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["upscale", "in.mkv", "out.mkv", *BICUBIC, "--work-dir", "."])
    assert result.exit_code == 1 and "not empty and was not made by stdan" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("restart", [False, True])
def test_a_foreign_folder_is_refused_and_untouched(tmp_path, src, bicubic, restart):
    """The input's folder, a home folder, any folder with files: refused, with --restart too."""
    other = tmp_path / "project"
    other.mkdir()
    (other / "edit.kdenlive").write_text("a day of work")
    (other / "chunk-000000.mkv").write_text("looks like ours, is not")
    (other / MANIFEST).write_text("{}")
    for folder in (other, tmp_path):
        before = snapshot(tmp_path)
        with pytest.raises(WorkFolderError, match="not empty and was not made by stdan"):
            upscale_video(src, tmp_path / "out.mkv", bicubic, replace(LOSSLESS, work_dir=folder, restart=restart))
        assert snapshot(tmp_path) == before


def test_an_empty_folder_is_used_and_left_as_it_was(tmp_path, src, bicubic):
    work = tmp_path / "empty"
    work.mkdir()
    upscale_video(src, tmp_path / "out.mkv", bicubic, replace(LOSSLESS, work_dir=work))
    assert work.is_dir() and list(work.iterdir()) == []  # the user made it: only our files went
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "in.mkv", "out.mkv"]


def test_success_and_restart_remove_only_the_jobs_files(tmp_path, src, bicubic):
    """A file a user put into the job's own folder survives --restart and success."""
    out = tmp_path / "out.mkv"
    work = interrupted_job(src, out, bicubic)
    (work / "mine.txt").write_text("keep me")
    (work / "chunk-notes.txt").write_text("keep me too")
    upscale_video(src, out, bicubic, replace(LOSSLESS, restart=True))
    assert sorted(p.name for p in work.iterdir()) == ["chunk-notes.txt", "mine.txt"]
    assert (work / "mine.txt").read_text() == "keep me" and out.exists()


def test_a_work_folder_that_is_a_link_is_not_followed(tmp_path, src, bicubic):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "precious.tmp").write_text("not a temporary file of ours")
    (target / "chunk-000000.mkv").write_text("x")
    out = tmp_path / "out.mkv"
    out.with_name(f".{out.name}.stdan-job").symlink_to(target, target_is_directory=True)
    before = snapshot(tmp_path)
    for restart in (False, True):
        with pytest.raises(WorkFolderError, match="symbolic link"):
            upscale_video(src, out, bicubic, replace(LOSSLESS, restart=restart))
        assert snapshot(tmp_path) == before


def test_a_lock_that_is_a_link_or_a_pipe_is_refused_without_waiting(tmp_path, src, bicubic):
    work = interrupted_job(src, tmp_path / "out.mkv", bicubic)
    (work / "lock").unlink()
    (work / "lock").symlink_to(tmp_path / "created-elsewhere")
    with pytest.raises(WorkFolderError, match="lock .* not a regular file"):
        upscale_video(src, tmp_path / "out.mkv", bicubic, LOSSLESS)
    assert not (tmp_path / "created-elsewhere").exists()
    (work / "lock").unlink()
    os.mkfifo(work / "lock")
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(_error_of(Workspace, work, ".mkv")), daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "opening a FIFO lock blocked"
    assert isinstance(outcome[0], WorkFolderError)


def _error_of(fn, *args):
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - returned to the test
        return exc
    return None


# --- paths and numbers read back are derived and checked ---------------------------------------


@pytest.mark.parametrize("name", ["../victim.txt", "ABSOLUTE", "chunk-000001.mkv"])
def test_a_record_naming_another_file_is_redone_and_nothing_else_is_touched(tmp_path, src, bicubic, name):
    """A done record's "file" used to be a path: '../victim.txt' or an absolute path made a resume
    delete that file; another chunk's name with its sha256 was accepted (a frame short)."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out.mkv"
    upscale_video(src, tmp_path / "whole.mkv", bicubic, LOSSLESS)
    work = interrupted_job(src, out, bicubic)
    record_path = work / record_name(0)
    record = json.loads(record_path.read_text())
    other = json.loads((work / record_name(1)).read_text())
    record["file"] = str(victim) if name == "ABSOLUTE" else name
    if name == "chunk-000001.mkv":
        record.update(bytes=other["bytes"], sha256=other["sha256"])
    else:
        record.update(bytes=victim.stat().st_size)
    record_path.write_text(json.dumps(record))
    notes = []
    summary = upscale_video(src, out, bicubic, LOSSLESS, notify=notes.append)
    assert any("chunk 0 names another file" in n for n in notes), notes
    assert victim.read_text() == "precious"
    assert summary.resumed == 2 and read_frames(out)[1] == read_frames(tmp_path / "whole.mkv")[1]


@pytest.mark.parametrize("field,change", [("start", 5), ("end", -1), ("frames", -1)])
def test_a_shifted_record_is_redone_not_failed_on_forever(tmp_path, src, bicubic, field, change):
    out = tmp_path / "out.mkv"
    upscale_video(src, tmp_path / "whole.mkv", bicubic, LOSSLESS)
    work = interrupted_job(src, out, bicubic)
    record_path = work / record_name(1)
    record = json.loads(record_path.read_text())
    record[field] += change
    record_path.write_text(json.dumps(record))
    notes = []
    upscale_video(src, out, bicubic, LOSSLESS, notify=notes.append)
    assert any("chunk 1 does not agree with the plan" in n for n in notes), notes
    assert read_frames(out)[1] == read_frames(tmp_path / "whole.mkv")[1]


MANIFEST_DAMAGE = {
    "infinity": lambda m: m["chunks"][0].update(first_frame=float("inf")),
    "huge number": lambda m: m["chunks"][0].update(first_frame="HUGE"),
    "input is a list": lambda m: m.update(input=[]),
    "video is a list": lambda m: m.update(video=[1]),
    "planned is text": lambda m: m.update(planned="no"),
    "deep nesting": lambda m: m.update(options="DEEP"),
    "chunk is a number": lambda m: m["chunks"].__setitem__(0, 7),
}


@pytest.mark.parametrize("damage", list(MANIFEST_DAMAGE))
def test_a_damaged_manifest_is_one_line_and_restart_recovers(tmp_path, src, bicubic, damage):
    out = tmp_path / "out.mkv"
    work = interrupted_job(src, out, bicubic)
    manifest = json.loads((work / MANIFEST).read_text())
    MANIFEST_DAMAGE[damage](manifest)
    text = json.dumps(manifest).replace('"DEEP"', "[" * 100_000 + "]" * 100_000).replace('"HUGE"', "9" * 5000)
    (work / MANIFEST).write_text(text)
    result = CliRunner().invoke(main, ["upscale", str(src), str(out), *BICUBIC, "--chunk-frames", "3"])
    assert result.exit_code == 1 and "is damaged" in result.output and "--restart" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    again = CliRunner().invoke(main, ["upscale", str(src), str(out), *BICUBIC, "--chunk-frames", "3", "--restart"])
    assert again.exit_code == 0, again.output


def test_an_oversized_or_special_work_folder_file_is_damaged(tmp_path):
    from stdan_cli.jobs import strict_json

    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(strict_json.LIMIT + 1)
    with pytest.raises(Damaged, match="larger than"):
        strict_json.load(big)
    os.mkfifo(tmp_path / "pipe.json")
    with pytest.raises(Damaged, match="not a regular file"):
        strict_json.load(tmp_path / "pipe.json")
    for text in (b"NaN", b"[1e999]", b'{"a": -Infinity}', b"\xff"):
        with pytest.raises(Damaged):
            parse(text)


def test_a_corrupt_record_is_redone(tmp_path, src, bicubic):
    out = tmp_path / "out.mkv"
    work = interrupted_job(src, out, bicubic)
    (work / record_name(2)).write_text('{"chunk": {"index": 2}, "file": []}')
    notes = []
    summary = upscale_video(src, out, bicubic, LOSSLESS, notify=notes.append)
    assert any("chunk 2 has a corrupt record" in n for n in notes) and summary.resumed == 2


# --- temporary files and the output -------------------------------------------------------------


def test_links_at_the_old_fixed_temporary_names_are_never_written_through(tmp_path, src, bicubic):
    """Earlier versions wrote '.NAME.stdan-partial.EXT' and 'chunk-NNNNNN.EXT.tmp' by fixed names,
    following a link there (and truncating its target). Names are random now."""
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"precious")
    out = tmp_path / "out.mkv"
    (tmp_path / ".out.stdan-partial.mkv").symlink_to(victim)
    work = interrupted_job(src, out, bicubic)
    for k in range(6):
        (work / f"chunk-{k:06d}.mkv.tmp").symlink_to(victim)
    upscale_video(src, out, bicubic, LOSSLESS)
    assert victim.read_bytes() == b"precious"
    assert out.is_file() and not out.is_symlink()


def test_output_link_is_replaced_by_a_file_with_overwrite_and_its_target_kept(tmp_path, src, bicubic):
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"precious")
    out = tmp_path / "out.mkv"
    out.symlink_to(victim)
    with pytest.raises(OutputError, match="already exists"):
        upscale_video(src, out, bicubic, LOSSLESS)
    upscale_video(src, out, bicubic, replace(LOSSLESS, overwrite=True))
    assert victim.read_bytes() == b"precious" and out.is_file() and not out.is_symlink()


def test_an_output_that_appears_during_the_run_is_not_replaced(tmp_path, src, bicubic):
    out = tmp_path / "out.mkv"

    class WritesTheOutput:
        def __getattr__(self, name):
            return getattr(bicubic, name)

        def __call__(self, *args, **kwargs):
            if not out.exists():
                out.write_text("someone else's file")
            return bicubic(*args, **kwargs)

    with pytest.raises(OutputError, match="appeared during the run.*-y"):
        upscale_video(src, out, WritesTheOutput(), LOSSLESS)
    assert out.read_text() == "someone else's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.mkv.stdan-job", "in.mkv", "out.mkv"]  # chunks kept


def test_temporary_names_are_random_and_created_exclusively(tmp_path):
    names = {create_exclusive(tmp_path, "out.mp4").name for _ in range(20)}
    assert len(names) == 20 and all(n.startswith(".out.mp4.") and n.endswith(".tmp") for n in names)
    temp = create_exclusive(tmp_path, "x")
    (tmp_path / "taken").write_text("first")
    with pytest.raises(FileExistsError):
        put_in_place(temp, tmp_path / "taken", overwrite=False)
    assert (tmp_path / "taken").read_text() == "first"


# --- user files read with limits ----------------------------------------------------------------


def test_scenes_file_with_start_frame_in_a_comment_is_a_plain_list(tmp_path):
    listed = tmp_path / "cuts.txt"
    listed.write_text("# exported from a tool with a Start Frame column\n12\n0:01.5\n")
    scenes = read_scene_list(listed)
    assert scenes.frames == {12} and scenes.times == (1.5,)


def test_scenes_file_that_never_ends_or_is_a_pipe_is_refused(tmp_path):
    if os.path.exists("/dev/zero"):
        with pytest.raises(SceneFileError, match="not a regular file"):
            read_scene_list("/dev/zero")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(SceneFileError, match="not a regular file"):
        read_scene_list(tmp_path / "pipe")
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.truncate(17 * 2**20)
    with pytest.raises(SceneFileError, match="larger than"):
        read_scene_list(big)


def test_an_input_that_is_a_pipe_is_refused_in_one_line(tmp_path):
    os.mkfifo(tmp_path / "in.mkv")
    result = CliRunner().invoke(main, ["upscale", str(tmp_path / "in.mkv"), str(tmp_path / "out.mkv"), *BICUBIC])
    assert result.exit_code == 1 and "not a regular file" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


def test_help_says_how_to_name_a_file_that_starts_with_a_dash():
    result = CliRunner().invoke(main, ["upscale", "--help"])
    assert "put -- before" in " ".join(result.output.split())


def test_the_temporary_output_is_removed_when_the_assembly_fails(tmp_path, src, bicubic, monkeypatch):
    made = []

    def exclusive(folder, name):
        made.append(create_exclusive(folder, name))
        return made[-1]

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(assemble_module, "create_exclusive", exclusive)
        patch.setattr(assemble_module, "audit", fail)
        with pytest.raises(OutputError, match="No space left"):
            upscale_video(src, tmp_path / "out.mkv", bicubic, LOSSLESS)
    assert made and not made[0].exists()
    assert (tmp_path / ".out.mkv.stdan-job" / MARKER).exists()  # the chunks are kept to continue
