"""Finding clips in each accepted layout, and malformed data roots as clear one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from eval_data import make_vid4, make_vimeo, scene

from stdan_cli.cli import main
from stdan_cli.evaluation import DatasetError, evaluate, find_clips
from stdan_cli.evaluation.datasets import vimeo_ids
from stdan_cli.evaluation.images import ImageError, read_rgb, write_png
from stdan_cli.upscalers import build_upscaler


@pytest.mark.parametrize("layout,lr,expect_lr", [("zip", None, None), ("test", None, None),
                                                 ("test", "all", 7), ("zip", "inputs", 4)])
def test_vimeo_layouts_are_found(tmp_path, layout, lr, expect_lr):
    ids = make_vimeo(tmp_path, 2, layout, lr, h=16, w=24)
    clips = find_clips("vimeo-fast", tmp_path, limit=2)
    assert [c.name for c in clips] == ids
    assert [p.name for p in clips[0].gt] == [f"im{i}.png" for i in range(1, 8)]
    assert (len(clips[0].lr) if clips[0].lr else None) == expect_lr


def test_vid4_frames_are_ordered_by_number_and_paired_with_lr(tmp_path):
    for t in range(12):  # names without zero padding: im2 must come before im10
        write_png(tmp_path / "hr" / "walk" / f"im{t}.png", np.full((8, 8, 3), t, np.uint8))
        write_png(tmp_path / "lr_x4" / "walk" / f"frame_{t}.png", np.full((2, 2, 3), t, np.uint8))
    (clip,) = find_clips("vid4", tmp_path)
    assert [p.name for p in clip.gt] == [f"im{t}.png" for t in range(12)]
    assert [clip.lr[t].name for t in range(12)] == [f"frame_{t}.png" for t in range(12)]


def test_vid4_limit_takes_the_first_sorted_clips(tmp_path):
    make_vid4(tmp_path, {"walk": 7, "calendar": 7, "city": 7}, h=8, w=8)
    assert [c.name for c in find_clips("vid4", tmp_path)] == ["calendar", "city", "walk"]
    assert [c.name for c in find_clips("vid4", tmp_path, limit=1)] == ["calendar"]


def test_missing_clips_are_counted_unless_limit_stops_before_them(tmp_path):
    make_vimeo(tmp_path, 2, h=16, w=24)
    assert len(find_clips("vimeo-fast", tmp_path, limit=2)) == 2
    third = vimeo_ids("vimeo-fast")[2]
    with pytest.raises(DatasetError, match=f"1223 of 1225 vimeo-fast clips are missing .*first: {third}"):
        find_clips("vimeo-fast", tmp_path)
    with pytest.raises(DatasetError, match="1 of 3 vimeo-fast clips are missing"):
        find_clips("vimeo-fast", tmp_path, limit=3)


def test_root_given_as_the_sequences_folder_gets_a_hint(tmp_path):
    make_vimeo(tmp_path, 1, h=16, w=24)
    with pytest.raises(DatasetError, match="pass its parent as --data-root"):
        find_clips("vimeo-fast", tmp_path / "sequences", limit=1)


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ImageError, match="cannot read image .*bad.png: not a readable image"):
        read_rgb(bad)


def test_image_names_with_percent_are_not_patterns(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    write_png(tmp_path / "out%03d.png", x)
    assert [p.name for p in tmp_path.iterdir()] == ["out%03d.png"]
    assert np.array_equal(read_rgb(tmp_path / "out%03d.png"), x)


def _run(*args, usage=False):
    """Run `stdan eval` expecting a failure: one line `error: ...` (or click's usage error)."""
    r = CliRunner().invoke(main, ["eval", "--model", "bicubic", "-q", *map(str, args)])
    assert r.exit_code != 0, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    if not usage:
        assert r.output.startswith("error: ") and r.output.count("\n") == 1, r.output
    return r.output


def test_malformed_roots_are_one_line_errors(tmp_path):
    assert "does not exist" in _run("--dataset", "vimeo-fast", "--data-root", tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    assert "3 of 3 vimeo-fast clips are missing" in _run("--dataset", "vimeo-fast", "--data-root",
                                                          tmp_path / "empty", "--limit", 3)
    assert "not a Vid4 root" in _run("--dataset", "vid4", "--data-root", tmp_path / "empty")
    (tmp_path / "nohr" / "hr").mkdir(parents=True)
    assert "no clip folders" in _run("--dataset", "vid4", "--data-root", tmp_path / "nohr")

    ids = make_vimeo(tmp_path / "holes", 1, h=16, w=24)
    (tmp_path / "holes" / "sequences" / ids[0] / "im4.png").unlink()
    out = _run("--dataset", "vimeo-fast", "--data-root", tmp_path / "holes", "--limit", 1)
    assert f"clip {ids[0]} is incomplete" in out and "im4.png is missing" in out

    make_vimeo(tmp_path / "lrholes", 1, "test", "inputs", h=16, w=24)
    (tmp_path / "lrholes" / "LR_test" / ids[0] / "im5.png").unlink()
    assert "LR_test needs im1, im3, im5 and im7" in _run("--dataset", "vimeo-fast", "--data-root",
                                                        tmp_path / "lrholes", "--limit", 1)

    make_vimeo(tmp_path / "bad", 1, h=16, w=24)
    (tmp_path / "bad" / "sequences" / ids[0] / "im2.png").write_bytes(b"not a png")
    assert "cannot read image" in _run("--dataset", "vimeo-fast", "--data-root", tmp_path / "bad", "--limit", 1)

    make_vimeo(tmp_path / "size", 1, "test", "all", h=16, w=24)
    write_png(tmp_path / "size" / "LR_test" / ids[0] / "im3.png", np.zeros((5, 5, 3), np.uint8))
    out = _run("--dataset", "vimeo-fast", "--data-root", tmp_path / "size", "--limit", 1)
    assert "im3.png is 5x5; a 24x16 ground truth needs 6x4 low-resolution frames" in out

    make_vimeo(tmp_path / "gtsize", 1, h=16, w=24)
    write_png(tmp_path / "gtsize" / "sequences" / ids[0] / "im6.png", np.zeros((16, 20, 3), np.uint8))
    assert "frames of a clip must match" in _run("--dataset", "vimeo-fast", "--data-root", tmp_path / "gtsize",
                                                 "--limit", 1)

    make_vid4(tmp_path / "short", {"calendar": 5}, h=16, w=16)
    assert "has 5 frames" in _run("--dataset", "vid4", "--data-root", tmp_path / "short")
    make_vid4(tmp_path / "pairs", {"city": 8}, lr=True, h=16, w=16)
    (tmp_path / "pairs" / "lr_x4" / "city" / "00000007.png").unlink()
    assert "must match one to one" in _run("--dataset", "vid4", "--data-root", tmp_path / "pairs")


def test_unwritable_outputs_fail_before_the_run(tmp_path):
    make_vimeo(tmp_path, 1, h=16, w=24)
    out = _run("--dataset", "vimeo-fast", "--data-root", tmp_path, "--limit", 1, "--json", tmp_path / "no" / "s.json")
    assert "does not exist" in out
    (tmp_path / "file").write_text("x")
    out = _run("--dataset", "vimeo-fast", "--data-root", tmp_path, "--limit", 1, "--save-images", tmp_path / "file",
               usage=True)
    assert "is a file" in out


def test_limit_must_be_positive(tmp_path):
    assert "--limit" in _run("--dataset", "vimeo-fast", "--data-root", tmp_path, "--limit", 0, usage=True)


def test_api_rejects_unknown_dataset_and_degradation(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset"):
        find_clips("reds4", tmp_path)
    with pytest.raises(DatasetError, match="unknown degradation"):
        evaluate("vid4", tmp_path, build_upscaler("bicubic"), degradation="gauss")


def test_scene_has_texture_and_motion():
    a, b = scene(0, 64, 96, 0), scene(1, 64, 96, 1)
    assert a.std() > 20 and len(np.unique(a.reshape(-1, 3), axis=0)) > 1000
    assert np.abs(a.astype(int) - b).mean() > 5
