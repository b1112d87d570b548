"""The evaluation protocol: metrics and resize against the official helpers' outputs
(../shared/reference/eval_protocol_cases.npz), BD degradation, and the windows per dataset."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stdan_cli.evaluation.datasets import vimeo_ids
from stdan_cli.evaluation.metrics import frame_scores, luma, psnr, ssim, to_uint8
from stdan_cli.evaluation.protocol import lr_size, vid4_windows, vimeo_windows
from stdan_cli.evaluation.resize import bicubic_down, blur_down, imresize

PSNR_TOL, SSIM_TOL = 1e-4, 1e-5  # the fixture's stated tolerances


@pytest.fixture(scope="module")
def cases(reference_dir):
    return np.load(reference_dir / "eval_protocol_cases.npz")


@pytest.mark.parametrize("i", range(4))
def test_resize_matches_official_imresize(cases, i):
    x = cases[f"imresize{i}.input_rgb_u8"]
    out = imresize(x / 255.0, 0.25)
    ref = cases[f"imresize{i}.output_float"]
    assert out.shape == ref.shape == (*lr_size(*x.shape[:2]), 3)
    assert np.abs(out - ref).max() < 5e-7  # the official computes in float32
    assert np.array_equal(bicubic_down(x), cases[f"imresize{i}.output_u8"])


@pytest.mark.parametrize("i", range(2))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_metrics_match_official_helpers(cases, i, dtype):
    out = cases[f"metric{i}.output_rgb_float32"].astype(dtype)
    got = frame_scores(to_uint8(out), cases[f"metric{i}.gt_rgb_u8"])
    for k, tol in (("psnr", PSNR_TOL), ("psnr_y", PSNR_TOL), ("ssim", SSIM_TOL), ("ssim_y", SSIM_TOL)):
        assert abs(got[k] - float(cases[f"metric{i}.{k}"])) <= tol, k


def test_metrics_accept_torch_chw_output(cases):
    out = cases["metric0.output_rgb_float32"]
    assert np.array_equal(to_uint8(torch.from_numpy(out).permute(2, 0, 1)), to_uint8(out))


def test_saved_frame_rounds_like_tensor2img_in_float32():
    # float32 values whose float32 product with 255 lands on k + 0.5 (rounded to even), while
    # the exact product is just above it: the official tensor2img gives 106 and 156, float64 107, 155
    v = np.array([0.41764706, 0.6098039], dtype=np.float32)
    assert np.round(v.astype(np.float64) * 255).tolist() == [107, 155]
    assert to_uint8(v).tolist() == [106, 156]
    assert to_uint8(np.array([-0.2, 1.7, np.float32(0.5)], np.float32)).tolist() == [0, 255, 128]


def test_luma_is_matlab_rgb2ycbcr_y_unrounded():
    assert luma(np.array([[[0, 0, 0]]], np.uint8))[0, 0] == 16
    assert luma(np.array([[[255, 255, 255]]], np.uint8))[0, 0] == pytest.approx(235, abs=1e-9)
    assert luma(np.array([[[10, 20, 30]]], np.uint8))[0, 0] == pytest.approx(16 + (654.81 + 2571.06 + 748.98) / 255)


def test_identical_frames_score_infinite_psnr_and_ssim_one():
    x = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    s = frame_scores(x, x)
    assert math.isinf(s["psnr"]) and math.isinf(s["psnr_y"]) and s["ssim"] == pytest.approx(1.0)
    assert psnr(np.zeros((4, 4)), np.full((4, 4), 255.0)) == 0.0
    assert -1 <= ssim(x, 255 - x) < -0.5  # anti-correlated


def test_bd_keeps_pixel_4k_plus_2_of_the_blurred_image():
    flat = np.full((16, 16, 3), 77, np.uint8)
    assert np.array_equal(blur_down(flat), np.full((4, 4, 3), 77, np.uint8))
    spike = np.zeros((16, 16, 3), np.uint8)
    spike[6, 10] = 255  # row 6 = 4*1+2, col 10 = 4*2+2: the blur's peak lands on a kept pixel
    out = blur_down(spike)
    assert out[1, 2, 0] == out.max() > 0 and out[1, 2, 0] == round(255 * _gauss(0, 0))
    assert out[1, 1, 0] == 0  # 4 pixels away: outside the 7x7 kernel


def test_bd_blur_is_fspecial_7x7_sigma_1_6_with_replicated_borders():
    x = np.random.default_rng(1).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    padded = np.pad(x.astype(np.float64), ((3, 3), (3, 3), (0, 0)), mode="edge")
    k = np.array([[_gauss(dy, dx) for dx in range(-3, 4)] for dy in range(-3, 4)])
    ys, xs = np.arange(2, 20, 4), np.arange(2, 24, 4)
    ref = np.array([[np.tensordot(k, padded[y:y + 7, x_:x_ + 7], axes=((0, 1), (0, 1))) for x_ in xs] for y in ys])
    assert np.array_equal(blur_down(x), np.clip(np.round(ref), 0, 255).astype(np.uint8))
    assert blur_down(x).shape == (5, 6, 3)


def _gauss(dy, dx, sigma=1.6):
    g = np.exp(-(np.arange(-3, 4) ** 2) / (2 * sigma**2))
    return float(np.exp(-(dy**2 + dx**2) / (2 * sigma**2)) / g.sum() ** 2)


def _official_windows(n):
    """The official test_index_generation(skip=True, 7, n) followed by test.py's skipping of
    frames already scored: [(inputs, frames scored)]."""
    h_lists, right = [], 7
    while right <= n:
        h_lists.append(list(range(right - 7, right)))
        right += 6
    h_lists.append(list(range(n - 7, n)))  # the end-aligned window is always appended
    done, out = set(), []
    for h in h_lists:
        scored = [i for i in h if i not in done]
        done.update(scored)
        if scored:
            out.append((h[::2], scored))
    return out


@pytest.mark.parametrize("n", [7, 8, 9, 13, 14, 20, 34, 41, 47, 49])
def test_vid4_windows_follow_the_official_script(n):
    got = [(list(w.inputs), list(w.scored)) for w in vid4_windows(n)]
    assert got == _official_windows(n)
    assert [i for w in vid4_windows(n) for i in w.scored] == list(range(n))


def test_vid4_windows_of_an_even_clip_end_on_odd_inputs():
    last = vid4_windows(34)[-1]  # city: 34 frames
    assert last.inputs == (27, 29, 31, 33) and last.scored == (31, 32, 33) and last.skip == 4
    assert all(w.inputs == tuple(range(w.first, w.first + 7, 2)) for w in vid4_windows(34))


def test_vimeo_window_is_inputs_1357_all_7_scored():
    (w,) = vimeo_windows()
    assert w.inputs == (0, 2, 4, 6) and w.scored == tuple(range(7)) and w.skip == 0


def test_official_lists_are_shipped_with_the_black_clips():
    assert [len(vimeo_ids(d)) for d in ("vimeo-fast", "vimeo-medium", "vimeo-slow")] == [1225, 4983, 1616]
    assert vimeo_ids("vimeo-fast")[0] == "00001/0625"
    assert all(len(i.split("/")) == 2 for d in ("vimeo-fast", "vimeo-medium", "vimeo-slow") for i in vimeo_ids(d))


def test_shipped_lists_are_the_official_files(reference_dir):
    official = reference_dir.parent / "data" / "vimeo90k"
    if not official.is_dir():
        pytest.skip(f"official lists not found at {official}")
    for speed in ("fast", "medium", "slow"):
        ids = [line.strip() for line in (official / f"{speed}_testset.txt").read_text().splitlines() if line.strip()]
        assert vimeo_ids(f"vimeo-{speed}") == ids
