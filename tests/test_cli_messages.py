"""Messages a person reads (issue 22, item 7): scene cut times in the summary and --scenes-out
in the form --scenes reads, a --part merge summary, --weights with --model bicubic, the batch
table in a log, eval --ray's help."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from lavfi import ffprobe, lavfi_video, needs_ffmpeg, video
from media import make_video, read_frames
from scene_media import shots

from stdan_cli.cli import main
from stdan_cli.pipeline.scenes import read_scene_list

LOSSLESS_ARGS = ["--model", "bicubic", "--codec", "ffv1", "--pix-fmt", "yuv444p"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory):
    frames, cuts = shots([9, 8], size=(32, 24))  # a cut at frame 9: 0.9 s at 10 fps
    return make_video(tmp_path_factory.mktemp("cut") / "in.mkv", frames=frames, codec="ffv1", pix_fmt="yuv444p"), cuts


def test_summary_names_cut_times_and_scenes_out_is_what_scenes_reads(tmp_path, cut_clip):
    src, cuts = cut_clip
    found = tmp_path / "cuts.txt"
    first = invoke("upscale", src, tmp_path / "a.mkv", *LOSSLESS_ARGS, "--scenes-out", found)
    assert first.exit_code == 0, first.output
    assert "2 scenes, cut at 0:00.900" in first.output
    assert read_scene_list(found).frames == frozenset(cuts) == {9}
    # The file drives a second run to the same cuts.
    again = invoke("upscale", src, tmp_path / "b.mkv", *LOSSLESS_ARGS, "--scenes", found)
    assert again.exit_code == 0 and "2 scenes, cut at 0:00.900" in again.output
    (a, ta), (b, tb) = read_frames(tmp_path / "a.mkv"), read_frames(tmp_path / "b.mkv")
    assert ta == tb and all((x == y).all() for x, y in zip(a, b))


def test_part_merge_says_it_assembled_chunks_made_elsewhere(tmp_path, cut_clip):
    src, _ = cut_clip
    args = ["upscale", src, tmp_path / "o.mkv", *LOSSLESS_ARGS, "--chunk-frames", "3"]
    made = invoke(*args, "--part", "1/1")
    assert made.exit_code == 0, made.output
    merged = invoke(*args)
    assert merged.exit_code == 0, merged.output
    assert "assembled 6 chunks made by earlier runs or other tasks" in merged.output
    assert " fps upscaling" not in merged.output


def test_weights_with_bicubic_is_refused_in_one_line(tmp_path, cut_clip):
    src, _ = cut_clip
    result = invoke("upscale", src, tmp_path / "o.mkv", "--model", "bicubic", "--weights", "some.pth")
    assert result.exit_code != 0
    assert result.output.strip() == "error: --weights is for a model with weights (stdan); --model bicubic has none"
    assert not (tmp_path / "o.mkv").exists()


def test_batch_table_is_not_folded_in_a_log(tmp_path, cut_clip):
    src, _ = cut_clip
    long_name = "a-rather-long-file-name-that-a-narrow-table-would-fold-into-pieces-" * 2 + "x.mkv"
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / long_name).write_bytes(src.read_bytes())
    result = invoke("upscale", inputs, tmp_path / "out", *LOSSLESS_ARGS)
    assert result.exit_code == 0, result.output
    row = [line for line in result.output.splitlines() if long_name in line]
    assert len(row) == 1 and str(tmp_path / "out" / long_name) in row[0] and "done" in row[0]


def test_eval_ray_help_speaks_of_no_input_or_output():
    result = invoke("eval", "--help")
    ray_text = result.output[result.output.index("--ray"):]
    ray_text = ray_text[:ray_text.index("--ray-workers")]
    assert "INPUT" not in ray_text and "OUTPUT" not in ray_text and "ADDRESS is optional" in " ".join(ray_text.split())


@needs_ffmpeg
def test_a_29_97_input_with_millisecond_timestamps_is_made_and_summarised_at_59_94(tmp_path):
    # Issue 32: FLV (and Matroska) keep milliseconds, so a 29.97 fps input averages 989/33 fps;
    # the output was made at twice that average and summarised "at 59.9394 fps" (59.9101 on
    # shorter inputs) while the stream's frame rate is 60000/1001.
    src = lavfi_video(tmp_path / "in.flv", "32x24", "30000/1001", 40)
    out = tmp_path / "out.mp4"
    result = invoke("upscale", src, out, "--model", "bicubic")
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: 79 frames 128x96 (scale 4) at 59.94 fps from 40 frames" in result.output
    assert video(ffprobe(out))["r_frame_rate"] == "60000/1001"
