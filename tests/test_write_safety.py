"""Every file the tool writes is written by one rule (issue 29): never a file the command reads,
never through a link, an existing file only with -y, a folder it fills only its own (new,
empty or marked); and every read of a user's or shared file is bounded and never blocks on a
pipe. Each test reproduces one way an earlier version lost data, wrote through a link or
hung, with --model bicubic, tiny clips and tiny datasets.

Pipes: a helper thread plays the other end of each FIFO for as long as the test runs, so a
version that opened one would not hang the suite but write into it or read nothing (and the
test's assertions say so).
"""

from __future__ import annotations

import io
import os
import threading
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from eval_data import make_vimeo
from folder_snapshot import snapshot
from media import make_video
from weights_server import small_checkpoint_bytes, small_state_dict

from stdan_cli.cli import main
from stdan_cli.errors import CheckpointError, DownloadError, OutputError
from stdan_cli.evaluation.images import read_rgb, write_png
from stdan_cli.model.loader import load_checkpoint_file
from stdan_cli.safe_files import claim_output, write_output
from stdan_cli.weights import download_weights

FAST = dict(quiet=True, retry_wait=0)
BICUBIC = ["--model", "bicubic", "--codec", "ffv1", "--pix-fmt", "yuv444p"]


@contextmanager
def other_end(fifo: Path, reads: bool):
    """Play the other end of ``fifo`` while the block runs: drain what is written to it
    (``reads``), or open it for writing and close it at once whenever someone reads it."""
    stop = threading.Event()

    def drain():
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            while not stop.is_set():
                try:
                    os.read(fd, 1 << 16)
                except BlockingIOError:
                    pass
                time.sleep(0.01)
        finally:
            os.close(fd)

    def feed_eof():
        while not stop.is_set():
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # no reader yet (ENXIO), or the FIFO was replaced
                pass
            time.sleep(0.01)

    thread = threading.Thread(target=drain if reads else feed_eof, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def one_error_line(result, *words: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert all(w in lines[0] for w in words), result.output


# --- the rule itself ---------------------------------------------------------------------------


def test_claim_output_refuses_read_files_links_pipes_and_existing_files(tmp_path):
    read = tmp_path / "in.txt"
    read.write_text("input")
    hard = tmp_path / "hard.txt"
    os.link(read, hard)
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "pipe")
    for path, overwrite, words in [(read, True, "reads"), (hard, True, "reads"), (dangling, False, "already exists"),
                                   (tmp_path / "pipe", True, "not a regular file"), (tmp_path, True, "directory"),
                                   (read, False, "reads"), (tmp_path / "no" / "x", False, "does not exist")]:
        with pytest.raises(OutputError, match=words):
            claim_output(path, [read], overwrite, what="--out")
    assert claim_output(tmp_path / "new.txt", [read]) == tmp_path / "new.txt"
    write_output(dangling, b"ours", overwrite=True)  # the link is replaced, its target not created
    assert not (tmp_path / "nowhere").exists() and dangling.read_bytes() == b"ours" and not dangling.is_symlink()


# --- eval --save-images (item 2) -----------------------------------------------------------------


@pytest.fixture
def vimeo(tmp_path) -> Path:
    root = tmp_path / "data"
    make_vimeo(root, 1, h=32, w=48)
    return root


def run_eval(root: Path, *extra: str):
    return CliRunner().invoke(main, ["eval", "--dataset", "vimeo-fast", "--data-root", str(root), "--limit", "1",
                                     "--model", "bicubic", "-q", *extra])


@pytest.mark.parametrize("where", ["sequences", ".", "sequences/00001", "link-to-sequences"])
def test_save_images_into_the_dataset_is_refused(tmp_path, vimeo, where):
    """--save-images DATA/sequences replaced every ground-truth frame with the model's output."""
    if where == "link-to-sequences":
        folder = tmp_path / "frames"
        folder.symlink_to(vimeo / "sequences")
    else:
        folder = vimeo / where
    before = snapshot(vimeo)
    result = run_eval(vimeo, "--save-images", str(folder))
    one_error_line(result, "overlaps the data")
    assert snapshot(vimeo) == before


def test_save_images_into_a_foreign_folder_is_refused(tmp_path, vimeo):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    result = run_eval(vimeo, "--save-images", str(folder))
    one_error_line(result, "not empty", "stdan-eval-images.json")
    assert snapshot(folder) == {"notes.txt": b"mine"}


def test_save_images_refills_its_own_folder_only_with_y_and_never_through_a_link(tmp_path, vimeo):
    folder = tmp_path / "frames"
    assert run_eval(vimeo, "--save-images", str(folder)).exit_code == 0
    frame = folder / "00001" / "0625" / "im1.png"
    assert frame.is_file() and (folder / "stdan-eval-images.json").is_file()
    one_error_line(run_eval(vimeo, "--save-images", str(folder)), "earlier run", "-y")
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    frame.unlink()
    frame.symlink_to(victim)
    result = run_eval(vimeo, "--save-images", str(folder), "-y")
    assert result.exit_code == 0, result.output
    assert victim.read_bytes() == b"precious" and frame.is_file() and not frame.is_symlink()


def test_write_png_replaces_a_link_and_never_writes_through_it(tmp_path):
    """write_png opened the name with a plain open(path, "wb"), writing through a link."""
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    frame = tmp_path / "im1.png"
    frame.symlink_to(victim)
    write_png(frame, np.zeros((8, 8, 3), np.uint8))
    assert victim.read_bytes() == b"precious" and not frame.is_symlink() and read_rgb(frame).shape == (8, 8, 3)


def test_save_images_never_writes_into_a_linked_clip_folder(tmp_path, vimeo):
    folder = tmp_path / "frames"
    assert run_eval(vimeo, "--save-images", str(folder)).exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for p in (folder / "00001").rglob("*.png"):
        p.unlink()
    (folder / "00001" / "0625").rmdir()
    (folder / "00001").rmdir()
    (folder / "00001").symlink_to(elsewhere)
    one_error_line(run_eval(vimeo, "--save-images", str(folder), "-y"), "link or not a folder")
    assert list(elsewhere.iterdir()) == []


# --- eval --json (item 3) ------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["list", "frame", "link-to-frame"])
@pytest.mark.parametrize("yes", [[], ["-y"]])
def test_json_never_replaces_a_file_the_run_reads(tmp_path, vimeo, what, yes):
    listed = tmp_path / "list.txt"
    listed.write_text("00001/0625\n")
    frame = vimeo / "sequences" / "00001" / "0625" / "im3.png"
    target = {"list": listed, "frame": frame, "link-to-frame": tmp_path / "scores.json"}[what]
    if what == "link-to-frame":
        target.symlink_to(frame)
    before = snapshot(tmp_path)
    result = run_eval(vimeo, "--list", str(listed), "--json", str(target), *yes)
    one_error_line(result, "--json", "reads")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("what", ["existing", "link", "dangling"])
def test_json_replaces_an_existing_name_only_with_y_and_never_through_a_link(tmp_path, vimeo, what):
    victim = tmp_path / "victim.txt"
    if what != "dangling":
        victim.write_text("precious")
    target = tmp_path / "scores.json"
    if what == "existing":
        target.write_text("an older result")
    else:
        target.symlink_to(victim)
    before = snapshot(tmp_path)
    one_error_line(run_eval(vimeo, "--json", str(target)), "already exists", "-y")
    assert snapshot(tmp_path) == before
    assert run_eval(vimeo, "--json", str(target), "-y").exit_code == 0
    assert target.is_file() and not target.is_symlink() and b'"means"' in target.read_bytes()
    assert (victim.read_text() == "precious") if what != "dangling" else not victim.exists()


def test_json_that_is_a_pipe_is_refused_before_the_run(tmp_path, vimeo):
    """A FIFO at --json hung after the whole run."""
    pipe = tmp_path / "scores.json"
    os.mkfifo(pipe)
    with other_end(pipe, reads=True):
        result = run_eval(vimeo, "--json", str(pipe))
    one_error_line(result, "not a regular file")
    assert pipe.is_fifo()


# --- eval --list is bounded and never blocks (item 12) -----------------------------------------------


def test_list_that_is_a_pipe_or_a_device_is_one_line(tmp_path, vimeo):
    pipe = tmp_path / "list.txt"
    os.mkfifo(pipe)
    with other_end(pipe, reads=False):
        one_error_line(run_eval(vimeo, "--list", str(pipe)), "clip list", "not a regular file")
    if os.path.exists("/dev/zero"):  # read without a limit, it ended as a misleading "out of memory"
        one_error_line(run_eval(vimeo, "--list", "/dev/zero"), "clip list", "not a regular file")


# --- --scenes-out (item 4) -----------------------------------------------------------------------


@pytest.fixture
def clip(tmp_path) -> Path:
    return make_video(tmp_path / "in.mkv", n_frames=6, codec="ffv1", pix_fmt="yuv444p")


@pytest.mark.parametrize("what", ["input", "scenes-file", "existing", "dangling-link", "pipe"])
def test_scenes_out_is_never_a_read_file_a_link_a_pipe_or_an_existing_file(tmp_path, clip, what):
    """--scenes-out in.mkv replaced the input with 112 bytes of text; notes.txt was replaced without -y."""
    scenes = tmp_path / "cuts.txt"
    scenes.write_text("0\n")
    target = {"input": clip, "scenes-file": scenes}.get(what, tmp_path / "notes.txt")
    if what == "existing":
        target.write_text("mine")
    elif what == "dangling-link":
        target.symlink_to(tmp_path / "nowhere.txt")
    elif what == "pipe":
        os.mkfifo(target)
    before = snapshot(tmp_path)
    yes = ["-y"] if what in ("input", "scenes-file", "pipe") else []
    result = CliRunner().invoke(main, ["upscale", str(clip), str(tmp_path / "out.mkv"), *BICUBIC, "-q",
                                       "--scenes", str(scenes), "--scenes-out", str(target), *yes])
    one_error_line(result, "--scenes-out")
    assert snapshot(tmp_path) == before  # refused before the run: not even a work folder


# --- upscale OUTPUT: a dangling link is refused before the run (item 12) ---------------------------


def test_a_dangling_link_as_output_is_refused_before_the_run(tmp_path, clip):
    out = tmp_path / "out.mkv"
    out.symlink_to(tmp_path / "nowhere.mkv")
    before = snapshot(tmp_path)
    result = CliRunner().invoke(main, ["upscale", str(clip), str(out), *BICUBIC, "-q"])
    one_error_line(result, "already exists", "symbolic link")
    assert snapshot(tmp_path) == before


# --- the weights cache (items 7 and 12) ----------------------------------------------------------


def test_a_pipe_at_the_recorded_digests_is_refused_without_waiting(weights_env, tmp_path):
    """A FIFO at the cache's recorded-sha256.json hung download-weights."""
    source = tmp_path / "by-hand.pth"
    source.write_bytes(small_checkpoint_bytes())
    weights_env.mkdir(parents=True)
    pipe = weights_env / "recorded-sha256.json"
    os.mkfifo(pipe)
    with other_end(pipe, reads=False), pytest.raises(DownloadError, match="recorded-sha256.json is not a regular file"):
        download_weights(from_file=source, **FAST)
    assert pipe.is_fifo() and not (weights_env / "tiny.pth").exists()


@pytest.mark.parametrize("own_name", [False, True])
def test_a_pipe_at_a_checkpoints_digest_file_is_refused_and_kept(weights_env, tmp_path, own_name):
    """A FIFO at the cache's ``tiny.pth.sha256`` was replaced by the digest file."""
    source = tmp_path / "by-hand.pth"
    source.write_bytes(small_checkpoint_bytes())
    folder = weights_env / "imported" if own_name else weights_env
    folder.mkdir(parents=True)
    pipe = folder / ("mine.pth.sha256" if own_name else "tiny.pth.sha256")
    os.mkfifo(pipe)
    before = snapshot(weights_env)
    with pytest.raises(OutputError, match=r"\.sha256 is not a regular file \(a pipe, a device or a folder\); remove it"):
        download_weights(name="mine" if own_name else None, from_file=source, force=own_name, **FAST)
    assert pipe.is_fifo() and snapshot(weights_env) == before


def test_importing_never_writes_through_a_link_at_the_part_or_the_target(weights_env, tmp_path):
    """shutil.copyfile wrote the import through a link at tiny.pth.part, then installed the link."""
    data = small_checkpoint_bytes()
    source = tmp_path / "by-hand.pth"
    source.write_bytes(data)
    weights_env.mkdir(parents=True)
    victims = [tmp_path / "victim-part", tmp_path / "victim-target"]
    for victim in victims:
        victim.write_bytes(b"precious")
    (weights_env / "tiny.pth.part").symlink_to(victims[0])
    (weights_env / "tiny.pth").symlink_to(victims[1])
    result = download_weights(from_file=source, **FAST)
    assert not result.already_present
    target = weights_env / "tiny.pth"
    assert target.is_file() and not target.is_symlink() and target.read_bytes() == data
    assert [v.read_bytes() for v in victims] == [b"precious", b"precious"]
    leftovers = [p.name for p in weights_env.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_importing_under_an_own_name_never_writes_through_a_link(weights_env, tmp_path):
    data = small_checkpoint_bytes()
    source = tmp_path / "by-hand.pth"
    source.write_bytes(data)
    imported = weights_env / "imported"
    imported.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (imported / "mine.pth.part").symlink_to(victim)
    download_weights("mine", from_file=source, force=True, **FAST)
    assert (imported / "mine.pth").read_bytes() == data and victim.read_bytes() == b"precious"


def test_a_download_never_writes_through_a_link_at_the_part(weights_env, http_server, tmp_path):
    url = http_server.add("/tiny.pth", small_checkpoint_bytes())
    weights_env.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (weights_env / "tiny.pth.part").symlink_to(victim)
    with pytest.raises(DownloadError, match="tiny.pth.part is not a regular file"):
        download_weights(url=url, **FAST)
    assert victim.read_bytes() == b"precious" and not (weights_env / "tiny.pth").exists()


# --- a checkpoint that inflates hugely is refused before torch.load (item 12) ------------------------


def zip_bomb(path: Path, inflated: int) -> Path:
    """A real small checkpoint with one more member: ``inflated`` zero bytes, deflated."""
    buffer = io.BytesIO()
    torch.save(small_state_dict(), buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
        prefix = src.infolist()[0].filename.split("/")[0]
        info = zipfile.ZipInfo(f"{prefix}/data/inflates")
        info.compress_type = zipfile.ZIP_DEFLATED
        with dst.open(info, "w", force_zip64=True) as member:
            zeros = bytes(1 << 20)
            for _ in range(inflated >> 20):
                member.write(zeros)
    return path


def test_a_zip_bomb_is_refused_before_torch_load(tmp_path, monkeypatch):
    """A 1 MB deflated checkpoint took 1.28 GB before it was refused."""
    bomb = zip_bomb(tmp_path / "bomb.pth", 96 << 20)
    assert bomb.stat().st_size - len(small_checkpoint_bytes()) < 1 << 20  # 96 MB declared in under 1 MB

    def no_load(*args, **kwargs):
        raise AssertionError("torch.load was reached")

    monkeypatch.setattr(torch, "load", no_load)
    with pytest.raises(CheckpointError, match="zip members would inflate to 104,[0-9,]* bytes"):
        load_checkpoint_file(bomb)
