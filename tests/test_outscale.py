"""--outscale (the model's 4x frames resized to S x the input) and --compare (bicubic | model)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from media import make_video, read_frames

from stdan_cli.api import upscale_video
from stdan_cli.cli import main
from stdan_cli.errors import OptionError
from stdan_cli.pipeline import MODES, UpscaleOptions
from stdan_cli.pipeline.outsize import output_size, resize_frames, side_by_side
from stdan_cli.upscalers import build_upscaler
from stdan_cli.video.encoders import EncodeSettings

FFPROBE = shutil.which("ffprobe")
LOSSLESS = EncodeSettings(codec="ffv1", pix_fmt="yuv444p")


def probe(path) -> dict:
    out = subprocess.run([FFPROBE, "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                          "stream=width,height,r_frame_rate,nb_read_frames", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["streams"][0]


@pytest.fixture(scope="module")
def small_stdan(tmp_path_factory):
    from stdan_cli.model import STDAN, STDANConfig

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "small.pth"
    torch.save(STDAN(STDANConfig.small()).state_dict(), path)
    return build_upscaler("stdan", weights=path, device="cpu")


def test_output_size_rounds_and_keeps_chroma_even():
    assert output_size(21, 13, 4) == (84, 52)
    assert output_size(21, 13, 2.5) == (53, 33)  # 52.5 and 32.5 round half up
    assert output_size(21, 13, 2.5, even=(True, True)) == (52, 32)  # nearest even of 52.5 and 32.5
    assert output_size(21, 13, 1, even=(True, True)) == (22, 14)
    assert output_size(21, 13, 1, even=(True, False)) == (22, 13)
    assert output_size(3, 3, 0.01, even=(True, True)) == (2, 2) and output_size(3, 3, 0.01) == (1, 1)


@pytest.mark.parametrize("s, expected", [(4, (84, 52)), (2.5, (52, 32)), (2, (42, 26)), (1, (22, 14))])
def test_outscale_sizes_in_the_file(tmp_path, s, expected):
    """yuv420p (the default) needs even sizes: ffprobe reads the size we promise."""
    src = make_video(tmp_path / "in.mp4", n_frames=3, size=(21, 13), codec="ffv1", pix_fmt="yuv444p")
    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(main, ["upscale", str(src), str(out), "--model", "bicubic", "--outscale", str(s)])
    assert result.exit_code == 0, result.output
    info = probe(out)
    assert (info["width"], info["height"]) == expected
    assert f"{expected[0]}x{expected[1]} (scale {s:g})" in result.output


@pytest.mark.parametrize("s", ["0", "-1", "4.01", "nan"])
def test_outscale_out_of_range_is_one_line(tmp_path, s):
    src = make_video(tmp_path / "in.mp4", n_frames=2)
    result = CliRunner().invoke(main, ["upscale", str(src), str(tmp_path / "o.mp4"), "--model", "bicubic", "--outscale", s])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: --outscale must be more than 0 and at most 4 (got {float(s):g})"
    assert not (tmp_path / "o.mp4").exists()
    with pytest.raises(OptionError):
        UpscaleOptions(outscale=float(s)).check()


def test_outscale_1_keeps_the_size_and_doubles_the_rate(tmp_path, bicubic):
    src = make_video(tmp_path / "in.mkv", n_frames=5, size=(24, 16), rate=10, codec="ffv1", pix_fmt="yuv444p")
    out = tmp_path / "out.mkv"
    summary = upscale_video(src, out, bicubic, UpscaleOptions(outscale=1, encoding=LOSSLESS))
    assert summary.size_out == (24, 16) and summary.rate_out == Fraction(20)
    info = probe(out)
    assert (info["width"], info["height"], info["r_frame_rate"], int(info["nb_read_frames"])) == (24, 16, "20/1", 9)


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_gives_its_frames_at_the_outscale_size(tmp_path, bicubic, mode):
    frames = [np.random.default_rng(k).integers(0, 256, (16, 24, 3), dtype=np.uint8) for k in range(5)]
    src = make_video(tmp_path / "in.mkv", frames=frames, rate=10, codec="ffv1", pix_fmt="yuv444p")
    full = upscale_video(src, tmp_path / "4x.mkv", bicubic, UpscaleOptions(mode=mode, encoding=LOSSLESS))
    small = upscale_video(src, tmp_path / "s.mkv", bicubic, UpscaleOptions(mode=mode, outscale=2.5, encoding=LOSSLESS))
    assert small.size_out == (60, 40) and small.frames_out == full.frames_out == MODES[mode].count(5)
    assert small.rate_out == full.rate_out
    big, big_times = read_frames(tmp_path / "4x.mkv")
    got, times = read_frames(tmp_path / "s.mkv")
    assert times == big_times
    # each frame is its 4x frame resized (the 4x file went through 8-bit codes and clamping first)
    want = resize_frames(torch.from_numpy(np.stack(big)).permute(0, 3, 1, 2).float() / 255, (60, 40))
    want = (want.clamp(0, 1) * 255).round().permute(0, 2, 3, 1).numpy()
    error = np.abs(np.stack(got).astype(float) - want).mean(axis=(1, 2, 3))
    assert error.max() < 1


def test_resize_is_the_identity_at_4x_and_antialiased_below():
    x = torch.rand(2, 3, 8, 12, generator=torch.Generator().manual_seed(0))
    assert resize_frames(x, (12, 8)) is x
    stripes = torch.zeros(1, 3, 8, 40)
    stripes[..., 1::2] = 1  # the finest pattern: reduced by 2.5 without antialiasing it turns into moire
    reduced = resize_frames(stripes, (16, 8))[..., 2:-2]  # away from the borders
    assert (reduced - 0.5).abs().max() < 0.01


def test_side_by_side_covers_at_most_two_pixels_each_side_of_the_seam():
    left, right = torch.zeros(1, 3, 4, 10), torch.ones(1, 3, 4, 10)
    out = side_by_side(left, right)
    assert out.shape == (1, 3, 4, 20)
    changed = ((out - torch.cat([left, right], -1)).abs() > 0).any(dim=(0, 1, 2)).nonzero().flatten().tolist()
    assert changed and all(8 <= c <= 11 for c in changed)


@pytest.mark.slow
@pytest.mark.parametrize("s", [4, 2.5])
def test_compare_halves_equal_separate_runs(tmp_path, small_stdan, bicubic, s):
    src = make_video(tmp_path / "in.mkv", n_frames=5, size=(24, 16), codec="ffv1", pix_fmt="yuv444p",
                     frames=[np.random.default_rng(k).integers(0, 256, (16, 24, 3), dtype=np.uint8) for k in range(5)])
    runs = {}
    for name, upscaler, compare in (("cmp", small_stdan, True), ("model", small_stdan, False), ("bic", bicubic, False)):
        out = tmp_path / f"{name}.mkv"
        summary = upscale_video(src, out, upscaler, UpscaleOptions(outscale=s, compare=compare, encoding=LOSSLESS))
        runs[name] = np.stack(read_frames(out)[0]).astype(int)
        assert summary.frames_out == 9
    w = runs["model"].shape[2]
    assert runs["cmp"].shape[2] == 2 * w and runs["bic"].shape[2] == w
    left, right = runs["cmp"][:, :, :w], runs["cmp"][:, :, w:]
    np.testing.assert_array_equal(left[:, :, : w - 2], runs["bic"][:, :, : w - 2])
    np.testing.assert_array_equal(right[:, :, 2:], runs["model"][:, :, 2:])
    assert np.abs(runs["model"] - runs["bic"]).max() > 10  # the halves differ: the test can tell them apart


@pytest.mark.parametrize("s", [2.5, 1])
def test_tiled_equals_untiled_at_any_outscale(tmp_path, bicubic, s):
    src = make_video(tmp_path / "in.mkv", n_frames=4, size=(40, 32), codec="ffv1", pix_fmt="yuv444p",
                     frames=[np.random.default_rng(k).integers(0, 256, (32, 40, 3), dtype=np.uint8) for k in range(4)])
    whole = upscale_video(src, tmp_path / "a.mkv", bicubic, UpscaleOptions(outscale=s, encoding=LOSSLESS))
    tiled = upscale_video(src, tmp_path / "b.mkv", bicubic, UpscaleOptions(outscale=s, tile=16, encoding=LOSSLESS))
    assert whole.tiles == 1 and tiled.tiles > 1
    np.testing.assert_array_equal(np.stack(read_frames(tmp_path / "a.mkv")[0]), np.stack(read_frames(tmp_path / "b.mkv")[0]))


@pytest.mark.slow
@pytest.mark.parametrize("s, compare", [(2.5, False), (1, False), (2.5, True)])
def test_chunked_and_ranged_runs_equal_one_pass_at_any_outscale(tmp_path, small_stdan, s, compare):
    # Noise, so that any misplaced frame shows; every frame would be a cut, so detection is off.
    frames = [np.random.default_rng(k).integers(0, 256, (16, 24, 3), dtype=np.uint8) for k in range(10)]
    src = make_video(tmp_path / "in.mkv", frames=frames, rate=10, codec="ffv1", pix_fmt="yuv444p")
    options = UpscaleOptions(outscale=s, compare=compare, encoding=LOSSLESS)
    one = upscale_video(src, tmp_path / "one.mkv", small_stdan, replace(options, chunk_frames=100, scene_threshold=0))
    chunked = upscale_video(src, tmp_path / "chunked.mkv", small_stdan, replace(options, chunk_frames=4, scene_threshold=0))
    ranged = upscale_video(src, tmp_path / "ranged.mkv", small_stdan,
                           replace(options, chunk_frames=4, scene_threshold=0, start=0.3, end=0.8))
    assert one.chunks == 1 and chunked.chunks > 1 and one.size_out == chunked.size_out == ranged.size_out
    whole, times = read_frames(tmp_path / "one.mkv")
    parts, part_times = read_frames(tmp_path / "chunked.mkv")
    assert part_times == times and len(parts) == one.frames_out == 19
    np.testing.assert_array_equal(np.stack(parts), np.stack(whole))
    # input frames 3..7 (0.3 <= t < 0.8) are output frames 6..14 of the whole run
    cut, _ = read_frames(tmp_path / "ranged.mkv")
    np.testing.assert_array_equal(np.stack(cut), np.stack(whole[6:15]))


def test_compare_with_the_bicubic_model_is_refused(tmp_path):
    src = make_video(tmp_path / "in.mp4", n_frames=2)
    result = CliRunner().invoke(main, ["upscale", str(src), str(tmp_path / "o.mp4"), "--model", "bicubic", "--compare"])
    assert result.exit_code == 2 and "both halves are the same" in result.output
