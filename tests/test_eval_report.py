"""What `stdan eval` reports around the scores: which weights (and whether the registry vouches
for them), versions, date and command; partial runs (--limit, --list); input-time vs
interpolated frames; notices for what the protocol assumes; progress lines in a log."""

from __future__ import annotations

import hashlib
import io
import json
import shlex
import sys
import time
from datetime import datetime
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from eval_data import make_vid4, make_vimeo, scene, small_weights
from weights_server import write_registry

from stdan_cli import __version__
from stdan_cli.cli import main
from stdan_cli.evaluation import DatasetError, evaluate, read_clip_list, select_clips
from stdan_cli.evaluation.datasets import vimeo_ids
from stdan_cli.evaluation.images import read_image, write_png
from stdan_cli.evaluation.progress_log import ProgressLog
from stdan_cli.evaluation.provenance import WeightsStatus, identify_weights
from stdan_cli.evaluation.runner import DatasetResult
from stdan_cli.upscalers import build_upscaler

BICUBIC = build_upscaler("bicubic")


def _eval(*args, argv: list[str] | None = None, monkeypatch=None) -> tuple[int, str]:
    args = ["eval", *map(str, args)]
    if monkeypatch is not None:  # the command a user typed, as the process sees it
        monkeypatch.setattr(sys, "argv", argv or ["stdan", *args])
    r = CliRunner().invoke(main, args)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exc_info
    return r.exit_code, r.output


# --- which weights, versions, date, command ----------------------------------------------------


@pytest.fixture
def registry_home(tmp_path, monkeypatch):
    """A weights cache holding 'tiny' (the small test checkpoint) under a registry that records its sha256."""
    home = tmp_path / "home"
    (home / "weights").mkdir(parents=True)
    weights = small_weights(home / "weights" / "tiny.pth")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    monkeypatch.setenv("STDAN_HOME", str(home))
    monkeypatch.setenv("STDAN_REGISTRY", str(write_registry(tmp_path / "registry.json", sha256=digest)))
    return weights, digest


def test_json_and_table_name_the_weights_versions_date_and_command(tmp_path, monkeypatch):
    weights = small_weights(tmp_path / "mine.pth")
    make_vimeo(tmp_path / "data", 1, "zip", h=16, w=24)
    out = tmp_path / "r.json"
    args = ["--dataset", "vimeo-fast", "--data-root", tmp_path / "data", "--weights", weights, "--device", "cpu",
            "--precision", "fp32", "--limit", "1", "--json", out, "-q"]
    before = datetime.now().astimezone()
    code, text = _eval(*args, monkeypatch=monkeypatch)
    assert code == 0, text
    data = json.loads(out.read_text())
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert data["schema_version"] == 2
    assert data["weights"] == {"name": None, "path": str(weights.resolve()), "sha256": digest,
                               "size_bytes": weights.stat().st_size, "registry_sha256": None,
                               "status": "not-in-registry"}
    run = data["run"]
    assert run["command"] == shlex.join(["stdan", "eval", *map(str, args)])
    assert run["argv"] == ["stdan", "eval", *map(str, args)] and run["cwd"] == str(Path.cwd())
    assert run["versions"]["stdan-cli"] == __version__ and run["versions"]["torch"] == torch.__version__
    assert run["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert run["device"] == "cpu" and run["precision"] == "fp32" and data["precision"] == "fp32"
    started, finished = datetime.fromisoformat(run["started"]), datetime.fromisoformat(run["finished"])
    assert before.replace(microsecond=0) <= started <= finished <= datetime.now().astimezone()
    # the table names them too, and warns: nothing ties these weights to a published checkpoint
    assert f"weights: {weights.resolve()}, sha256 {digest}" in text
    assert "warning: these weights are not a registry checkpoint" in text


def test_a_registry_checkpoint_with_its_recorded_sha256_is_verified_and_not_warned_about(
        tmp_path, registry_home, monkeypatch):
    weights, digest = registry_home
    make_vimeo(tmp_path / "data", 1, "zip", h=16, w=24)
    out = tmp_path / "r.json"
    code, text = _eval("--dataset", "vimeo-fast", "--data-root", tmp_path / "data", "--weights", "tiny",
                       "--device", "cpu", "--limit", "1", "--json", out, "-q", monkeypatch=monkeypatch)
    assert code == 0, text
    data = json.loads(out.read_text())
    assert data["weights"]["name"] == "tiny" and data["weights"]["status"] == "verified"
    assert data["weights"]["sha256"] == data["weights"]["registry_sha256"] == digest
    assert f"weights: tiny ({weights.resolve()}), sha256 {digest}" in text and "warning" not in text


def test_weights_identity_by_name_cache_location_or_sha256(tmp_path, registry_home, monkeypatch):
    weights, digest = registry_home
    by_name, by_path = identify_weights("tiny"), identify_weights(weights)
    assert by_name == by_path and by_name.name == "tiny" and by_name.status is WeightsStatus.VERIFIED
    copy = tmp_path / "elsewhere.pth"
    copy.write_bytes(weights.read_bytes())
    assert identify_weights(copy).name == "tiny"  # a copy of a known file, recognised by its sha256
    other = small_weights(tmp_path / "other.pth")
    other.write_bytes(other.read_bytes() + b"\0")  # a different file
    assert identify_weights(other).status is WeightsStatus.NOT_IN_REGISTRY
    assert "not a registry checkpoint" in identify_weights(other).warning()
    weights.write_bytes(weights.read_bytes() + b"\0")  # the cached file changed after its download
    changed = identify_weights("tiny")
    assert changed.status is WeightsStatus.SHA256_MISMATCH and "not the released checkpoint" in changed.warning()
    monkeypatch.setenv("STDAN_REGISTRY", str(write_registry(tmp_path / "r2.json")))  # no sha256 recorded
    unknown = identify_weights("tiny")
    assert unknown.status is WeightsStatus.NO_REGISTRY_SHA256 and "records no sha256 for 'tiny'" in unknown.warning()


# --- partial runs --------------------------------------------------------------------------------


def test_limit_run_is_partial_in_table_and_json_and_the_paper_rows_are_not_comparable(tmp_path, monkeypatch):
    make_vimeo(tmp_path / "data", 3, "zip", h=16, w=24)
    out = tmp_path / "r.json"
    code, text = _eval("--dataset", "vimeo-fast", "--data-root", tmp_path / "data", "--model", "bicubic",
                       "--limit", "3", "--json", out, "-q", monkeypatch=monkeypatch)
    assert code == 0, text
    data = json.loads(out.read_text())
    assert (data["clips_evaluated"], data["clips_in_dataset"], data["partial"], data["limit"], data["list"]) == \
        (3, 1225, True, 3, None)
    assert data["references_comparable"] is False and all(r["comparable"] is False for r in data["references"])
    assert data["weights"] is None  # the baseline has none
    assert "3 of 1225" in text and "partial run" in text
    assert "ZSM (paper) *" in text and "TMNet (paper) *" in text
    assert "* Partial run: 3 of 1225 clips (--limit 3). The published figures are for all 1225 clips" in text


def test_a_whole_vid4_folder_of_its_four_clips_is_comparable_and_a_subset_is_not(tmp_path):
    make_vid4(tmp_path, {"calendar": 7, "city": 7, "foliage": 7, "walk": 7}, h=16, w=16)
    whole = select_clips("vid4", tmp_path)
    assert not whole.partial and whole.count() == "4"
    assert DatasetResult("vid4", "bi", "x", selection=whole, clips=[]).comparable is False  # no clips scored yet
    result = evaluate("vid4", tmp_path, BICUBIC)
    assert result.comparable and result.to_json()["partial"] is False
    first_three = select_clips("vid4", tmp_path, limit=3)
    assert first_three.partial and first_three.count() == "3 of 4"
    assert not DatasetResult("vid4", "bi", "x", clips=result.clips[:3], selection=first_three).comparable


# --- --list FILE -----------------------------------------------------------------------------------


def test_list_file_scores_the_clips_it_names_in_its_order(tmp_path, monkeypatch):
    ids = make_vimeo(tmp_path / "data", 3, "zip", h=16, w=24)
    listing = tmp_path / "mine.txt"
    listing.write_text(f"{ids[2]}\n\n{ids[0]}\n")  # the official lists' format; blank lines ignored
    out = tmp_path / "r.json"
    code, text = _eval("--dataset", "vimeo-fast", "--data-root", tmp_path / "data", "--model", "bicubic",
                       "--list", listing, "--json", out, "-q", monkeypatch=monkeypatch)
    assert code == 0, text
    data = json.loads(out.read_text())
    assert [c["name"] for c in data["clips"]] == [ids[2], ids[0]]
    assert data["list"] == {"path": str(listing.resolve()), "sha256": hashlib.sha256(listing.read_bytes()).hexdigest(),
                            "entries": 2}
    assert data["partial"] is True and data["clips_in_dataset"] == 1225 and "2 of 1225" in text
    assert f"--list {listing}" in text
    # with --limit: the first N of the list
    assert select_clips("vimeo-fast", tmp_path / "data", 1, listing).names == [ids[2]]


def test_list_file_for_vid4_names_clip_folders(tmp_path):
    make_vid4(tmp_path, {"calendar": 7, "city": 8, "walk": 7}, h=16, w=16)
    (tmp_path / "l.txt").write_text("walk\ncity\n")
    result = evaluate("vid4", tmp_path, BICUBIC, clip_list=tmp_path / "l.txt")
    assert [c.name for c in result.clips] == ["walk", "city"] and result.selection.count() == "2 of 3"
    (tmp_path / "all.txt").write_text("calendar\ncity\nwalk\n")
    assert not select_clips("vid4", tmp_path, clip_list=tmp_path / "all.txt").partial


@pytest.mark.parametrize("content,message", [
    ("", "names no clips"),
    ("00001/0625\n00001/0625\n", "line 2: '00001/0625' is already on line 1"),
    ("../secret\n", "line 1: '../secret' is not a clip name"),
    ("/abs/clip\n", "is not a clip name"),
    ("00001/0625 extra\n", "is not a clip name"),
])
def test_bad_list_files_are_one_line_errors(tmp_path, content, message):
    (tmp_path / "l.txt").write_text(content)
    with pytest.raises(DatasetError, match=message):
        read_clip_list(tmp_path / "l.txt")


def test_list_naming_missing_clips_is_an_error_before_a_model_loads(tmp_path, monkeypatch):
    ids = make_vimeo(tmp_path / "data", 1, "zip", h=16, w=24)
    (tmp_path / "l.txt").write_text(f"{ids[0]}\n{vimeo_ids('vimeo-fast')[5]}\n")
    code, text = _eval("--dataset", "vimeo-fast", "--data-root", tmp_path / "data", "--list", tmp_path / "l.txt",
                       "--weights", tmp_path / "absent.pth", monkeypatch=monkeypatch)
    assert code != 0 and f"1 of 2 vimeo-fast clips are missing under {tmp_path / 'data'}" in text
    assert "Traceback" not in text
    code, text = _eval("--dataset", "vimeo-fast", "--data-root", tmp_path / "data", "--list", tmp_path / "none.txt",
                       monkeypatch=monkeypatch)
    assert code != 0 and "cannot read the clip list" in text
    make_vid4(tmp_path / "v", {"city": 7}, h=16, w=16)
    (tmp_path / "v.txt").write_text("city\nfoliage\n")
    with pytest.raises(DatasetError, match="1 of 2 listed clips are not folders of .*first: foliage; present: city"):
        select_clips("vid4", tmp_path / "v", clip_list=tmp_path / "v.txt")


# --- input-time vs interpolated frames -----------------------------------------------------------


def _check_frame_kinds(result, expected: dict[str, list[bool]]):
    assert {c.name: [f["input"] for f in c.frames] for c in result.clips} == expected
    for kind, keep in (("input", True), ("interpolated", False)):
        per_clip = [np.mean([f["psnr_y"] for f in c.frames if f["input"] == keep]) for c in result.clips]
        assert result.mean("psnr_y", kind) == pytest.approx(np.mean(per_clip))
    # bicubic makes input-time frames from their own LR frame and averages the others:
    # the input frames must score better, or the flags are not the model's input times
    for c in result.clips:
        assert c.mean("psnr_y", "input") > c.mean("psnr_y", "interpolated") + 0.5


def test_vimeo_frames_1_3_5_7_are_inputs_and_both_means_are_given(tmp_path):
    ids = make_vimeo(tmp_path, 2, "zip", h=32, w=48)
    result = evaluate("vimeo-fast", tmp_path, BICUBIC, limit=2)
    _check_frame_kinds(result, {cid: [True, False] * 3 + [True] for cid in ids})
    data = result.to_json()
    assert data["means_input_frames"]["ssim"] == pytest.approx(result.mean("ssim", "input"))
    assert data["means_interpolated_frames"]["psnr"] == pytest.approx(result.mean("psnr", "interpolated"))
    assert data["clips"][0]["frames"][1]["input"] is False
    assert data["clips"][0]["means_input_frames"]["psnr_y"] == pytest.approx(result.clips[0].mean("psnr_y", "input"))


def test_vid4_end_aligned_last_window_makes_input_frames_of_odd_positions(tmp_path):
    # 8 frames: windows at 0 (inputs 0,2,4,6) and, aligned to the end, at 1 (inputs 1,3,5,7), which
    # scores only frame 7, made as an input frame; 9 frames: the last window (2) scores 7 and 8
    make_vid4(tmp_path, {"calendar": 9, "city": 8}, h=32, w=32)
    result = evaluate("vid4", tmp_path, BICUBIC)
    _check_frame_kinds(result, {"calendar": [True, False] * 4 + [True], "city": [True, False] * 3 + [True, True]})


def test_table_shows_the_input_and_interpolated_means(tmp_path, monkeypatch):
    make_vid4(tmp_path, {"walk": 8}, h=16, w=16)
    out = tmp_path / "r.json"
    code, text = _eval("--dataset", "vid4", "--data-root", tmp_path, "--model", "bicubic", "--json", out, "-q",
                       monkeypatch=monkeypatch)
    assert code == 0, text
    data = json.loads(out.read_text())
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.strip().startswith(("input", "interp"))}
    assert rows["input"][2:6] == [f"{data['means_input_frames'][m]:.4f}" for m in ("psnr", "ssim", "psnr_y", "ssim_y")]
    assert rows["interpolated"][1:5] == [f"{data['means_interpolated_frames'][m]:.4f}"
                                         for m in ("psnr", "ssim", "psnr_y", "ssim_y")]


# --- notices ----------------------------------------------------------------------------------------


def _write_png_as(path: Path, rgba: np.ndarray, pix_fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f, av.open(f, "w", format="image2pipe") as c:
        stream = c.add_stream("png")
        stream.height, stream.width = rgba.shape[:2]
        stream.pix_fmt = pix_fmt
        frame = av.VideoFrame.from_ndarray(rgba, format="rgba").reformat(format=pix_fmt)
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            c.mux(packet)


def test_grayscale_and_alpha_frames_are_read_as_the_notices_say(tmp_path):
    rgba = np.random.default_rng(0).integers(0, 256, (8, 12, 4), dtype=np.uint8)
    _write_png_as(tmp_path / "a.png", rgba, "rgba")
    rgb, fmt = read_image(tmp_path / "a.png")
    assert fmt.alpha and not fmt.grayscale and np.array_equal(rgb, rgba[..., :3])  # dropped, not composited
    grey = np.repeat(rgba[..., :1], 4, axis=2)
    grey[..., 3] = 255
    _write_png_as(tmp_path / "g.png", grey, "gray")
    rgb, fmt = read_image(tmp_path / "g.png")
    assert fmt.grayscale and not fmt.alpha and np.array_equal(rgb, grey[..., :3])  # grey used as R, G and B
    _write_png_as(tmp_path / "d.png", rgba, "rgb48be")
    assert read_image(tmp_path / "d.png")[1].bits == 16
    write_png(tmp_path / "p.png", rgba[..., :3])
    assert read_image(tmp_path / "p.png")[1] == type(fmt)(False, False, 8)


def test_odd_sizes_grayscale_and_rgba_are_each_noticed_once(tmp_path, monkeypatch):
    ids = make_vimeo(tmp_path, 3, "zip", h=18, w=26)  # not multiples of 4
    for cid, pix in ((ids[0], "gray"), (ids[1], "rgba"), (ids[2], "gray")):
        for t in (2, 5):
            rgba = np.concatenate([scene(t, 18, 26, t), np.full((18, 26, 1), 200, np.uint8)], axis=2)
            _write_png_as(tmp_path / "sequences" / cid / f"im{t}.png", rgba, pix)
    out = tmp_path / "r.json"
    code, text = _eval("--dataset", "vimeo-fast", "--data-root", tmp_path, "--model", "bicubic", "--limit", "3",
                       "--json", out, "-q", monkeypatch=monkeypatch)
    assert code == 0, text
    notices = json.loads(out.read_text())["notices"]
    assert notices == [
        f"ground-truth frames whose size is not a multiple of 4 (3 clip(s), first: {ids[0]} (26x18)): the LR frames "
        "are ceil(size / 4) (MATLAB imresize) and the 4x output is cropped to the ground truth's size",
        f"grayscale frames (2 clip(s), first: {ids[0]}/im2.png): the grey level is used as R, G and B",
        f"frames with an alpha channel (1 clip(s), first: {ids[1]}/im2.png): the alpha channel is dropped, "
        "colours are not composited",
    ]
    flat = " ".join(text.split())
    for notice in notices:
        assert flat.count(f"notice: {notice}") == 1
    plain = evaluate("vimeo-fast", tmp_path, BICUBIC, limit=1)
    assert len(plain.notices) == 2  # clip 1 alone: its size and its grey frames


# --- progress in a log -------------------------------------------------------------------------------


class _Clip:
    def __init__(self, name, frames, psnr_y):
        self.name, self.frames, self._p = name, [{}] * frames, psnr_y

    def mean(self, metric):
        return self._p


def test_progress_line_counts_frames_and_clips_with_rate_and_eta():
    now = [100.0]
    log = ProgressLog("eval vimeo-fast", clips=10, frames=70, interval=60, stream=io.StringIO(),
                      clock=lambda: now[0])
    assert "0 of 10 clips, 0 of 70 frames (0.0%)" in log.line() and "ETA after the first frames" in log.line()
    for _ in range(3):
        log.frames_done(7)
        log.clip_done(_ + 1, 10, _Clip(f"c{_}", 7, 30.123))
    log.frames_done(4)  # a window of the fourth clip
    now[0] += 25.0
    line = log.line()
    assert ("eval vimeo-fast: 3 of 10 clips, 25 of 70 frames (35.7%), 1.00 frames/s, elapsed 0:00:25, "
            "ETA 0:00:45; last c2: 30.12 dB Y") in line
    log.clip_done(4, 10, _Clip("c3", 7, float("inf")))  # frames not told window by window (Ray): counted here
    assert "28 of 70 frames" in log.line() and "last c3: exact" in log.line()


def test_progress_lines_come_at_the_interval_while_a_clip_runs():
    stream = io.StringIO()
    with ProgressLog("eval vid4", clips=1, frames=9, interval=0.02, stream=stream) as log:
        deadline = time.monotonic() + 30
        while stream.getvalue().count("\n") < 4 and time.monotonic() < deadline:  # no clip finishes meanwhile
            time.sleep(0.01)
        log.frames_done(9)
        log.clip_done(1, 1, _Clip("walk", 9, 25.0))
    lines = stream.getvalue().splitlines()
    assert "eval vid4: starting, 1 clips, 9 frames; a line every 0.02 s" in lines[0]
    assert sum("0 of 1 clips, 0 of 9 frames" in line for line in lines) >= 3
    assert "1 of 1 clips, 9 of 9 frames (100.0%)" in lines[-1]


def test_cli_prints_progress_lines_when_stderr_is_not_a_terminal(tmp_path, monkeypatch):
    make_vid4(tmp_path, {"city": 8}, h=16, w=16)
    args = ("--dataset", "vid4", "--data-root", tmp_path, "--model", "bicubic", "--log-interval", "0.01")
    code, text = _eval(*args, monkeypatch=monkeypatch)  # CliRunner's stderr is not a terminal
    assert code == 0, text
    assert "eval vid4: starting, 1 clips, 8 frames" in text
    assert "eval vid4: 1 of 1 clips, 8 of 8 frames (100.0%)" in text and "ETA" in text
    code, text = _eval(*args, "-q", monkeypatch=monkeypatch)
    assert code == 0 and "eval vid4:" not in text and "measured" in text


def test_ray_runs_record_the_list_partial_run_and_provenance_too(tmp_path, ray_session, monkeypatch):
    ids = make_vimeo(tmp_path / "data", 2, "zip", h=16, w=24)
    (tmp_path / "l.txt").write_text(f"{ids[1]}\n")
    out = tmp_path / "r.json"
    code, text = _eval("--dataset", "vimeo-fast", "--data-root", tmp_path / "data", "--model", "bicubic", "--list",
                       tmp_path / "l.txt", "--json", out, "-q", "--ray", "--ray-workers", "1", monkeypatch=monkeypatch)
    assert code == 0, text
    data = json.loads(out.read_text())
    assert [c["name"] for c in data["clips"]] == [ids[1]] and data["partial"] and data["list"]["entries"] == 1
    assert [f["input"] for f in data["clips"][0]["frames"]] == [True, False] * 3 + [True]
    assert data["run"]["command"].startswith("stdan eval --dataset vimeo-fast") and data["schema_version"] == 2
    assert "1 of 1225" in text and "ZSM (paper) *" in text
