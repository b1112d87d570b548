"""stdan upscale end to end on tiny videos made in the tests (bicubic baseline unless noted)."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from media import grey_level, make_video, packets, read_frames

from stdan_cli.api import upscale_video
from stdan_cli.cli import main
from stdan_cli.pipeline import UpscaleOptions
from stdan_cli.upscalers import build_upscaler

FFPROBE = shutil.which("ffprobe")
needs_ffprobe = pytest.mark.skipif(FFPROBE is None, reason="ffprobe not installed (apt-get install ffmpeg)")


def ffprobe(path):
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-show_streams", "-show_format", "-count_frames", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)


def video_stream(info):
    return next(s for s in info["streams"] if s["codec_type"] == "video")


@pytest.mark.parametrize("n", [1, 2, 3, 4, 12])
def test_frame_count_order_and_size(tmp_path, bicubic, n):
    src = make_video(tmp_path / "in.mkv", n_frames=n, size=(21, 13), codec="ffv1", pix_fmt="yuv444p")  # odd size
    out = tmp_path / "out.mkv"
    summary = upscale_video(src, out, bicubic, UpscaleOptions(encoding=_ffv1()))
    assert summary.frames_out == 2 * n - 1
    frames, times = read_frames(out)
    assert len(frames) == 2 * n - 1 and frames[0].shape == (52, 84, 3)
    # Output 2k is frame k; 2k+1 lies between k and k+1 (the bicubic baseline averages them).
    for pos, f in enumerate(frames):
        k = pos // 2
        expected = grey_level(k) if pos % 2 == 0 else (grey_level(k) + grey_level(k + 1)) / 2
        assert abs(f.mean() - expected) <= 3, (pos, f.mean(), expected)  # steps are 16 apart
    assert times == pytest.approx([0.05 * p for p in range(2 * n - 1)], abs=1e-3)


def _ffv1(**kw):
    from stdan_cli.video.encoders import EncodeSettings

    return EncodeSettings(codec="ffv1", pix_fmt="yuv444p", **kw)


@needs_ffprobe
def test_rates_duration_audio_rotation_and_colour_tags(tmp_path, bicubic):
    colour = {"colorspace": 1, "color_range": 1, "color_primaries": 1, "color_trc": 1}
    src = make_video(tmp_path / "in.mp4", n_frames=10, size=(22, 14), audio=True, rotation=90, colour=colour)
    out = tmp_path / "out.mp4"
    upscale_video(src, out, bicubic)
    info, before = ffprobe(out), ffprobe(src)
    v = video_stream(info)
    assert (v["width"], v["height"]) == (88, 56)
    assert int(v["nb_read_frames"]) == 19 and v["r_frame_rate"] == "20/1"
    assert float(info["format"]["duration"]) == pytest.approx(float(before["format"]["duration"]), abs=0.03)
    assert float(v["duration"]) == pytest.approx(float(video_stream(before)["duration"]), abs=0.03)
    assert (v["color_space"], v["color_range"], v["color_primaries"], v["color_transfer"]) == ("bt709", "tv", "bt709", "bt709")
    assert any(sd.get("rotation") in (90, -90) for sd in v.get("side_data_list", []))
    # Audio: copied packet for packet, unchanged.
    assert packets(out, "audio") == packets(src, "audio") and packets(src, "audio")


def test_variable_frame_rate_keeps_times(tmp_path, bicubic):
    tb = Fraction(1, 1000)
    pts = [0, 100, 300, 350, 700]  # irregular gaps (ms)
    src = make_video(tmp_path / "vfr.mkv", n_frames=5, codec="ffv1", pix_fmt="yuv444p", pts=pts, time_base=tb)
    out = tmp_path / "out.mkv"
    upscale_video(src, out, bicubic, UpscaleOptions(encoding=_ffv1()))
    _, times = read_frames(out)
    expected = []
    for a, b in zip(pts, pts[1:]):
        expected += [a / 1000, (a + b) / 2000]
    expected.append(pts[-1] / 1000)
    assert times == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("matrix,full", [(1, False), (6, False), (1, True), (9, False)])
def test_colour_round_trip(tmp_path, bicubic, matrix, full):
    colours = np.array([[200, 30, 40], [20, 180, 60], [30, 60, 220], [128, 128, 128]], np.uint8)
    frames = [np.broadcast_to(c, (16, 24, 3)).copy() for c in colours]
    colour = {"colorspace": matrix, "color_range": 2 if full else 1}
    src = make_video(tmp_path / "in.mkv", frames=frames, codec="ffv1", pix_fmt="yuv444p", colour=colour)
    out = tmp_path / "out.mkv"
    upscale_video(src, out, bicubic, UpscaleOptions(mode="space", encoding=_ffv1()))
    got, _ = read_frames(out)
    assert len(got) == len(colours)  # zip() below would pass on an empty output
    for rgb, want in zip(got, colours):
        assert np.abs(rgb.reshape(-1, 3).mean(0) - want).max() <= 3, (rgb.reshape(-1, 3).mean(0), want)


def test_ten_bit_input_keeps_ten_bits(tmp_path, bicubic):
    src = make_video(tmp_path / "in10.mkv", n_frames=2, codec="ffv1", pix_fmt="yuv420p10le")
    out = tmp_path / "out.mkv"
    from stdan_cli.video.encoders import EncodeSettings

    upscale_video(src, out, bicubic, UpscaleOptions(encoding=EncodeSettings(codec="libx264")))
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.format.name == "yuv420p10le"


def test_modes(tmp_path, bicubic):
    src = make_video(tmp_path / "in.mp4", n_frames=6, audio=True)
    space = upscale_video(src, tmp_path / "space.mp4", bicubic, UpscaleOptions(mode="space"))
    assert space.frames_out == 6 and space.rate_out == 10
    slow = upscale_video(src, tmp_path / "slow.mp4", bicubic, UpscaleOptions(mode="slowmo"))
    assert slow.frames_out == 11 and slow.rate_out == 10
    assert any("audio" in n and "dropped" in n for n in slow.notices)
    assert packets(tmp_path / "slow.mp4", "audio") == []
    frames, times = read_frames(tmp_path / "slow.mp4")
    assert times == pytest.approx([0.1 * k for k in range(11)], abs=1e-3)


def test_space_mode_equals_the_input_times_of_spacetime(tmp_path):
    """--mode space computes only the outputs at the input times (the in-between frames are
    never decoded), and they are the same frames spacetime makes at those times; 7 frames
    give windows that overlap, so the shared-frame skip is exercised too."""
    torch.manual_seed(0)
    from stdan_cli.model import STDAN, STDANConfig

    weights = tmp_path / "small.pth"
    torch.save(STDAN(STDANConfig.small()).state_dict(), weights)
    upscaler = build_upscaler("stdan", weights=weights, device="cpu")
    calls = []
    original = type(upscaler).__call__

    def recording(self, frames, skip_outputs=0, cache_key=None, inputs_only=False, frame_indices=None):
        out = original(self, frames, skip_outputs, cache_key, inputs_only, frame_indices)
        calls.append((inputs_only, out.shape[1]))
        return out

    src = make_video(tmp_path / "in.mkv", n_frames=7, size=(20, 12), codec="ffv1", pix_fmt="yuv444p")
    type(upscaler).__call__ = recording
    try:
        both = upscale_video(src, tmp_path / "st.mkv", upscaler, UpscaleOptions(encoding=_ffv1()))
        space_calls = len(calls)
        space = upscale_video(src, tmp_path / "sp.mkv", upscaler, UpscaleOptions(mode="space", encoding=_ffv1()))
    finally:
        type(upscaler).__call__ = original
    assert both.frames_out == 13 and space.frames_out == 7
    assert all(not only for only, _ in calls[:space_calls]) and all(only for only, _ in calls[space_calls:])
    assert sum(n for _, n in calls[space_calls:]) == 7  # no in-between frame was computed
    st_frames, st_times = read_frames(tmp_path / "st.mkv")
    sp_frames, sp_times = read_frames(tmp_path / "sp.mkv")
    assert sp_times == pytest.approx(st_times[0::2], abs=1e-6)
    for a, b in zip(sp_frames, st_frames[0::2]):
        assert np.array_equal(a, b)


def test_missing_timestamps_are_repaired(tmp_path, bicubic):
    raw = tmp_path / "raw.h264"
    make_video(raw, n_frames=5)
    out = tmp_path / "out.mp4"
    summary = upscale_video(raw, out, bicubic)
    assert summary.frames_out == 9
    assert any("timestamp" in w for w in summary.warnings)


def test_truncated_input_gives_a_valid_output(tmp_path, bicubic):
    full = make_video(tmp_path / "full.ts", n_frames=30, size=(64, 48), options={"qp": "10"})
    data = full.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.mp4"
    summary = upscale_video(cut, out, bicubic)
    assert 0 < summary.frames_in < 30
    assert len(read_frames(out)[0]) == summary.frames_out == 2 * summary.frames_in - 1


def test_image_is_a_one_frame_video(tmp_path, bicubic):
    png = tmp_path / "still.png"
    with av.open(str(png), "w", format="image2") as c:
        s = c.add_stream("png")
        s.width, s.height, s.pix_fmt = 10, 6, "rgb24"
        frame = av.VideoFrame.from_ndarray(np.full((6, 10, 3), 90, np.uint8), format="rgb24")
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    out = tmp_path / "still.mp4"
    assert upscale_video(png, out, bicubic).frames_out == 1
    assert read_frames(out)[0][0].shape == (24, 40, 3)


def test_no_partial_output_after_an_error_mid_run(tmp_path, bicubic):
    src = make_video(tmp_path / "in.mp4", n_frames=12)
    out = tmp_path / "out.mp4"

    class Failing:
        name, precision, device, descriptor = "x", "fp32", bicubic.device, bicubic.descriptor
        notices, weights_sha256 = [], None
        calls = 0

        def reset(self):
            bicubic.reset()

        def __call__(self, frames, skip_outputs=0, cache_key=None, inputs_only=False, frame_indices=None):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt
            return bicubic(frames, skip_outputs, cache_key, inputs_only)

    with pytest.raises(KeyboardInterrupt):
        upscale_video(src, out, Failing())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_user_errors_are_one_line(tmp_path):
    runner = CliRunner()
    src = make_video(tmp_path / "in.mp4", n_frames=2)
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    audio_only = tmp_path / "a.wav"
    with av.open(str(audio_only), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        f = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        f.sample_rate = 8000
        for p in s.encode(f):
            c.mux(p)
    notmedia = tmp_path / "notes.mp4"
    notmedia.write_text("hello")
    fake_weights = tmp_path / "w.pth"
    torch.save({"weight": torch.zeros(2)}, fake_weights)
    cases = [
        ([str(tmp_path / "missing.mp4"), str(tmp_path / "o.mp4")], "does not exist"),
        ([str(notmedia), str(tmp_path / "o.mp4")], "not a media file"),
        ([str(audio_only), str(tmp_path / "o.mp4")], "no video stream"),
        ([str(src), str(existing)], "already exists"),
        ([str(src), str(tmp_path / "nodir" / "o.mp4")], "does not exist"),
        ([str(src), str(tmp_path / "o.mp4"), "--model", "bicubic", "--pix-fmt", "rgb24"], "cannot encode pixel format"),
        ([str(src), str(tmp_path / "o.webm"), "--model", "bicubic", "--codec", "libx264"], "cannot hold libx264"),
        ([str(src), str(tmp_path / "o.mp4"), "--weights", str(tmp_path / "none.pth")], "does not exist"),
        ([str(src), str(tmp_path / "o.mp4"), "--weights", str(fake_weights)], "not an STDAN checkpoint"),
        ([str(src), str(tmp_path / "o.mp4"), "--precision", "fp16", "--device", "cpu"], "needs a GPU"),
    ]
    for args, message in cases:
        result = runner.invoke(main, ["upscale", *args])
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
        assert not (tmp_path / "o.mp4").exists()
    assert existing.read_bytes() == b"keep me"



def test_cli_with_small_model_and_overwrite(tmp_path):
    torch.manual_seed(0)
    from stdan_cli.model import STDAN, STDANConfig

    weights = tmp_path / "small.pth"
    torch.save(STDAN(STDANConfig.small()).state_dict(), weights)
    src = make_video(tmp_path / "in.mp4", n_frames=5, size=(20, 12), audio=True)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    runner = CliRunner()
    result = runner.invoke(main, ["upscale", str(src), str(out), "--weights", str(weights), "-y", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "9 frames 80x48" in result.output
    assert len(read_frames(out)[0]) == 9
    quiet = runner.invoke(main, ["upscale", str(src), str(out), "--model", "bicubic", "-y", "-q"])
    assert quiet.exit_code == 0 and quiet.output == ""


@pytest.mark.slow
def test_tiled_equals_untiled_with_fixture_weights(reference_dir):
    from stdan_cli.pipeline.tiles import plan_tiles, upscale_tiles

    upscaler = build_upscaler("stdan", weights=reference_dir / "parity_weights_fp16.pt", device="cpu", precision="fp32")
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(4, 3, 12, 16, generator=g), size=(48, 64), mode="bilinear")
    whole = upscale_tiles(upscaler, x[None], plan_tiles(48, 64, None, 0), 0)
    overlap = upscaler.descriptor.tile_overlap
    tiles = plan_tiles(48, 64, 24, overlap)
    assert len(tiles) > 1
    tiled = upscale_tiles(upscaler, x[None], tiles, 0)
    assert (tiled - whole).abs().max() <= 1e-3


def test_audio_the_container_cannot_hold_is_re_encoded_with_a_notice(tmp_path, bicubic):
    src = make_video(tmp_path / "in.mp4", n_frames=3, audio=True)  # AAC audio
    out = tmp_path / "out.webm"  # WebM takes Opus/Vorbis only
    from stdan_cli.video.encoders import EncodeSettings

    summary = upscale_video(src, out, bicubic, UpscaleOptions(encoding=EncodeSettings(codec="libvpx-vp9")))
    assert any("audio" in n and "re-encoded to opus" in n and "cannot hold aac" in n for n in summary.notices)
    assert summary.frames_out == 5 and packets(out, "audio") != []
