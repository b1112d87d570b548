"""The run folder of `stdan train` / `stdan finetune` is the tool's own: new or empty, or marked
by its run.json; a user's files there (a log.jsonl, a footage/ folder) are never rewritten or
removed, links are never followed, pipes never block, and checkpoints get the umask's
permissions. Tampered files and mistyped recipes are one `error:` line."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
from contextlib import contextmanager

import numpy as np
import pytest
from click.testing import CliRunner
from training_data import moving_frames, one_torch_thread, vimeo_folder

from stdan_cli.cli.main import main
from stdan_cli.errors import DatasetError
from stdan_cli.training.footage import prepare_footage


@pytest.fixture(autouse=True)
def _one_thread():
    yield from one_torch_thread()


@contextmanager
def deadline(seconds: int):
    """Fail instead of hanging (a FIFO opened for writing blocks until a reader comes)."""
    def expire(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _train(root, out, *extra):
    args = ["train", "--data-root", str(root), "--config", "small", "--iterations", "1", "--batch-size", "1",
            "--crop", "8", "--out", str(out), "--workers", "0", "--device", "cpu", "--val-every", "0",
            "--log-every", "1", "--save-every", "1", *extra]
    return CliRunner().invoke(main, args)


def _stopped_run(root, out):
    """A run of 2 iterations stopped (Ctrl-C) after the first: the same command continues it."""
    from stdan_cli.errors import JobInterrupted
    from stdan_cli.training import load_recipe, train
    from stdan_cli.training.samples import VimeoSeptuplets

    recipe = load_recipe("small", iterations=2, batch_size=1, crop=8, log_every=1, save_every=1, val_every=0)

    def interrupt(step):
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(JobInterrupted, match="interrupted at iteration 1 of 2"):
        train(recipe, VimeoSeptuplets.open(root), out, device="cpu", precision="fp32", on_step=interrupt)


def _one_error_line(result, *parts):
    lines = result.output.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert all(p in lines[0] for p in parts), result.output


def test_a_users_log_in_the_out_folder_is_never_rewritten(tmp_path):
    root = vimeo_folder(tmp_path / "vimeo", train=1, test=0)
    out = tmp_path / "run"
    out.mkdir()
    (out / "log.jsonl").write_text("my own notes\n{\"iter\": 5}\n")
    _one_error_line(_train(root, out), "has no run.json", "new or empty folder")
    assert (out / "log.jsonl").read_text() == "my own notes\n{\"iter\": 5}\n"
    assert sorted(p.name for p in out.iterdir()) == ["log.jsonl"]


def test_a_dangling_link_at_the_log_is_not_followed(tmp_path):
    root = vimeo_folder(tmp_path / "vimeo", train=1, test=0)
    out = tmp_path / "run"
    _stopped_run(root, out)  # a run of ours, then its log replaced by a dangling link
    (out / "log.jsonl").unlink()
    os.symlink(tmp_path / "target.txt", out / "log.jsonl")
    _one_error_line(_train(root, out, "--iterations", "2"), "log.jsonl is a link now")
    assert not (tmp_path / "target.txt").exists()


def test_a_fifo_at_the_log_is_refused_without_blocking(tmp_path):
    root = vimeo_folder(tmp_path / "vimeo", train=1, test=0)
    out = tmp_path / "run"
    _stopped_run(root, out)
    (out / "log.jsonl").unlink()
    os.mkfifo(out / "log.jsonl")
    with deadline(60):
        result = _train(root, out, "--iterations", "2")
    _one_error_line(result, "log.jsonl is a pipe or device now")


@pytest.mark.parametrize("line", [b'{"iter": "x"}\n', b'\xff\xfe{"iter": 1}\n'])
def test_a_tampered_log_line_is_one_error_line(tmp_path, line):
    root = vimeo_folder(tmp_path / "vimeo", train=1, test=0)
    out = tmp_path / "run"
    _stopped_run(root, out)
    with open(out / "log.jsonl", "ab") as f:
        f.write(line)
    _one_error_line(_train(root, out, "--iterations", "2"), "log.jsonl line 2 is not a line stdan train wrote")


@pytest.mark.parametrize("text, message", [
    ('base = "small"\nlr = "x"\n', "lr must be a number"),
    ('base = "small"\nbetas = [0.9]\n', "betas must hold 2 values"),
    ('base = "small"\n[model]\nnf = "x"\n', "model.nf must be int"),
])
def test_a_mistyped_recipe_is_one_line_and_makes_no_folder(tmp_path, text, message):
    root = vimeo_folder(tmp_path / "vimeo", train=1, test=0)
    recipe = tmp_path / "r.toml"
    recipe.write_text(text)
    out = tmp_path / "run"
    args = ["train", "--data-root", str(root), "--config", str(recipe), "--out", str(out), "--device", "cpu",
            "--val-every", "0", "--iterations", "1", "--batch-size", "1", "--crop", "8", "--workers", "0"]
    _one_error_line(CliRunner().invoke(main, args), message)
    assert not out.exists()


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_checkpoints_get_the_umask_permissions(tmp_path, umask):
    root = vimeo_folder(tmp_path / "vimeo", train=1, test=0)
    out = tmp_path / "run"
    before = os.umask(umask)
    try:
        result = _train(root, out)
    finally:
        os.umask(before)
    assert result.exit_code == 0, result.output
    for name in ("last.pth", "iter_000001.pth", "run.json"):
        assert stat.S_IMODE(os.stat(out / name).st_mode) == 0o666 & ~umask, name


def test_run_json_says_what_the_run_is(tmp_path):
    root = vimeo_folder(tmp_path / "vimeo", train=2, test=0)
    out = tmp_path / "run"
    assert _train(root, out).exit_code == 0
    run = json.loads((out / "run.json").read_text())
    assert run["recipe"]["batch_size"] == 1 and run["recipe"]["loss_reduction"] == "sum"
    assert run["data"]["list_sha256"] == hashlib.sha256((root / "sep_trainlist.txt").read_bytes()).hexdigest()
    assert run["data"]["data_root"] == str(root.resolve())
    session = run["sessions"][0]
    assert (session["world_size"], session["precision"], session["device"]) == (1, "fp32", "cpu")
    assert session["versions"]["torch"] and isinstance(session["argv"], list) and session["from_iteration"] == 0
    assert set(run["files"]) >= {"last.pth", "iter_000001.pth", "log.jsonl"}


def test_finetune_never_removes_a_footage_folder_it_did_not_make(tmp_path):
    from test_training_finetune import write_clip

    clip = write_clip(tmp_path / "c.mp4", moving_frames(1, 21, (32, 32)))
    out = tmp_path / "proj"
    footage = out / "footage"
    footage.mkdir(parents=True)
    # an index like the tool's (for other settings) beside a user's file
    (footage / "index.json").write_text(json.dumps({"signature": {"frames": 7}, "train": [], "held": [], "cuts": 0}))
    (footage / "camera.raw").write_bytes(b"raw camera file")
    with pytest.raises(DatasetError, match="holds files stdan finetune did not make"):
        prepare_footage([clip], out, holdout=1)
    assert (footage / "camera.raw").read_bytes() == b"raw camera file"
    # a set this tool made for other settings is replaced, name by name
    first = prepare_footage([clip], tmp_path / "own", holdout=1)
    again = prepare_footage([clip], tmp_path / "own", holdout=2)
    assert len(first.held) == 1 and len(again.held) == 2
    assert all(p.is_file() for p in again.train) and np.load(again.train[0]).shape[0] == 7


def test_finetune_refuses_a_project_folder_holding_a_users_footage(tmp_path):
    from test_training_finetune import write_clip

    clip = write_clip(tmp_path / "c.mp4", moving_frames(1, 21, (32, 32)))
    footage = tmp_path / "proj" / "footage"
    footage.mkdir(parents=True)
    (footage / "index.json").write_text("{}")
    (footage / "camera.raw").write_bytes(b"raw camera file")
    start = tmp_path / "start.pth"
    import torch

    from stdan_cli.model import STDAN, STDANConfig

    torch.save(STDAN(STDANConfig.small()).state_dict(), start)
    result = CliRunner().invoke(main, ["finetune", str(clip), "--from", str(start), "--out", str(tmp_path / "proj"),
                                       "--iterations", "1", "--batch-size", "1", "--crop", "8", "--holdout", "1",
                                       "--workers", "0", "--device", "cpu"])
    _one_error_line(result, "has no run.json")
    assert (footage / "camera.raw").read_bytes() == b"raw camera file"
    assert sorted(p.name for p in footage.iterdir()) == ["camera.raw", "index.json"]
