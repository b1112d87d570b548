"""DistributedDataParallel through torchrun: two gloo processes with half the global batch
each end with the weights of one process with the whole batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from training_data import one_torch_thread, vimeo_folder

from stdan_cli.model import STDAN
from stdan_cli.training import load_recipe, train
from stdan_cli.training.samples import VimeoSeptuplets

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_thread():
    yield from one_torch_thread()


@pytest.mark.slow
def test_two_torchrun_processes_equal_one_process_with_the_whole_batch(tmp_path):
    root = vimeo_folder(tmp_path / "vimeo", train=4, test=0)
    recipe_file = tmp_path / "tiny.json"
    # 3-frame samples keep it quick; no stochastic depth: each process draws its own drop masks (as the
    # official DDP run does), so with it a split batch is the same run in distribution, not bit for bit.
    # The mean loss: with the sum, Adam's first steps move every weight by about lr * sign(gradient), and
    # the weights whose gradient is near 0 flip with the summation order of a split batch.
    recipe_file.write_text(json.dumps({"base": "small", "frames": 3, "drop_path_rate": 0.0,
                                       "loss_reduction": "mean"}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "stdan_cli", "train", "--data-root", str(root), "--config", str(recipe_file),
               "--iterations", "2", "--batch-size", "2", "--crop", "8", "--log-every", "1", "--val-every", "0",
               "--workers", "0", "--device", "cpu", "--out", str(tmp_path / "ddp")]
    # Its own session: torchrun signals its workers' group when they end, and a run that times out
    # is killed with every worker (none left waiting in a collective to block the next run).
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"torchrun did not finish in 300 s: {err[-3000:]}")
    done = subprocess.CompletedProcess(command, proc.returncode, out, err)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("checkpoint") == 1  # only the main process reports

    recipe = load_recipe(str(recipe_file), iterations=2, batch_size=2, crop=8, log_every=1, val_every=0)
    single = train(recipe, VimeoSeptuplets.open(root, 3), tmp_path / "one", device="cpu")
    a = torch.load(tmp_path / "ddp" / "last.pth", weights_only=True)
    b = torch.load(single.checkpoint, weights_only=True)
    assert a["recipe"] == b["recipe"] and a["iteration"] == b["iteration"] == 2
    worst = max((a["params"][k] - b["params"][k]).abs().max().item() for k in b["params"])
    assert worst <= 1e-6, worst
    torch.manual_seed(0)
    start = STDAN(recipe.model).state_dict()  # the seeded initialisation both began from
    moved = max((b["params"][k] - start[k]).abs().max().item() for k in b["params"])
    assert moved > 1e-5, moved  # two Adam steps of lr ~1e-4 moved the weights: the comparison means something
    log = [json.loads(line) for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    one = [json.loads(line) for line in (tmp_path / "one" / "log.jsonl").read_text().splitlines()]
    assert [e["loss"] for e in log] == pytest.approx([e["loss"] for e in one], rel=1e-5)
