"""Datasets and protocols as descriptions: how a clip is scored follows from its protocol, not
from a dataset's name."""

from __future__ import annotations

import numpy as np
import pytest

from stdan_cli.errors import DatasetError
from stdan_cli.evaluation.datasets import DATASET_SPECS, DATASETS, SEPTUPLET, WHOLE_CLIP, Clip, dataset_spec
from stdan_cli.evaluation.images import write_png
from stdan_cli.evaluation.protocol import vid4_windows, vimeo_windows, windows_for
from stdan_cli.evaluation.references import VID4_CLIPS
from stdan_cli.evaluation.runner import DatasetResult, evaluate_clip
from stdan_cli.upscalers import build_upscaler


def test_each_dataset_is_described_once():
    assert DATASETS == tuple(DATASET_SPECS)
    assert all(DATASET_SPECS[n].protocol is SEPTUPLET and DATASET_SPECS[n].test_list for n in DATASETS if n != "vid4")
    vid4 = dataset_spec("vid4")
    assert (vid4.protocol, vid4.test_list, set(vid4.published_clips)) == (WHOLE_CLIP, None, set(VID4_CLIPS))
    with pytest.raises(DatasetError, match="unknown dataset 'nope'"):
        dataset_spec("nope")


@pytest.mark.parametrize("n", [7, 10, 34])
def test_windows_follow_the_protocol_or_the_datasets_protocol(n):
    assert windows_for(WHOLE_CLIP, n) == windows_for("vid4", n) == vid4_windows(n)
    assert windows_for(SEPTUPLET, n) == windows_for("vimeo-slow", n) == vimeo_windows()


def _clip(folder, n: int) -> Clip:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        paths.append(folder / f"{i:03d}.png")
        write_png(paths[-1], rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    return Clip("footage", tuple(paths))


def test_held_out_footage_is_scored_by_the_septuplet_protocol_under_its_own_name(tmp_path):
    """Held-out footage is not a dataset: it takes the septuplet protocol (7 frames scored, the
    inputs 1, 3, 5, 7) and its result is not compared with any dataset's published figures."""
    bicubic = build_upscaler("bicubic")
    clip = _clip(tmp_path, 7)
    septuplet = evaluate_clip(clip, SEPTUPLET, bicubic)
    assert [f["index"] for f in septuplet.frames] == list(range(7))
    assert [f["index"] for f in septuplet.frames if f["input"]] == [0, 2, 4, 6]
    result = DatasetResult("held-out footage", "bi", bicubic.name, clips=[septuplet])
    assert result.references == [] and not result.comparable and np.isfinite(result.mean("psnr_y"))
    whole = evaluate_clip(_clip(tmp_path / "long", 10), WHOLE_CLIP, bicubic)
    assert [f["index"] for f in whole.frames] == list(range(10))
