"""The training loop on the small network and tiny seeded data: learning, exact resumption,
the log and checkpoints, and the CLI's one-line errors."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner
from training_data import moving_frames, one_torch_thread, vimeo_folder

from stdan_cli.cli.main import main
from stdan_cli.errors import JobInterrupted, JobMismatch
from stdan_cli.model import load_model
from stdan_cli.training import load_recipe, lr_at, train
from stdan_cli.training.samples import GlobalBatches, VimeoSeptuplets


@pytest.fixture(autouse=True)
def _one_thread():
    yield from one_torch_thread()


class Frozen:
    """One septuplet of 32x32 frames: with crop 8 and no augmentation, every batch is the same."""

    def __len__(self):
        return 1

    def frames(self, index):
        import numpy as np

        return np.stack(moving_frames(5, 7, (32, 32)))


def _losses(out):
    return [json.loads(line)["loss"] for line in (out / "log.jsonl").read_text().splitlines()]


def test_loss_falls_on_a_fixed_tiny_batch(tmp_path):
    # 3-frame samples (2 inputs, 3 outputs): the same network and loop at half the cost of 7
    recipe = load_recipe("small", iterations=3, batch_size=1, crop=8, frames=3, log_every=1, val_every=0,
                         use_flip=False, use_rot=False, random_reverse=False, periods=(1000,), restart_weights=(),
                         loss_reduction="mean", drop_path_rate=0.0)
    train(recipe, Frozen(), tmp_path / "run", device="cpu")
    losses = _losses(tmp_path / "run")  # the loss of each step's batch, before its update
    assert len(losses) == 3 and all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < losses[0] - 0.002, losses  # the official lr 2e-4: about 0.002 a step at first


def test_batches_depend_on_seed_and_iteration_only():
    one = list(GlobalBatches(5, 4, seed=0, start=0, stop=3))
    halves = [list(GlobalBatches(5, 4, seed=0, start=0, stop=3, rank=r, world=2)) for r in (0, 1)]
    assert [a + b for a, b in zip(*halves)] == one
    assert list(GlobalBatches(5, 4, seed=0, start=1, stop=3)) == one[1:]
    assert sorted(k for batch in one[:2] for k, _, _ in batch[:5])[:5] != []  # every septuplet is drawn per epoch
    epoch = [k for batch in one for k, _, _ in batch][:5]
    assert sorted(epoch) == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_a_killed_run_resumes_exactly(tmp_path):
    root = vimeo_folder(tmp_path / "vimeo", train=3, test=0)
    source = VimeoSeptuplets.open(root, frames_per_sample=3)
    recipe = load_recipe("small", iterations=2, batch_size=1, crop=8, frames=3, log_every=1, save_every=1, val_every=0)
    whole = train(recipe, source, tmp_path / "whole", device="cpu")

    # Ctrl-C (SIGINT) during iteration 1: it ends, is saved, and the run stops (pytest's handler is back after).
    def interrupt(step):
        if step.iteration == 1:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(JobInterrupted, match="interrupted at iteration 1 of 2; saved"):
        train(recipe, source, tmp_path / "cut", device="cpu", on_step=interrupt)
    with open(tmp_path / "cut" / "log.jsonl", "a") as f:
        f.write('{"iter": 2, "loss": 9')  # a line cut short, as a kill -9 while logging leaves it
    resumed = train(recipe, source, tmp_path / "cut", device="cpu", workers=1)  # batches do not depend on workers
    assert (resumed.resumed_from, resumed.iterations) == (1, 2)
    assert _losses(tmp_path / "cut") == _losses(tmp_path / "whole")
    a = torch.load(whole.checkpoint, weights_only=True)
    b = torch.load(resumed.checkpoint, weights_only=True)
    assert a["iteration"] == b["iteration"] == 2 and a["recipe"] == b["recipe"] == recipe.to_dict()
    assert all(torch.equal(a["params"][k], b["params"][k]) for k in a["params"])
    assert all(torch.equal(x, y) for k in a["optimizer"]["state"] for x, y in
               zip(a["optimizer"]["state"][k].values(), b["optimizer"]["state"][k].values()))
    assert b["scheduler"]["name"] == "CosineAnnealingLR_Restart" and set(b["rng"]) >= {"python", "numpy", "torch"}
    # last.pth is what --weights loads, strictly
    loaded = load_model(resumed.checkpoint)
    assert loaded.descriptor.config == recipe.model
    # the same folder with another recipe is refused before any work
    with pytest.raises(JobMismatch, match="another recipe.*batch_size 1 != 4"):
        train(load_recipe("small", iterations=2, batch_size=4, crop=8, frames=3, log_every=1, save_every=1, val_every=0),
              source, tmp_path / "cut", device="cpu")


def test_cli_trains_validates_and_logs(tmp_path):
    root = vimeo_folder(tmp_path / "vimeo", train=2, test=1)
    out = tmp_path / "run"
    args = ["train", "--data-root", str(root), "--config", "small", "--iterations", "2", "--batch-size", "1",
            "--crop", "8", "--out", str(out), "--workers", "0", "--device", "cpu", "--log-every", "1",
            "--val-every", "2", "--val-limit", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["iter"] for e in lines] == [1, 2] and {"loss", "lr"} <= set(lines[0])
    assert "val_psnr_y" in lines[1] and "val_ssim_y" in lines[1]
    assert "iteration 2/2" in result.output and "checkpoint" in result.output  # plain lines: not a terminal
    again = CliRunner().invoke(main, args)  # the same command on a finished run: nothing to do
    assert again.exit_code == 0 and "already complete" in again.output


@pytest.mark.parametrize("args, message", [
    (["--data-root", "{tmp}/none"], "does not exist"),
    (["--data-root", "{tmp}"], "has no sep_trainlist.txt"),
    (["--data-root", "{vimeo}", "--crop", "12"], "multiple of 8"),
    (["--data-root", "{vimeo}", "--config", "{tmp}/missing.toml"], "not official, small, or an existing"),
    (["--data-root", "{vimeo}", "--batch-size", "3", "--crop", "64"], "too small for --crop 64"),
    (["--data-root", "{vimeo}", "--val-every", "5", "--val-list", "{tmp}/val.txt"], "1 of 1 vimeo-fast clips are missing"),
])
def test_cli_mistakes_are_one_line(tmp_path, args, message):
    vimeo = vimeo_folder(tmp_path / "vimeo", train=1, test=0)
    (tmp_path / "val.txt").write_text("00001/0625\n")
    args = [a.format(tmp=tmp_path, vimeo=vimeo) for a in args]
    result = CliRunner().invoke(main, ["train", "--config", "small", "--out", str(tmp_path / "o"), "--workers", "0",
                                       "--device", "cpu", "--val-every", "0", "--iterations", "1", *args])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.output


def test_a_damaged_frame_read_by_a_data_worker_is_one_line(tmp_path):
    root = vimeo_folder(tmp_path / "vimeo", train=3, test=0)
    (root / "sequences" / "00001" / "0002" / "im1.png").write_bytes(b"not a png")
    result = CliRunner().invoke(main, ["train", "--data-root", str(root), "--config", "small", "--iterations", "1",
                                       "--batch-size", "3", "--crop", "8", "--val-every", "0", "--workers", "1",
                                       "--device", "cpu", "--out", str(tmp_path / "o")])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith("error: cannot read image ") and "0002/im1.png: not a readable image" in lines[0]


def _run_args(root, out, *extra):
    return ["train", "--data-root", str(root), "--config", "small", "--batch-size", "1", "--crop", "8",
            "--out", str(out), "--workers", "0", "--device", "cpu", "--log-every", "1", *extra]


@pytest.mark.slow
def test_kept_best_and_ema_checkpoints_and_validation_images(tmp_path):
    root = vimeo_folder(tmp_path / "vimeo", train=2, test=1)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, _run_args(root, out, "--iterations", "4", "--save-every", "1", "--keep", "2",
                                                "--val-every", "2", "--val-limit", "1", "--ema", "0.9",
                                                "--val-images"))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["best.pth", "ema.pth", "iter_000003.pth", "iter_000004.pth", "last.pth", "log.jsonl", "run.json",
                     "val_images"], names
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    validated = [e for e in lines if "val_psnr_y" in e]
    assert [e["iter"] for e in validated] == [2, 4] and all("ema_val_psnr_y" in e for e in validated)
    best = torch.load(out / "best.pth", weights_only=True)
    top = max(validated, key=lambda e: e["val_psnr_y"])
    assert (best["iteration"], best["val_psnr_y"]) == (top["iter"], top["val_psnr_y"])
    assert load_model(out / "best.pth").descriptor.config == load_model(out / "ema.pth").descriptor.config
    last = torch.load(out / "last.pth", weights_only=True)
    ema = torch.load(out / "ema.pth", weights_only=True)
    assert all(torch.equal(last["ema"][k], ema["params"][k]) for k in ema["params"])
    assert not all(torch.equal(last["ema"][k], last["params"][k]) for k in ema["params"])
    for sub in ("iter_000002", "iter_000002_ema", "iter_000004", "iter_000004_ema"):  # the first clip's outputs
        clip = out / "val_images" / sub / "00001" / "0625"
        assert sorted(p.name for p in clip.iterdir()) == [f"im{k}.png" for k in range(1, 8)], sub
    assert json.loads((out / "run.json").read_text())["files"].count("iter_000001.pth") == 0  # removed and forgotten


@pytest.mark.slow
def test_a_run_continues_with_more_iterations_and_other_intervals(tmp_path):
    root = vimeo_folder(tmp_path / "vimeo", train=2, test=0)
    out = tmp_path / "run"
    assert CliRunner().invoke(main, _run_args(root, out, "--iterations", "2", "--val-every", "0")).exit_code == 0
    more = CliRunner().invoke(main, _run_args(root, out, "--iterations", "4", "--val-every", "0", "--log-every", "2"))
    assert more.exit_code == 0, more.output
    assert "continued with iterations 2 -> 4, log_every 1 -> 2" in more.output
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["iter"] for e in lines] == [1, 2, 2, 4]
    assert lines[2]["continued"] == {"iterations": [2, 4], "log_every": [1, 2]}
    assert lines[3]["seconds"] >= lines[1]["seconds"]  # cumulative over sessions
    # the schedule of the run stays: its one period of 2, then the official cosine climbs again
    saved = load_recipe("small", iterations=2, batch_size=1, crop=8)
    assert lines[3]["lr"] == pytest.approx(lr_at(replace(saved, iterations=4), 4))
    run = json.loads((out / "run.json").read_text())
    assert [s["from_iteration"] for s in run["sessions"]] == [0, 2] and run["recipe"]["iterations"] == 4
    refused = CliRunner().invoke(main, _run_args(root, out, "--iterations", "6", "--val-every", "0", "--seed", "1"))
    assert refused.exit_code != 0 and "seed 0 != 1" in refused.output


def test_validation_without_test_clips_is_a_notice(tmp_path):
    root = vimeo_folder(tmp_path / "vimeo", train=1, test=0)
    result = CliRunner().invoke(main, _run_args(root, tmp_path / "run", "--iterations", "1", "--val-every", "1"))
    assert result.exit_code == 0, result.output
    assert "notice: no vimeo-fast clips" in result.output and "--val-list" in result.output


def test_bd_degradation_makes_the_inputs_as_eval_does():
    import numpy as np

    from stdan_cli.evaluation.resize import blur_down
    from stdan_cli.training.samples import make_pair

    gt = np.stack(moving_frames(2, 3, (32, 32)))
    recipe = load_recipe("small", frames=3, crop=8, degradation="bd", use_flip=False, use_rot=False,
                         random_reverse=False)
    lq, _ = make_pair(gt, recipe, np.random.default_rng(0))
    expected = np.stack([blur_down(gt[i], 4) for i in (0, 2)])
    assert torch.equal(lq, torch.from_numpy(expected).permute(0, 3, 1, 2).float() / 255)
