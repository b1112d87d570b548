"""End-to-end `stdan eval` on tiny datasets written in each supported layout, with the bicubic
baseline and the small configuration; aggregation, infinite PSNR, JSON and saved frames."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from eval_data import make_vid4, make_vimeo

from stdan_cli.cli import main
from stdan_cli.evaluation import evaluate, write_json
from stdan_cli.evaluation.images import read_rgb, write_png
from stdan_cli.evaluation.protocol import make_lr
from stdan_cli.upscalers import BICUBIC_DESCRIPTOR, build_upscaler

LAYOUTS = {  # name -> (dataset, writer)
    "vimeo-zip": ("vimeo-fast", lambda root: make_vimeo(root, 2, "zip")),
    "vimeo-test": ("vimeo-fast", lambda root: make_vimeo(root, 2, "test")),
    "vimeo-test-lr7": ("vimeo-fast", lambda root: make_vimeo(root, 2, "test", "all")),
    "vimeo-zip-lr4": ("vimeo-fast", lambda root: make_vimeo(root, 2, "zip", "inputs")),
    "vid4": ("vid4", lambda root: make_vid4(root)),
    "vid4-lr": ("vid4", lambda root: make_vid4(root, lr=True)),
}


@pytest.fixture(scope="module")
def upscalers(weights):
    # float32 on every CPU (auto is bf16 where it is native): the tests compare scores exactly
    return {"bicubic": build_upscaler("bicubic"), "small": build_upscaler("stdan", weights, "cpu", "fp32")}


@pytest.mark.slow
@pytest.mark.parametrize("model", ["bicubic", "small"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_end_to_end(tmp_path, upscalers, layout, model):
    dataset, write = LAYOUTS[layout]
    write(tmp_path)
    result = evaluate(dataset, tmp_path, upscalers[model], limit=2)
    assert len(result.clips) == 2 and not result.excluded
    if dataset == "vid4":
        assert {c.name: len(c.frames) for c in result.clips} == {"calendar": 9, "city": 8}
    assert all([f["index"] for f in c.frames] == list(range(len(c.frames))) for c in result.clips)
    assert {c.lr_source for c in result.clips} == {"precomputed" if "lr" in layout else "bi"}
    psnr_y, ssim_y = result.mean("psnr_y"), result.mean("ssim_y")
    if model == "bicubic":
        assert 20 < psnr_y < 40 and 0.5 < ssim_y < 1
    else:  # random untrained weights: finite, poor
        assert math.isfinite(psnr_y) and 0 < psnr_y < 30 and -1 <= ssim_y < 1
    assert result.mean("psnr") == pytest.approx(np.mean([c.mean("psnr") for c in result.clips]))


def test_precomputed_lr_equals_lr_made_from_ground_truth(tmp_path, upscalers):
    make_vimeo(tmp_path / "a", 1, "zip")
    make_vimeo(tmp_path / "b", 1, "test", "inputs")
    make_vid4(tmp_path / "c")
    make_vid4(tmp_path / "d", lr=True)
    for x, y, dataset in (("a", "b", "vimeo-fast"), ("c", "d", "vid4")):
        a = evaluate(dataset, tmp_path / x, upscalers["small"], limit=1)
        b = evaluate(dataset, tmp_path / y, upscalers["small"], limit=1)
        assert a.clips[0].lr_source == "bi" and b.clips[0].lr_source == "precomputed"
        assert a.clips[0].frames == b.clips[0].frames


def test_bd_makes_its_own_lr_even_when_precomputed_frames_exist(tmp_path, upscalers):
    make_vimeo(tmp_path, 1, "test", "all")
    bi = evaluate("vimeo-fast", tmp_path, upscalers["bicubic"], limit=1)
    bd = evaluate("vimeo-fast", tmp_path, upscalers["bicubic"], "bd", limit=1)
    assert bd.clips[0].lr_source == "bd" and bd.references == [] and bi.references
    assert bd.mean("psnr") != bi.mean("psnr")


class OracleUpscaler:
    """Returns the ground truth of the frames a window covers (found from its first input), so
    every scored frame is exact if and only if outputs are matched to the right frames."""

    name, precision, device, descriptor = "oracle", "fp32", torch.device("cpu"), BICUBIC_DESCRIPTOR

    def __init__(self, gt):
        self.gt = gt
        self.lr = [torch.from_numpy(make_lr(g, "bi")).permute(2, 0, 1).float() / 255 for g in gt]
        self.calls = []

    def __call__(self, frames, skip_outputs=0, cache_key=None):
        first = next(i for i, x in enumerate(self.lr) if torch.equal(x, frames[0, 0]))
        assert all(torch.equal(self.lr[first + 2 * k], frames[0, k]) for k in range(4))
        self.calls.append((first, skip_outputs))
        out = torch.stack([torch.from_numpy(g).permute(2, 0, 1).float() / 255 for g in self.gt[first:first + 7]])
        return out[None, skip_outputs:]


def test_outputs_are_matched_to_the_right_frames_and_exact_clips_leave_the_means(tmp_path):
    make_vid4(tmp_path, {"city": 14})
    gt = [read_rgb(p) for p in sorted((tmp_path / "hr" / "city").iterdir())]
    oracle = OracleUpscaler(gt)
    result = evaluate("vid4", tmp_path, oracle)
    assert oracle.calls == [(0, 0), (6, 1), (7, 6)]  # the end-aligned window only makes frame 13
    assert result.excluded == ["city"] and result.scored == [] and math.isnan(result.mean("psnr"))
    assert all(math.isinf(f["psnr"]) and f["ssim"] == pytest.approx(1) for f in result.clips[0].frames)


def test_black_clip_is_left_out_of_the_means_and_counted(tmp_path, upscalers):
    ids = make_vimeo(tmp_path, 3)
    for t in range(7):  # an all-black septuplet, as 9 of the official list's clips are
        write_png(tmp_path / "sequences" / ids[1] / f"im{t + 1}.png", np.zeros((64, 96, 3), np.uint8))
    result = evaluate("vimeo-fast", tmp_path, upscalers["bicubic"], limit=3)
    assert result.excluded == [ids[1]] and [c.name for c in result.scored] == [ids[0], ids[2]]
    assert math.isfinite(result.mean("psnr"))
    assert result.mean("ssim_y") == pytest.approx((result.clips[0].mean("ssim_y") + result.clips[2].mean("ssim_y")) / 2)
    write_json(result, tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())  # strict JSON: no Infinity
    assert data["clips_excluded_infinite_psnr"] == [ids[1]] and data["clips"][1]["psnr"] is None
    assert data["clips"][1]["in_means"] is False and data["clips"][1]["frames"][0]["psnr"] is None


def test_cli_small_model_vimeo_json_and_images(tmp_path, upscalers, weights):
    ids = make_vimeo(tmp_path / "data", 2, "test", "inputs")
    out_json, images = tmp_path / "scores.json", tmp_path / "images"
    r = CliRunner().invoke(main, [
        "eval", "--dataset", "vimeo-fast", "--data-root", str(tmp_path / "data"), "--weights", str(weights),
        "--limit", "2", "--json", str(out_json), "--save-images", str(images), "-q", "--device", "cpu",
        "--precision", "fp32",
    ])
    assert r.exit_code == 0, r.output
    for text in ("PSNR-Y", "SSIM-Y", "s/clip", "measured", "TMNet (paper)", "37.0400", "ZSM (paper)", "ZSM: Zooming Slow-Mo",
                 "precomputed LR frames"):
        assert text in r.output, text
    data = json.loads(out_json.read_text())
    assert data["model"] == "stdan" and data["precision"] == "fp32" and data["lr_sources"] == {"precomputed": 2}
    assert [c["name"] for c in data["clips"]] == ids and all(len(c["frames"]) == 7 for c in data["clips"])
    assert set(data["means"]) == {"psnr", "ssim", "psnr_y", "ssim_y"}
    assert {r_["method"] for r_ in data["references"]} == {"ZSM (paper)", "TMNet (paper)"}
    assert data["means"]["psnr_y"] == pytest.approx(np.mean([c["psnr_y"] for c in data["clips"]]))
    saved = sorted(p.relative_to(images).as_posix() for p in images.rglob("*.png"))
    assert saved == sorted(f"{cid}/im{t}.png" for cid in ids for t in range(1, 8))
    # the saved frame is the scored one: re-scoring it reproduces the JSON
    from stdan_cli.evaluation.metrics import frame_scores

    frame = data["clips"][0]["frames"][2]
    again = frame_scores(read_rgb(images / ids[0] / "im3.png"), read_rgb(tmp_path / "data" / "sequences" / "test" / ids[0] / "im3.png"))
    assert again["psnr_y"] == pytest.approx(frame["psnr_y"], abs=1e-12)


def test_cli_vid4_bicubic_shows_the_published_per_clip_figures(tmp_path):
    make_vid4(tmp_path, {"calendar": 7, "walk": 8}, lr=True, h=32, w=40)
    r = CliRunner().invoke(main, ["eval", "--dataset", "vid4", "--data-root", str(tmp_path), "--model", "bicubic", "-q"])
    assert r.exit_code == 0, r.output
    for text in ("Vid4 per clip", "calendar", "walk", "23.8167", "28.4173", "26.2818", "0.8041", "uploaded_STDAN.ipynb"):
        assert text in r.output, text
    r = CliRunner().invoke(main, ["eval", "--dataset", "vid4", "--data-root", str(tmp_path), "--model", "bicubic",
                                  "-q", "--degradation", "bd"])
    assert r.exit_code == 0 and "26.2818" not in r.output and "No published figures" in r.output, r.output


def test_help_states_the_layouts_and_defaults():
    r = CliRunner().invoke(main, ["eval", "--help"])
    assert r.exit_code == 0
    for text in ("DIR/sequences/<id>/im1..im7.png", "DIR/sequences/test/<id>", "LR_test", "DIR/hr/<clip>",
                 "lr_x4", "[default: bi]", "[default: stdan]", "[default: auto]", "Default: all", "Default: none"):
        assert text in r.output, text
