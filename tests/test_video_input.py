"""Inputs as FFmpeg reads them: interlaced, damaged, with alpha, image sequences, URLs."""

from __future__ import annotations

import functools
import http.server
import threading

import numpy as np
import pytest
from click.testing import CliRunner
from lavfi import ffmpeg, ffprobe, lavfi_video, needs_ffmpeg, video

from stdan_cli.cli import main
from stdan_cli.video.decode import VideoReader

pytestmark = needs_ffmpeg


def cli(*args):
    return CliRunner().invoke(main, ["upscale", "--model", "bicubic", *map(str, args)])


def combing(rgb: np.ndarray, scale: int = 1) -> float:
    """Energy of alternate rows: the mean step between neighbouring rows over the mean step
    between rows two apart (the same field). Combed frames have neighbouring rows from
    different moments: about 2 here; progressive frames about 0.6. ``scale``: the frame was
    upscaled by this much, so it is box-averaged back first."""
    y = rgb.astype(np.float64).mean(axis=-1)
    if scale > 1:
        h, w = y.shape[0] // scale, y.shape[1] // scale
        y = y[: h * scale, : w * scale].reshape(h, scale, w, scale).mean(axis=(1, 3))
    return float(np.abs(y[1:] - y[:-1]).mean() / np.abs(y[2:] - y[:-2]).mean())


def frames_of(path, deinterlace="off"):
    with VideoReader(path, deinterlace=deinterlace) as reader:
        return [(f.rgb.permute(1, 2, 0).numpy() * 255) for f in reader.frames()]


@pytest.fixture(scope="module")
def interlaced(tmp_path_factory):
    """Top-field-first interlaced video of fast horizontal motion (fields 1/50 s apart)."""
    path = tmp_path_factory.mktemp("il") / "tff.mkv"
    lavfi_video(path, "96x64", 50, 6, "scroll=horizontal=0.1,tinterlace=interleave_top,setfield=tff",
                ("-c:v", "ffv1", "-field_order", "tt"))
    return path


def test_interlaced_input_is_deinterlaced_and_tagged_progressive(tmp_path, interlaced):
    assert video(ffprobe(interlaced))["field_order"] == "tt"
    before = [combing(f) for f in frames_of(interlaced)]
    assert min(before) > 1.5, before

    out, kept = tmp_path / "out.mkv", tmp_path / "combed.mkv"
    result = cli(interlaced, out, "--mode", "space", "--codec", "ffv1")
    assert result.exit_code == 0, result.output
    assert "input is interlaced: deinterlaced with bwdif" in result.output
    after = [combing(f, 4) for f in frames_of(out)]
    assert len(after) == 6 and max(after) < 0.8, after  # one frame per frame, combs gone
    assert video(ffprobe(out))["field_order"] == "progressive"

    result = cli(interlaced, kept, "--mode", "space", "--codec", "ffv1", "--deinterlace", "off")
    assert result.exit_code == 0 and "--deinterlace off" in result.output
    assert min(combing(f, 4) for f in frames_of(kept)) > 1.5  # the combs, magnified
    assert video(ffprobe(kept))["field_order"] == "progressive"


def test_progressive_input_is_left_alone(tmp_path):
    src = lavfi_video(tmp_path / "p.mkv", "32x24", 25, 3, "", ("-c:v", "ffv1"))
    with VideoReader(src) as reader:
        frames = list(reader.frames())
        assert not reader.info.interlaced and not reader.deinterlacing
        assert not any("interlace" in w for w in reader.warnings)
    assert len(frames) == 3


def _decoded_by_ffprobe(path) -> int:
    return int(video(ffprobe(path, "-count_frames"))["nb_read_frames"])


def test_every_frame_ffmpeg_decodes_from_a_cut_mp4_is_used(tmp_path):
    full = lavfi_video(tmp_path / "full.mp4", "160x120", 25, 30, "",
                       ("-c:v", "libx264", "-bf", "2", "-movflags", "+faststart"))
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    expected = _decoded_by_ffprobe(cut)
    assert 5 < expected < 30
    result = cli(cut, tmp_path / "out.mkv", "--mode", "space", "--codec", "ffv1")
    assert result.exit_code == 0, result.output
    assert f"input ended early: {expected} of the 30 frames its header announces decoded" in result.output
    assert "damaged packet(s)" in result.output
    assert len(frames_of(tmp_path / "out.mkv")) == expected


@pytest.mark.parametrize("suffix, codec, announced", [
    (".mkv", ("-c:v", "ffv1"), "where its container announces 1.08 s (about 27 frames)"),
    (".webm", ("-c:v", "libvpx-vp9", "-crf", "4", "-b:v", "0", "-deadline", "realtime"),
     "where its container announces 1.08 s (about 27 frames)"),
    (".avi", ("-c:v", "ffv1"), "of the 27 frames its header announces"),
])
@pytest.mark.slow
def test_a_cut_file_of_any_container_says_it_ended_early(tmp_path, suffix, codec, announced):
    """FFmpeg's demuxers stop quietly at a cut. Matroska and WebM announce no frame count:
    their duration tells (27 frames at 25 fps: 1.08 s); AVI's header counts its frames."""
    full = lavfi_video(tmp_path / f"full{suffix}", "160x120", 25, 27, "", codec)
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) * 55 // 100])
    expected = _decoded_by_ffprobe(cut)
    assert 5 < expected < 27
    result = cli(cut, tmp_path / "out.mkv", "--mode", "space", "--codec", "ffv1")
    assert result.exit_code == 0, result.output
    assert f"input ended early: {expected} " in result.output and announced in result.output, result.output
    assert len(frames_of(tmp_path / "out.mkv")) == expected
    whole = cli(full, tmp_path / "whole.mkv", "--mode", "space", "--codec", "ffv1")
    assert whole.exit_code == 0 and "ended early" not in whole.output, whole.output


def test_transparency_dropped_with_a_notice(tmp_path):
    png = tmp_path / "a.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=16x12,format=rgba", "-frames:v", 1, png)
    result = cli(png, tmp_path / "o.mp4")
    assert result.exit_code == 0, result.output
    assert "input has transparency (rgba); it is dropped: the output is opaque" in result.output


def test_image_sequence_pattern(tmp_path):
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=16x12:r=10", "-frames:v", 3, tmp_path / "img%03d.png")
    assert (tmp_path / "img001.png").exists()
    result = cli(tmp_path / "img%03d.png", tmp_path / "o.mkv")
    assert result.exit_code == 0, result.output
    assert "5 frames 64x48" in result.output
    missing = cli(tmp_path / "none%03d.png", tmp_path / "o2.mkv")
    assert missing.exit_code != 0 and "none%03d.png does not exist" in missing.output


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path):
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_input_opens_as_ffmpeg_opens_it(http_root, tmp_path_factory):
    root, base = http_root
    lavfi_video(root / "clip.mp4", "32x24", 25, 3)
    out_dir = tmp_path_factory.mktemp("out")
    result = cli(f"{base}/clip.mp4", out_dir / "o.mp4")
    assert result.exit_code == 0, result.output
    assert "5 frames 128x96" in result.output
    missing = cli(f"{base}/none.mp4", out_dir / "o2.mp4")
    assert missing.exit_code != 0 and f"input {base}/none.mp4 is not reachable media" in missing.output
    assert len(missing.output.strip().splitlines()) == 1


def test_vf_that_drops_frames_is_not_taken_for_a_cut_file(tmp_path):
    # An MP4 announces how many frames it holds; --vf fps= lets fewer through, and those are
    # not missing from the file. A cut MP4 through the same filter still says it ended early.
    full = lavfi_video(tmp_path / "full.mp4", "160x120", 25, 30, "",
                       ("-c:v", "libx264", "-bf", "2", "-movflags", "+faststart"))
    with VideoReader(full, video_filter="fps=10") as reader:
        assert 10 <= len(list(reader.frames())) <= 13
        assert not any("ended early" in w for w in reader.warnings), reader.warnings
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    with VideoReader(cut, video_filter="fps=10") as reader:
        list(reader.frames())
        assert any("ended early" in w for w in reader.warnings), reader.warnings


def test_the_nominal_rate_is_the_exact_frame_rate_an_average_measures():
    from fractions import Fraction as F

    from stdan_cli.video.decode import nominal_rate

    assert nominal_rate(F(989, 33), F(30000, 1001), F(30000, 1001)) == F(30000, 1001)  # ms-rounded average
    assert nominal_rate(F(24), F(30000, 1001), None) == F(24)  # variable frame rate: the average
    assert nominal_rate(None, F(25), F(25)) == F(25)
    assert nominal_rate(None, None, None) == F(25)


@needs_ffmpeg
@pytest.mark.parametrize("name, codec", [("raw.h264", "libx264"), ("raw.m2v", "mpeg2video")])
def test_a_raw_stream_has_the_rate_its_codec_says(tmp_path, name, codec):
    # a raw elementary stream has no container times: FFmpeg's average is its default of 25
    from fractions import Fraction as F

    src = lavfi_video(tmp_path / name, "32x16", "30000/1001", 6, codec=("-c:v", codec))
    with VideoReader(src) as reader:
        assert reader.info.rate == F(30000, 1001)
