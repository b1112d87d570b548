"""Audio the output container cannot hold is re-encoded, not dropped (issue 22, item 5)."""

from __future__ import annotations

import subprocess

import av
import pytest
from click.testing import CliRunner

from stdan_cli.cli import main


def decoded_audio(path):
    """(codec, channels, seconds of decoded samples, time of the first sample)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples, first = 0, None
        for frame in container.decode(stream):
            first = frame.time if first is None else first
            samples += frame.samples
        ctx = stream.codec_context
        return ctx.name, ctx.channels, samples / ctx.sample_rate, first


@pytest.fixture(scope="module")
def aac_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("aac") / "in.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=24x16:rate=10:duration=2",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2", "-ac", "6",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


def test_webm_keeps_aac_audio_as_opus_with_the_same_duration(tmp_path, aac_clip):
    out = tmp_path / "out.webm"
    result = CliRunner().invoke(main, ["upscale", str(aac_clip), str(out), "--model", "bicubic", "--outscale", "1"])
    assert result.exit_code == 0, result.output
    assert "audio stream #1 (aac) re-encoded to opus: the webm container cannot hold aac" in result.output
    codec, channels, seconds, first = decoded_audio(out)
    _, in_channels, in_seconds, in_first = decoded_audio(aac_clip)
    assert codec == "opus" and channels == in_channels == 6
    assert first == pytest.approx(in_first, abs=0.001)
    assert seconds == pytest.approx(in_seconds, abs=0.025)  # within one Opus frame (20 ms)


def test_a_range_re_encodes_only_the_range(tmp_path, aac_clip):
    out = tmp_path / "part.webm"
    result = CliRunner().invoke(main, ["upscale", str(aac_clip), str(out), "--model", "bicubic", "--outscale", "1",
                                       "--start", "0.5", "--end", "1.5"])
    assert result.exit_code == 0, result.output
    codec, _, seconds, first = decoded_audio(out)
    assert codec == "opus" and first == pytest.approx(0, abs=0.03) and seconds == pytest.approx(1.0, abs=0.05)


def test_a_container_that_holds_the_codec_still_copies(tmp_path, aac_clip):
    out = tmp_path / "out.mkv"
    result = CliRunner().invoke(main, ["upscale", str(aac_clip), str(out), "--model", "bicubic", "--outscale", "1"])
    assert result.exit_code == 0 and "re-encoded" not in result.output
    assert decoded_audio(out)[0] == "aac"
