"""The output is faithful to the source file: never written over it, same pixel aspect, same
metadata, HDR kept, any FFmpeg encoder, one-line refusals. Inputs come from ffmpeg's lavfi
sources; ffprobe judges the outputs."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction

import pytest
from click.testing import CliRunner
from lavfi import ffmpeg, ffprobe, first_frame_side_data, lavfi_video, needs_ffmpeg, video

from stdan_cli.api import upscale_video
from stdan_cli.cli import main
from stdan_cli.pipeline import UpscaleOptions
from stdan_cli.video.encoders import EncodeSettings

pytestmark = needs_ffmpeg


def cli(*args):
    return CliRunner().invoke(main, ["upscale", *map(str, args)])


def assert_one_line_error(result, *fragments):
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_never_writes_over_the_input_even_through_links(tmp_path):
    src = lavfi_video(tmp_path / "v.mp4")
    before = src.read_bytes()
    (tmp_path / "sym.mp4").symlink_to(src)
    os.link(src, tmp_path / "hard.mp4")
    for out in (src, tmp_path / "sym.mp4", tmp_path / "hard.mp4"):
        assert_one_line_error(cli(src, out, "-y", "--model", "bicubic"), "is the input file")
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.mp4", "sym.mp4", "v.mp4"]


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_pixel_aspect_ratio_is_kept(tmp_path, bicubic, ext):
    src = lavfi_video(tmp_path / f"in.{ext}", "72x48", 25, 2, "setsar=32/27")
    out = tmp_path / f"out.{ext}"
    upscale_video(src, out, bicubic, UpscaleOptions(mode="space"))
    before, after = video(ffprobe(src)), video(ffprobe(out))
    assert before["sample_aspect_ratio"] == "32:27" and before["display_aspect_ratio"] == "16:9"
    assert (after["width"], after["height"]) == (288, 192)
    assert after["sample_aspect_ratio"] == "32:27" and after["display_aspect_ratio"] == "16:9"


@pytest.fixture(scope="module")
def tagged_mkv(tmp_path_factory):
    """Video + three audio tracks (eng/fra/ger, titles, default/forced flags) + a Spanish
    subtitle, a file title, two chapters and a font attachment."""
    d = tmp_path_factory.mktemp("tagged")
    (d / "ch.txt").write_text(";FFMETADATA1\ntitle=My film\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=200\ntitle=One\n"
                              "[CHAPTER]\nTIMEBASE=1/1000\nSTART=200\nEND=400\ntitle=Two\n")
    (d / "sub.srt").write_text("1\n00:00:00,000 --> 00:00:00,300\nhola\n")
    (d / "font.ttf").write_bytes(b"not really a font")
    path = d / "tagged.mkv"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=32x24:r=10:d=0.4", "-f", "lavfi", "-i", "sine=f=440:d=0.4",
        "-f", "lavfi", "-i", "sine=f=550:d=0.4", "-f", "lavfi", "-i", "sine=f=660:d=0.4", "-i", d / "sub.srt",
        "-i", d / "ch.txt", "-map", "0", "-map", "1", "-map", "2", "-map", "3", "-map", "4", "-map_metadata", "5",
        "-map_chapters", "5", "-c:v", "libx264", "-c:a", "aac", "-c:s", "srt",
        "-metadata:s:v:0", "title=Picture",
        "-metadata:s:a:0", "language=eng", "-metadata:s:a:0", "title=English",
        "-metadata:s:a:1", "language=fra", "-metadata:s:a:1", "title=Français",
        "-metadata:s:a:2", "language=ger", "-metadata:s:a:2", "title=Kommentar",
        "-metadata:s:s:0", "language=spa", "-metadata:s:s:0", "title=Subtítulos",
        "-disposition:a:0", "default", "-disposition:a:1", "0", "-disposition:a:2", "0", "-disposition:s:0", "forced",
        "-attach", d / "font.ttf", "-metadata:s:t", "mimetype=font/ttf", path,
    )
    return path


def _identities(info):
    return [
        (s["codec_type"], s.get("tags", {}).get("language"), s.get("tags", {}).get("title"),
         s["disposition"]["default"], s["disposition"]["forced"])
        for s in info["streams"] if s["codec_type"] in ("video", "audio", "subtitle")
    ]


def test_mkv_keeps_languages_titles_dispositions_chapters_title_and_attachments(tmp_path, bicubic, tagged_mkv):
    out = tmp_path / "out.mkv"
    summary = upscale_video(tagged_mkv, out, bicubic, UpscaleOptions(mode="space"))
    before, after = ffprobe(tagged_mkv), ffprobe(out)
    assert _identities(before) == [
        ("video", None, "Picture", 0, 0), ("audio", "eng", "English", 1, 0), ("audio", "fra", "Français", 0, 0),
        ("audio", "ger", "Kommentar", 0, 0), ("subtitle", "spa", "Subtítulos", 0, 1),
    ]
    assert _identities(after) == _identities(before)
    assert after["format"]["tags"]["title"] == "My film"
    assert [(c["start_time"], c["end_time"], c["tags"]["title"]) for c in after["chapters"]] == [
        ("0.000000", "0.200000", "One"), ("0.200000", "0.400000", "Two")]
    attachments = [s for s in after["streams"] if s["codec_type"] == "attachment"]
    assert [(a["tags"]["filename"], a["tags"]["mimetype"]) for a in attachments] == [("font.ttf", "font/ttf")]
    assert not any("dropped" in n for n in summary.notices), summary.notices


def test_mp4_keeps_what_it_can_and_names_each_loss(tmp_path, bicubic, tagged_mkv):
    out = tmp_path / "out.mp4"
    summary = upscale_video(tagged_mkv, out, bicubic, UpscaleOptions(mode="space"))
    after = ffprobe(out)
    audio = [s for s in after["streams"] if s["codec_type"] == "audio"]
    assert [s["tags"]["language"] for s in audio] == ["eng", "fra", "ger"]
    assert [s["disposition"]["default"] for s in audio] == [1, 0, 0]
    assert after["format"]["tags"]["title"] == "My film"
    assert [c["tags"]["title"] for c in after["chapters"]] == ["One", "Two"]
    notices = "\n".join(summary.notices)
    for title in ("Picture", "English", "Français", "Kommentar"):
        assert f"title '{title}' dropped" in notices
    assert "attachment 'font.ttf' (font/ttf) dropped" in notices
    assert "subtitle stream #4 (srt) dropped" in notices
    assert "language" not in notices and "chapters" not in notices  # nothing claimed lost that was kept


def test_slow_motion_stretches_chapters(tmp_path, bicubic, tagged_mkv):
    out = tmp_path / "slow.mkv"
    upscale_video(tagged_mkv, out, bicubic, UpscaleOptions(mode="slowmo"))
    assert [c["end_time"] for c in ffprobe(out)["chapters"]] == ["0.400000", "0.800000"]


MASTER_DISPLAY = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"


@pytest.fixture(scope="module")
def hdr10(tmp_path_factory):
    path = tmp_path_factory.mktemp("hdr") / "hdr10.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=32x24:r=10", "-frames:v", 2, "-c:v", "libx265", "-pix_fmt", "yuv420p10le",
           "-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc",
           "-x265-params", f"master-display={MASTER_DISPLAY}:max-cll=1000,400:log-level=error", path)
    return path


def _hdr_side_data(path):
    """Mastering display (R, G, B, white x/y; max, min luminance) and MaxCLL, MaxFALL as numbers."""
    sd = {d["side_data_type"]: d for d in first_frame_side_data(path)}
    mastering = sd["Mastering display metadata"]
    light = sd["Content light level metadata"]
    keys = ("red_x", "red_y", "green_x", "green_y", "blue_x", "blue_y", "white_point_x", "white_point_y",
            "max_luminance", "min_luminance")
    return [float(Fraction(mastering[k])) for k in keys] + [light["max_content"], light["max_average"]]


def _hdr_side_data_pyav(path):
    """The same numbers as decoded by PyAV's FFmpeg 8 (FFmpeg 5.1's H.264 decoder does not
    export the mastering-display SEI that x264 writes)."""
    import av

    from stdan_cli.video.colour import HdrMetadata

    with av.open(str(path)) as c:
        hdr = HdrMetadata.of(next(c.decode(video=0)))
    (r, g, b, w), (lo, hi) = hdr.primaries, hdr.luminance
    return [float(v) for v in (*r, *g, *b, *w, hi, lo)] + [hdr.max_cll, hdr.max_fall]


@pytest.mark.parametrize("codec", ["libx264", "libx265", "libsvtav1"])
def test_hdr10_metadata_and_depth_are_kept(tmp_path, bicubic, hdr10, codec):
    out = tmp_path / "out.mkv"
    summary = upscale_video(hdr10, out, bicubic, UpscaleOptions(mode="space", encoding=EncodeSettings(codec=codec, quiet=True)))
    v = video(ffprobe(out))
    assert v["pix_fmt"] == "yuv420p10le" and v["color_transfer"] == "smpte2084" and v["color_primaries"] == "bt2020"
    expected = [0.68, 0.32, 0.265, 0.69, 0.15, 0.06, 0.3127, 0.329, 1000, 0.005, 1000, 400]
    assert _hdr_side_data(hdr10) == pytest.approx(expected)
    written = _hdr_side_data_pyav(out) if codec == "libx264" else _hdr_side_data(out)
    assert written == pytest.approx(expected, rel=1e-4, abs=1e-5)  # AV1 stores fixed-point fractions
    assert not any("HDR" in n for n in summary.notices)


def test_hdr10_never_loses_bits(tmp_path, hdr10):
    assert_one_line_error(cli(hdr10, tmp_path / "o.mkv", "--model", "bicubic", "--pix-fmt", "yuv420p"), "10-bit")
    assert_one_line_error(cli(hdr10, tmp_path / "o.avi", "--model", "bicubic", "--codec", "mpeg4"),
                          "mpeg4 has no 10-bit pixel format")
    import av

    vp9_deep = "yuv420p10le" in [f.name for f in av.codec.Codec("libvpx-vp9", "w").video_formats]
    result = cli(hdr10, tmp_path / "o.webm", "--model", "bicubic", "--mode", "space")
    if vp9_deep:  # libvpx built with high bit depth: 10-bit out, the metadata VP9 cannot carry named
        assert result.exit_code == 0 and video(ffprobe(tmp_path / "o.webm"))["pix_fmt"] == "yuv420p10le"
        assert "mastering-display metadata dropped" in result.output
    else:
        assert_one_line_error(result, "libvpx-vp9 has no 10-bit pixel format")
    assert not (tmp_path / "o.mkv").exists() and not (tmp_path / "o.avi").exists()


def test_webm_gets_vp9_by_default(tmp_path):
    src = lavfi_video(tmp_path / "in.mp4")
    result = cli(src, tmp_path / "out.webm", "--model", "bicubic", "--mode", "space")
    assert result.exit_code == 0, result.output
    assert video(ffprobe(tmp_path / "out.webm"))["codec_name"] == "vp9"


def test_any_encoder_and_encoder_options(tmp_path):
    src = lavfi_video(tmp_path / "in.mp4", "32x24", 25, 6)
    result = cli(src, tmp_path / "out.avi", "--model", "bicubic", "--codec", "mpeg4")
    assert result.exit_code == 0, result.output
    assert video(ffprobe(tmp_path / "out.avi"))["codec_name"] == "mpeg4"
    assert "notice" not in result.output  # AVI has no dispositions, but a sole stream's 'default' is implied
    # x264 makes B-frames by default; bf=0 passed through turns them off.
    for name, opts, b_frames in (("default.mp4", [], 2), ("no_b.mp4", ["--encoder-opt", "bf=0"], 0)):
        result = cli(src, tmp_path / name, "--model", "bicubic", *opts)
        assert result.exit_code == 0, result.output
        assert video(ffprobe(tmp_path / name))["has_b_frames"] == b_frames


def test_encoder_mistakes_are_one_line_before_the_model_loads(tmp_path):
    src = lavfi_video(tmp_path / "in.mp4")
    out = tmp_path / "o.mp4"
    missing_weights = ["--weights", tmp_path / "absent.pth"]  # a weights error would show if the model loaded first
    cases = [
        (["--codec", "libx246"], "unknown video encoder 'libx246'; did you mean", "libx264"),
        (["--codec", "aac"], "'aac' is not a video encoder"),
        (["--codec", "h264_nvenc"], "h264_nvenc cannot encode with these settings"),
        (["--crf", "-5"], "--crf -5 is out of range for libx264: use 0..51"),
        (["--preset", "bogus"], "libx264 cannot encode with these settings: Error setting preset/tune bogus"),
        (["--encoder-opt", "bogus=1"], "libx264 has no option 'bogus'"),
        (["--encoder-opt", "tune"], "--encoder-opt 'tune' is not KEY=VALUE"),
    ]
    for args, *messages in cases:
        assert_one_line_error(cli(src, out, *missing_weights, *args), *messages)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["libx265", "libsvtav1"])
def test_quiet_silences_encoder_libraries(tmp_path, codec):
    src = lavfi_video(tmp_path / "in.mp4", "32x24", 25, 2)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("SVT_LOG", None)
    cmd = [sys.executable, "-m", "stdan_cli", "upscale", str(src), str(tmp_path / "o.mkv"), "--model", "bicubic",
           "--codec", codec]
    loud = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert loud.returncode == 0 and "wrote" in loud.stderr
    quiet = subprocess.run(cmd + ["-q", "-y"], capture_output=True, text=True, env=env)
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == "", quiet.stderr


def test_an_impossible_decode_time_from_the_encoder_is_replaced():
    from stdan_cli.video.encode import usable_dts

    # x265-like decode order: pts 0, 3, 1, 2 with dts -2, -1, 0, 1; decode times before -5 are impossible
    assert usable_dts(0, -2, None, -1, -5) == -2  # a usable one is kept
    assert usable_dts(0, 71776123339407616, None, -1, -5) == -2  # too late, the first: before the next one
    assert usable_dts(0, -1157442765409226768, None, -1, -5) == -2  # too early, likewise
    assert usable_dts(1, 71776123339407616, -1, 1, -5) == 0  # between its neighbours
    assert usable_dts(1, -1157442765409226768, -1, 1, -5) == 0
    assert usable_dts(2, 71776123339407616, 0, None, -5) == 2  # the last: its own time
    assert usable_dts(5, 2**62, None, None, -5) == 5
    assert usable_dts(3, 1, 2, None, -5) == 3  # not after the previous one: moved after it


class OffsetDecodeTimes:
    """The encoder's stream with every packet's decode time offset by ``offset``: the pattern
    x265 shows when its B-frame delay is uninitialised (a constant garbage offset)."""

    def __init__(self, stream, offset: int):
        self.stream, self.offset = stream, offset

    def encode(self, frame):
        packets = self.stream.encode(frame)
        for packet in packets:
            packet.dts += self.offset
        return packets


def write_short_chunk(path, frames: int, codec: str = "libx265", garble: int = 0):
    """``frames`` frames of 64x32 at 25 fps (time base 1/12800: a frame is 512 ticks, 40 ms),
    the last held for one frame, written by :class:`VideoWriter` as a job's chunk is."""
    import torch

    from stdan_cli.video.colour import ColourInfo
    from stdan_cli.video.encode import VideoWriter
    from stdan_cli.video.encoders import SourceTraits, container_for, resolve_encoding

    rate, time_base, step = Fraction(25), Fraction(1, 12800), 512
    container = container_for(path.name)
    encoding = resolve_encoding(EncodeSettings(codec=codec, quiet=True), SourceTraits(), container, (64, 32), rate)
    writer = VideoWriter(path, 64, 32, rate, time_base, encoding, ColourInfo(matrix=1, range=1, primaries=1, transfer=1),
                         container)
    if garble:
        writer.stream = OffsetDecodeTimes(writer.stream, garble)
    for k in range(frames):
        rgb = torch.rand(3, 32, 64, generator=torch.Generator().manual_seed(k))
        writer.write(rgb, k * step, hold=step if k == frames - 1 else None)
    writer.close()


@pytest.mark.parametrize("garble", [0, -1157442765409226768, 71776123339407616], ids=["real", "early", "late"])
@pytest.mark.parametrize("frames", [1, 2, 3])
@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_short_libx265_chunks_have_monotonic_times_and_last_as_long_as_asked(tmp_path, frames, suffix, garble):
    """x265 leaves its B-frame delay uninitialised when fewer frames than the delay reach it
    (x265 issue 781): libx265 4.2 gives 1 or 2 frames garbage decode times most of the time
    ("real"); "early" and "late" make sure of the two directions seen."""
    import av

    path = tmp_path / f"chunk{suffix}"
    write_short_chunk(path, frames, garble=garble)

    with av.open(str(path)) as f:
        packets = [p for p in f.demux(video=0) if p.size]
    with av.open(str(path)) as f:
        decoded = [frame.time for frame in f.decode(video=0)]
    dts = [p.dts for p in packets if p.dts is not None]
    assert dts == sorted(set(dts)), dts  # strictly increasing decode times
    assert decoded == sorted(set(decoded)) and len(decoded) == frames
    assert decoded == pytest.approx([k * 0.04 for k in range(frames)], abs=1e-3)
    last = max(packets, key=lambda p: p.pts)
    assert float((last.pts + last.duration) * last.time_base) == pytest.approx(frames * 0.04, abs=1e-3)
    probed = ffprobe(path, "-show_packets", "-select_streams", "v:0")["packets"]
    end = max(float(p["pts_time"]) + float(p["duration_time"]) for p in probed)
    assert end == pytest.approx(frames * 0.04, abs=1e-3)  # ffprobe agrees: the video lasts exactly the frames
    if suffix == ".mp4":  # MP4 keeps decode times: they are what the encoder's would have been, or the times shown
        assert all(-2 * 512 <= p.dts <= p.pts for p in packets)


def test_probing_an_encoder_and_a_quiet_run_leave_ffmpegs_log_and_svt_log_as_they_were(tmp_path, monkeypatch):
    import logging

    import av.logging

    from stdan_cli.video.encoders import SourceTraits, container_for, resolve_encoding

    monkeypatch.delenv("SVT_LOG", raising=False)
    level, logger_level = av.logging.get_level(), logging.getLogger("libav").level
    for quiet in (True, False):
        resolve_encoding(EncodeSettings(codec="libx264", quiet=quiet), SourceTraits(), container_for("o.mkv"))
    src = lavfi_video(tmp_path / "in.mp4", "32x24", 25, 2)
    assert cli(src, tmp_path / "o.mkv", "--model", "bicubic", "-q").exit_code == 0
    assert av.logging.get_level() == level and logging.getLogger("libav").level == logger_level
    assert "SVT_LOG" not in os.environ
