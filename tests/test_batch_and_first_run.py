"""Several videos in one command, and the first run that downloads the default weights."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from lavfi import ffprobe, lavfi_video, needs_ffmpeg, video
from media import make_video
from weights_server import sha256, small_checkpoint_bytes, small_state_dict

from stdan_cli.api.batch import check_batch, plan_batch, run_batch
from stdan_cli.cli import main
from stdan_cli.pipeline import UpscaleOptions
from stdan_cli.upscalers import build_upscaler


def upscale(*args):
    """The CLI, in a terminal wide enough for the summary table to keep each cell on one line."""
    return CliRunner(env={"COLUMNS": "400"}).invoke(main, ["upscale", *map(str, args)])


@needs_ffmpeg
def test_folder_to_folder_names_skips_and_overwrites(tmp_path):
    indir, outdir = tmp_path / "in", tmp_path / "out"
    indir.mkdir()
    lavfi_video(indir / "a.mp4", "16x12", 10, 3)
    lavfi_video(indir / "b.mkv", "16x12", 10, 2)
    lavfi_video(indir / "c.y4m", "16x12", 10, 2, "", ("-pix_fmt", "yuv420p"))  # no .y4m output: becomes .mkv
    (indir / "notes.txt").write_text("not a video")  # left out
    (indir / "damaged.mp4").write_bytes(b"\0" * 100)  # named like a video: it fails, visibly
    first = upscale(indir, outdir, "--model", "bicubic")
    assert first.exit_code == 1, first.output
    assert sorted(p.name for p in outdir.iterdir()) == ["a.mp4", "b.mkv", "c.mkv"]
    assert video(ffprobe(outdir / "a.mp4"))["width"] == 64
    assert f"1 file of {indir} is not video and left out: notes.txt" in first.output
    assert first.output.count("done") == 3 and first.output.count("failed") == 1

    before = (outdir / "a.mp4").stat().st_mtime_ns
    again = upscale(indir, outdir, "--model", "bicubic")
    assert again.exit_code == 1 and again.output.count("skipped") == 3
    assert (outdir / "a.mp4").stat().st_mtime_ns == before
    (indir / "damaged.mp4").unlink()
    forced = upscale(indir, outdir, "--model", "bicubic", "-y", "--ext", "mov")
    assert forced.exit_code == 0 and forced.output.count("done") == 3
    assert sorted(p.name for p in outdir.iterdir()) == ["a.mov", "a.mp4", "b.mkv", "b.mov", "c.mkv", "c.mov"]


def test_a_failing_file_does_not_stop_the_others(tmp_path):
    good = make_video(tmp_path / "good.mp4", n_frames=3)
    broken = tmp_path / "broken.mp4"
    broken.write_text("hello")
    result = upscale(broken, good, tmp_path / "missing.mp4", tmp_path / "out/", "--model", "bicubic")
    assert result.exit_code == 1
    assert (tmp_path / "out" / "good.mp4").exists()
    assert not (tmp_path / "out" / "broken.mp4").exists()
    assert result.output.count("failed") == 2 and result.output.count("done") == 1
    assert "not a media file" in result.output and "does not exist" in result.output
    assert "Traceback" not in result.output


def test_batch_api_reports_each_file(tmp_path):
    sources = [make_video(tmp_path / f"v{k}.mkv", n_frames=2) for k in range(2)]
    items, _ = plan_batch([str(s) for s in sources], tmp_path / "out", ext="mp4")
    items = check_batch(items, UpscaleOptions())
    started = []
    results = run_batch(items, build_upscaler("bicubic"), UpscaleOptions(), lambda i, item: started.append(i))
    assert started == [0, 1]
    assert [(r.status, r.item.output.name, r.summary.frames_out) for r in results] == [("done", "v0.mp4", 3),
                                                                                       ("done", "v1.mp4", 3)]


def test_the_batch_table_names_the_model_its_precision_and_weights(tmp_path, weights):
    sources = [make_video(tmp_path / f"v{k}.mkv", n_frames=2, size=(16, 8)) for k in range(2)]
    result = upscale(*sources, tmp_path / "out", "--weights", weights, "--precision", "fp32", "--threads", "1",
                     "--codec", "ffv1")
    assert result.exit_code == 0, result.output
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert (f"\nupscaled by stdan, fp32, weights {weights.name}, sha256 {digest[:12]}, not the official "
            "checkpoint\n") in result.output, result.output
    skipped = upscale(*sources, tmp_path / "out", "--weights", weights)  # nothing runs: no model is named
    assert skipped.exit_code == 0 and "skipped" in skipped.output and "upscaled by" not in skipped.output


def test_an_option_error_stops_the_batch_before_any_work(tmp_path):
    sources = [make_video(tmp_path / f"v{k}.mp4", n_frames=2) for k in range(2)]
    result = upscale(*sources, tmp_path / "out", "--model", "bicubic", "--crf", "99")
    assert result.exit_code == 2 and result.output.startswith("error: --crf 99 is out of range")
    assert not any((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_first_run_downloads_the_default_weights(weights_env, http_server, tmp_path):
    http_server.add("/drive-file", small_checkpoint_bytes())
    src = make_video(tmp_path / "in.mp4", n_frames=2, size=(16, 8))
    result = upscale(src, tmp_path / "out.mp4", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert (weights_env / "tiny.pth").is_file() and "wrote" in result.output
    assert [p.split("?")[0] for _, p, _ in http_server.requests] == ["/uc", "/download"]
    again = upscale(src, tmp_path / "out2.mp4", "--threads", "1")  # now cached: no request
    assert again.exit_code == 0 and len(http_server.requests) == 2
    # The summary names the weights used (issue 32): the registry's name and the file's sha256.
    digest = sha256(small_checkpoint_bytes())
    assert f"weights tiny, sha256 {digest[:12]};" in " ".join(again.output.split())


@pytest.mark.slow
def test_the_summary_says_when_the_weights_are_not_the_official_checkpoint(weights_env, tmp_path):
    sd = small_state_dict()
    sd["conv_last.bias"] = sd["conv_last.bias"] + 0.01  # a fine-tune of it, say
    mine = tmp_path / "mine.pth"
    torch.save(sd, mine)
    src = make_video(tmp_path / "in.mp4", n_frames=2, size=(16, 8))
    result = upscale(src, tmp_path / "out.mp4", "--threads", "1", "--weights", mine)
    assert result.exit_code == 0, result.output
    digest = hashlib.sha256(mine.read_bytes()).hexdigest()
    assert f"weights mine.pth, sha256 {digest[:12]}, not the official checkpoint" in " ".join(result.output.split())


@pytest.mark.parametrize("how", ["--offline", "HF_HUB_OFFLINE"])
def test_offline_keeps_the_message(weights_env, http_server, tmp_path, monkeypatch, how):
    http_server.add("/drive-file", small_checkpoint_bytes())
    src = make_video(tmp_path / "in.mp4", n_frames=2, size=(16, 8))
    args = [src, tmp_path / "out.mp4"]
    if how == "--offline":
        args.append("--offline")
    else:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = upscale(*args)
    assert result.exit_code != 0 and http_server.requests == []
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "no STDAN weights found" in lines[0] and "stdan download-weights" in lines[0]
    assert not (tmp_path / "out.mp4").exists()


@needs_ffmpeg
def test_the_files_left_out_of_a_folder_are_named(tmp_path):
    # Issue 32: "2 file(s) ... are not videos and were left out" named none of them.
    indir = tmp_path / "in"
    indir.mkdir()
    lavfi_video(indir / "clip.mp4", "16x12", 10, 2)
    for name in ("a.txt", "b.srt", "c.jpg.txt", "d.json", "e.log", "f.md", "g.csv"):
        (indir / name).write_text("not a video")
    items, notices = plan_batch([str(indir)], tmp_path / "out")
    assert [Path(i.input).name for i in items] == ["clip.mp4"]
    assert notices == [f"7 files of {indir} are not video and left out: a.txt, b.srt, c.jpg.txt, d.json, e.log "
                       "and 2 more"]
