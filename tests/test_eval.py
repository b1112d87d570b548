"""stdan eval: the protocol against the official helpers' outputs, and runs on tiny datasets."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from stdan_cli.cli import main
from stdan_cli.evaluation import DatasetError, evaluate, find_clips
from stdan_cli.evaluation.datasets import scoring_windows, vimeo_ids
from stdan_cli.evaluation.images import write_png
from stdan_cli.evaluation.metrics import frame_scores, to_uint8
from stdan_cli.evaluation.resize import bicubic_down, blur_down, imresize
from stdan_cli.runtime import build_upscaler


def test_resize_matches_official_imresize(reference_dir):
    cases = np.load(reference_dir / "eval_protocol_cases.npz")
    for i in range(4):
        x = cases[f"imresize{i}.input_rgb_u8"]
        assert np.abs(imresize(x / 255.0, 0.25) - cases[f"imresize{i}.output_float"]).max() < 1e-6
        assert np.array_equal(bicubic_down(x), cases[f"imresize{i}.output_u8"])


def test_metrics_match_official_helpers(reference_dir):
    cases = np.load(reference_dir / "eval_protocol_cases.npz")
    for i in range(2):
        got = frame_scores(to_uint8(cases[f"metric{i}.output_rgb_float32"]), cases[f"metric{i}.gt_rgb_u8"])
        for k in ("psnr", "psnr_y"):
            assert abs(got[k] - float(cases[f"metric{i}.{k}"])) <= 1e-4, k
        for k in ("ssim", "ssim_y"):
            assert abs(got[k] - float(cases[f"metric{i}.{k}"])) <= 1e-5, k


def test_identical_frames_score_infinite_psnr_and_ssim_one():
    x = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    s = frame_scores(x, x)
    assert math.isinf(s["psnr"]) and s["ssim"] == pytest.approx(1.0)


def test_bd_degradation_keeps_pixel_4k_plus_2_of_the_blurred_image():
    flat = np.full((16, 16, 3), 77, np.uint8)
    assert np.array_equal(blur_down(flat), np.full((4, 4, 3), 77, np.uint8))
    spike = np.zeros((16, 16, 3), np.uint8)
    spike[6, 10] = 255  # lands on kept pixel (row 6 = 4*1+2, col 10 = 4*2+2) after the blur peak
    out = blur_down(spike)
    assert out[1, 2, 0] == out.max() > 0


def test_scoring_windows_cover_every_frame_once():
    for n in (7, 8, 13, 34, 41):
        scored = [i for _, hr, _ in scoring_windows(n) for i in hr]
        assert scored == list(range(n))
    assert scoring_windows(7) == [(0, list(range(7)), [0, 2, 4, 6])]


def test_official_lists_are_shipped():
    # The official lists, all-black clips included (other projects drop them).
    assert [len(vimeo_ids(d)) for d in ("vimeo-fast", "vimeo-medium", "vimeo-slow")] == [1225, 4983, 1616]
    assert vimeo_ids("vimeo-fast")[0] == "00001/0625"


def _scene(t: int, h: int, w: int, seed: int) -> np.ndarray:
    """Real-looking content: smooth gradients, a moving disc and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([64 + 100 * xx / w, 40 + 120 * yy / h, 128 + 60 * np.sin(xx / 7.0 + yy / 11.0)], -1)
    cy, cx = h / 2 + 3 * t, w / 3 + 4 * t
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < (h / 5) ** 2] = [220, 60, 40]
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_vimeo(root, ids, layout="zip", lr=False, h=32, w=48):
    for n, cid in enumerate(ids):
        base = root / "sequences" / cid if layout == "zip" else root / "sequences" / "test" / cid
        for t in range(7):
            gt = _scene(t, h, w, seed=n * 10 + t)
            write_png(base / f"im{t + 1}.png", gt)
            if lr:
                write_png(root / "LR_test" / cid / f"im{t + 1}.png", bicubic_down(gt))


def make_vid4(root, clips={"calendar": 9, "city": 8}, lr=False, h=32, w=40):
    for n, (name, count) in enumerate(clips.items()):
        for t in range(count):
            gt = _scene(t, h, w, seed=100 + n * 10 + t)
            write_png(root / "hr" / name / f"{t:08d}.png", gt)
            if lr:
                write_png(root / "lr_x4" / name / f"{t:08d}.png", bicubic_down(gt))


@pytest.fixture(scope="module")
def bicubic():
    return build_upscaler("bicubic")


@pytest.mark.parametrize("layout,lr", [("zip", False), ("test", True)])
def test_vimeo_layouts_with_bicubic(tmp_path, bicubic, layout, lr):
    ids = vimeo_ids("vimeo-fast")[:2]
    make_vimeo(tmp_path, ids, layout, lr)
    result = evaluate("vimeo-fast", tmp_path, bicubic, limit=2)
    assert [c.name for c in result.clips] == ids
    assert all(len(c.frames) == 7 for c in result.clips)
    assert 15 < result.mean("psnr_y") < 40 and 0.2 < result.mean("ssim_y") < 1


def test_precomputed_lr_equals_generated_lr(tmp_path, bicubic):
    ids = vimeo_ids("vimeo-fast")[:1]
    make_vimeo(tmp_path / "a", ids, "zip", lr=False)
    make_vimeo(tmp_path / "b", ids, "test", lr=True)
    a = evaluate("vimeo-fast", tmp_path / "a", bicubic, limit=1)
    b = evaluate("vimeo-fast", tmp_path / "b", bicubic, limit=1)
    assert a.mean("psnr") == pytest.approx(b.mean("psnr"), abs=1e-9)


def test_vid4_scores_every_frame(tmp_path, bicubic):
    make_vid4(tmp_path, lr=True)
    result = evaluate("vid4", tmp_path, bicubic)
    assert {c.name: len(c.frames) for c in result.clips} == {"calendar": 9, "city": 8}
    assert [f["index"] for f in result.clips[1].frames] == list(range(8))


def test_infinite_psnr_clips_are_left_out_of_means(tmp_path, bicubic):
    ids = vimeo_ids("vimeo-fast")[:2]
    make_vimeo(tmp_path, ids)
    for t in range(7):  # an all-black clip: bicubic reproduces it exactly
        write_png(tmp_path / "sequences" / ids[1] / f"im{t + 1}.png", np.zeros((32, 48, 3), np.uint8))
    result = evaluate("vimeo-fast", tmp_path, bicubic, limit=2)
    assert result.excluded == 1 and len(result.scored) == 1
    assert math.isfinite(result.mean("psnr")) and result.mean("psnr") == result.clips[0].mean("psnr")


def test_cli_small_model_json_and_images(tmp_path):
    torch.manual_seed(0)
    from stdan_cli.model import STDAN, STDANConfig

    weights = tmp_path / "small.pth"
    torch.save(STDAN(STDANConfig.small()).state_dict(), weights)
    make_vimeo(tmp_path / "data", vimeo_ids("vimeo-fast")[:1])
    out_json, images = tmp_path / "scores.json", tmp_path / "images"
    result = CliRunner().invoke(main, [
        "eval", "--dataset", "vimeo-fast", "--data-root", str(tmp_path / "data"), "--weights", str(weights),
        "--limit", "1", "--json", str(out_json), "--save-images", str(images), "-q", "--threads", "1",
    ])
    assert result.exit_code == 0, result.output
    assert "PSNR-Y" in result.output and "TMNet" in result.output and "37.04" in result.output
    scores = json.loads(out_json.read_text())
    assert len(scores["clips"]) == 1 and len(scores["clips"][0]["frames"]) == 7
    assert set(scores["means"]) == {"psnr", "ssim", "psnr_y", "ssim_y"}
    assert len(list(images.rglob("*.png"))) == 7


def test_malformed_roots_are_clear_errors(tmp_path):
    runner = CliRunner()

    def run(root, dataset="vimeo-fast", *extra):
        r = runner.invoke(main, ["eval", "--dataset", dataset, "--data-root", str(root), "--model", "bicubic", *extra])
        assert r.exit_code != 0 and "Traceback" not in r.output
        return r.output

    assert "does not exist" in run(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    out = run(tmp_path / "empty", "vimeo-fast", "--limit", "3")
    assert "3 of 3 vimeo-fast clips are missing" in out
    ids = vimeo_ids("vimeo-fast")[:1]
    make_vimeo(tmp_path / "holes", ids)
    (tmp_path / "holes" / "sequences" / ids[0] / "im4.png").unlink()
    assert "im4.png is missing" in run(tmp_path / "holes", "vimeo-fast", "--limit", "1")
    make_vimeo(tmp_path / "bad", ids)
    (tmp_path / "bad" / "sequences" / ids[0] / "im2.png").write_bytes(b"not a png")
    assert "cannot read image" in run(tmp_path / "bad", "vimeo-fast", "--limit", "1")
    make_vimeo(tmp_path / "size", ids, "test", lr=True)
    write_png(tmp_path / "size" / "LR_test" / ids[0] / "im1.png", np.zeros((5, 5, 3), np.uint8))
    assert "expected 12x8" in run(tmp_path / "size", "vimeo-fast", "--limit", "1")
    assert "not a Vid4 root" in run(tmp_path / "empty", "vid4")
    with pytest.raises(DatasetError, match="missing"):
        find_clips("vimeo-fast", tmp_path / "holes", limit=2)
