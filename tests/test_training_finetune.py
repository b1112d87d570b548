"""Fine-tuning on footage: septuplets never span a scene cut, a few are held out and scored
before and after, and the result loads in `stdan upscale` and `stdan eval` as it is."""

from __future__ import annotations

import hashlib
import json

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from scene_media import shots
from training_data import moving_frames, one_torch_thread, vimeo_folder

from stdan_cli.cli.main import main
from stdan_cli.errors import DatasetError
from stdan_cli.model import STDAN, STDANConfig, load_model
from stdan_cli.training.footage import prepare_footage, video_septuplets


@pytest.fixture(autouse=True)
def _one_thread():
    yield from one_torch_thread()


def write_clip(path, frames, rate=25):
    """Frames (H, W, 3) uint8 as an H.264 4:4:4 clip, lossless in YUV."""
    with av.open(str(path), "w") as c:
        stream = c.add_stream("libx264", rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt, stream.options = "yuv444p", {"qp": "0"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(packet)
        for packet in stream.encode(None):
            c.mux(packet)
    return path


def test_septuplets_never_span_a_scene_cut(tmp_path):
    frames, cuts = shots([12, 9, 16], size=(64, 48))  # cuts at 12 and 21
    clip = write_clip(tmp_path / "shots.mp4", frames)
    found: set[int] = set()
    septuplets = list(video_septuplets(clip, 0, cuts=found))
    assert found == set(cuts)
    firsts = [s.first for s in septuplets]
    assert firsts == [0, 12, 21, 28]  # 7..11 and 35..36 are too short; 19..20 are left before the cut
    for s in septuplets:
        assert not any(s.first < c <= s.first + 6 for c in cuts)
        # the right frames (RGB -> YUV 4:4:4 -> RGB rounds by a level or two)
        assert np.abs(s.frames[0].astype(int) - frames[s.first]).max() <= 2 and s.frames.shape == (7, 48, 64, 3)
    footage = prepare_footage([clip], tmp_path / "out", holdout=1)
    # the held-out septuplet (21) and its neighbour in the same scene (28) are not trained on
    assert [c.name for c in footage.held] == ["v0-f000021"] and footage.cuts == 2
    assert [p.name for p in footage.train] == ["v0-f000000.npy", "v0-f000012.npy"]
    assert prepare_footage([clip], tmp_path / "out", holdout=1) == footage  # made once, then reused
    with pytest.raises(DatasetError, match="give 4 septuplet.*at least 5"):
        prepare_footage([clip], tmp_path / "other", holdout=4)


@pytest.mark.slow
def test_finetune_cli_scores_before_and_after_and_the_result_loads_in_upscale_and_eval(tmp_path):
    frames = moving_frames(3, 28, (64, 48))  # one scene: four septuplets
    clip = write_clip(tmp_path / "clip.mp4", frames)
    torch.manual_seed(0)
    start = tmp_path / "start.pth"
    torch.save(STDAN(STDANConfig.small()).state_dict(), start)
    out = tmp_path / "tuned"
    args = ["finetune", str(clip), "--from", str(start), "--out", str(out), "--iterations", "1", "--batch-size", "1",
            "--crop", "8", "--holdout", "1", "--workers", "0", "--device", "cpu"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "held-out before: PSNR-Y" in result.output and "held-out after:  PSNR-Y" in result.output
    # septuplets 0, 7, 14, 21: 14 held out, its neighbours 7 and 21 not trained on
    assert "1 training and 1 held-out septuplet(s) from 1 clip(s), 0 scene cut(s)" in result.output
    state = torch.load(out / "last.pth", weights_only=True)
    assert state["recipe"]["name"] == "finetune:official" and state["recipe"]["model"]["nf"] == 16
    assert state["finetune"]["from"] == str(start) and "val_psnr_y" in state["finetune"]["before"]
    assert state["finetune"]["from_sha256"] == hashlib.sha256(start.read_bytes()).hexdigest()
    assert json.loads((out / "run.json").read_text())["data"]["from_sha256"] == state["finetune"]["from_sha256"]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["iter"] == 1 and "val_psnr_y" in log[-1]

    assert load_model(out / "last.pth").descriptor.config == STDANConfig.small()  # strict loading
    small = write_clip(tmp_path / "small.mp4", moving_frames(4, 4, (24, 16)))
    up = CliRunner().invoke(main, ["upscale", str(small), str(tmp_path / "up.mkv"), "--weights",
                                   str(out / "last.pth"), "--device", "cpu", "--quiet"])
    assert up.exit_code == 0, up.output
    with av.open(str(tmp_path / "up.mkv")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (96, 64)
    vimeo = vimeo_folder(tmp_path / "vimeo", train=0, test=1, size=(32, 32))
    ev = CliRunner().invoke(main, ["eval", "--dataset", "vimeo-fast", "--data-root", str(vimeo), "--limit", "1",
                                   "--weights", str(out / "last.pth"), "--device", "cpu", "--quiet"])
    assert ev.exit_code == 0 and "measured" in ev.output, ev.output


@pytest.mark.parametrize("extra, message", [
    (["--from", "{tmp}/nothing.pth"], "does not exist"),
    (["--from", "{start}", "--config", "official", "{clip}"], "describes another network"),
    (["--from", "{start}", "--holdout", "9", "{clip}"], "at least 10 are needed"),
    (["--from", "{start}", "{tmp}/none.mp4"], "does not exist"),
])
def test_finetune_mistakes_are_one_line(tmp_path, extra, message):
    clip = write_clip(tmp_path / "clip.mp4", moving_frames(1, 14, (64, 48)))
    start = tmp_path / "start.pth"
    torch.save(STDAN(STDANConfig.small()).state_dict(), start)
    extra = [a.format(tmp=tmp_path, start=start, clip=clip) for a in extra]
    videos = [] if any(a.endswith((".mp4",)) for a in extra) else [str(clip)]
    result = CliRunner().invoke(main, ["finetune", *videos, "--out", str(tmp_path / "o"), "--workers", "0",
                                       "--device", "cpu", "--quiet", *extra])
    lines = result.output.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], \
        result.output
