"""Beyond one process: Ray workers and array-job parts give the frames of a one-process run.

Frames are compared exactly through a lossless codec (FFV1, 4:4:4); the model is the small
configuration with seeded random weights, one thread everywhere. Every Ray test shares the
session's local cluster (``ray_session``)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from eval_data import make_vimeo
from job_runs import LOSSLESS, LOSSLESS_ARGS, same_frames, stdan_command
from media import make_video
from scene_media import shots

from stdan_cli import __version__
from stdan_cli.api import upscale_video
from stdan_cli.cli import main
from stdan_cli.cluster import RayExecutor, WorkerLayout, WorkerSpec, evaluate_on_ray, plan_workers
from stdan_cli.cluster.parts import Part, PartExecutor, parse_part, publish_plan
from stdan_cli.cluster.ray_job import agreed_description
from stdan_cli.cluster.session import RayError
from stdan_cli.cluster.workers import WorkerDescription
from stdan_cli.errors import JobInterrupted, OptionError, OutputError
from stdan_cli.evaluation import evaluate
from stdan_cli.jobs import Workspace, prepare_job, run_job
from stdan_cli.jobs.runner import ChunkRunner, decode_and_plan
from stdan_cli.pipeline import plan_upscale
from stdan_cli.upscalers import build_upscaler
from stdan_cli.upscalers.device import CPU_MEMORY_BUDGET

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
CHUNKS = dict(chunk_frames=3)  # job options every test here uses
TWO_CPU_WORKERS = WorkerLayout(workers=2, device="cpu", threads=1, num_cpus=1, num_gpus=0)
SMALL_ON_CPU = WorkerSpec("stdan", "cpu", "fp32", threads=1)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """Two shots (a cut at frame 9), 17 frames at 24x16: 6 chunks of 3 frames."""
    frames, _ = shots([9, 8], size=(24, 16))
    return make_video(tmp_path_factory.mktemp("clip") / "in.mkv", frames=frames, codec="ffv1", pix_fmt="yuv444p")


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, clip, small) -> Path:
    out = tmp_path_factory.mktemp("one") / "one.mkv"
    summary = upscale_video(clip, out, small, replace(LOSSLESS, **CHUNKS))
    assert (summary.chunks, summary.scenes) == (6, 2)
    return out


@pytest.mark.slow
def test_ray_two_workers_parts_and_one_process_give_identical_frames(tmp_path, ray_session, clip, weights,
                                                                      one_process):
    # two array tasks at the same time on one work folder, then the run that assembles
    out = tmp_path / "parts.mkv"
    command = stdan_command(clip, out, weights, "--chunk-frames", "3")
    tasks = [subprocess.Popen(command + ["--part", f"{i}/2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=ENV) for i in (1, 2)]
    for task in tasks:
        _, err = task.communicate(timeout=240)
        assert task.returncode == 0, err
        assert "3 chunk(s) made, 0 done before, of its 3 (6 in the job)" in err
    work = tmp_path / ".parts.mkv.stdan-job"
    assert not out.exists() and len(list(work.glob("*.done.json"))) == 6
    assert not list(work.glob("*.tmp"))
    merged = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=240)
    assert merged.returncode == 0, merged.stderr
    assert "6 chunks, 6 resumed" in merged.stderr  # the merge made no chunk itself
    assert same_frames(one_process, out)

    # a local Ray cluster, 2 workers of 1 thread, through the CLI
    ray_out = tmp_path / "ray.mkv"
    result = CliRunner().invoke(main, ["upscale", str(clip), str(ray_out), "--weights", str(weights), "--device",
                                       "cpu", "--precision", "fp32", "--threads", "1", *LOSSLESS_ARGS,
                                       "--chunk-frames", "3", "--ray",
                                       "--ray-workers", "2"])
    assert result.exit_code == 0, result.output
    assert "6 chunks; 2 Ray workers" in result.output
    assert same_frames(one_process, ray_out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parts.mkv", "ray.mkv"]


def test_a_worker_killed_mid_job_has_its_chunks_redone_elsewhere(tmp_path, ray_session, clip, weights, one_process):
    out = tmp_path / "out.mkv"
    work = tmp_path / ".out.mkv.stdan-job"
    killed: list[int] = []
    with RayExecutor(ray_session, clip, SMALL_ON_CPU, TWO_CPU_WORKERS, weights) as workers:
        pool = workers.pool

        def kill_a_busy_worker() -> None:
            # once a chunk is stored, kill a worker that has chunks in flight: they are lost with it
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with pool.lock:
                    busy = list(pool.in_flight.values())
                    if busy and list(work.glob("*.done.json")):
                        actor = busy[-1][0]
                        killed.extend(unit for a, unit in busy if a == actor)
                        ray_session.kill(actor, no_restart=True)
                        return
                time.sleep(0.002)

        killer = threading.Thread(target=kill_a_busy_worker)
        killer.start()
        assert workers.upscaler.memory_budget == CPU_MEMORY_BUDGET  # as the workers reported it
        plan = workers.plan(clip, out, replace(LOSSLESS, **CHUNKS))
        summary = workers.run(plan)
        killer.join()
        # the chunks in flight on the killed worker were handed out again (later ones may have
        # been sent to it before the driver learnt of its death: those are redone too)
        assert killed and set(killed) <= set(pool.retried) and summary.retried == len(pool.retried)
        assert len(pool.actors) == 2  # the dead worker was replaced
    assert summary.chunks == 6 and summary.workers == 2
    assert same_frames(one_process, out)


def test_ctrl_c_on_the_driver_keeps_the_stored_chunks_and_the_next_run_resumes(tmp_path, ray_session, clip, weights,
                                                                                 one_process):
    out = tmp_path / "out.mkv"
    work = tmp_path / ".out.mkv.stdan-job"

    def ctrl_c_after_a_chunk(done: int, total) -> None:
        if done:
            raise KeyboardInterrupt

    with RayExecutor(ray_session, clip, SMALL_ON_CPU, TWO_CPU_WORKERS, weights) as workers:
        plan = workers.plan(clip, out, replace(LOSSLESS, **CHUNKS))
        with pytest.raises(JobInterrupted, match=r"1 chunk\(s\) done are kept .* run the same command again"):
            workers.run(plan, progress=ctrl_c_after_a_chunk)
    assert len(list(work.glob("*.done.json"))) == 1 and not out.exists()
    with RayExecutor(ray_session, clip, SMALL_ON_CPU, TWO_CPU_WORKERS, weights) as workers:
        summary = workers.run(plan)
    assert (summary.chunks, summary.resumed) == (6, 1)
    assert same_frames(one_process, out) and not work.exists()


def test_shared_input_is_read_at_its_path_by_the_workers(tmp_path, ray_session, clip):
    bicubic = build_upscaler("bicubic")
    reference = upscale_video(clip, tmp_path / "local.mkv", bicubic, replace(LOSSLESS, **CHUNKS))
    spec = WorkerSpec("bicubic", "cpu", "fp32", threads=1)
    with RayExecutor(ray_session, clip, spec, TWO_CPU_WORKERS, shared_input=True) as workers:
        assert ray_session.get(workers.pool.actors[0].input_path.remote()) == str(clip.resolve())
        plan = workers.plan(clip, tmp_path / "ray.mkv", replace(LOSSLESS, **CHUNKS))
        summary = workers.run(plan)
    assert summary.chunks == reference.chunks == 6
    assert same_frames(tmp_path / "local.mkv", tmp_path / "ray.mkv")


def test_eval_on_ray_gives_the_local_scores_and_images(tmp_path, ray_session, weights, small):
    make_vimeo(tmp_path / "data", 3, "zip", h=32, w=48)
    local = evaluate("vimeo-fast", tmp_path / "data", small, limit=3, save_images=tmp_path / "local")
    spread = evaluate_on_ray(ray_session, "vimeo-fast", tmp_path / "data", SMALL_ON_CPU, TWO_CPU_WORKERS, weights,
                             limit=3, save_images=tmp_path / "ray")
    assert [c.name for c in spread.clips] == [c.name for c in local.clips]
    assert [c.frames for c in spread.clips] == [c.frames for c in local.clips]
    assert spread.mean("psnr_y") == local.mean("psnr_y")
    images = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").rglob("*.png"))
    assert len(images) == 21
    assert images == sorted(p.relative_to(tmp_path / "ray") for p in (tmp_path / "ray").rglob("*.png"))
    assert all((tmp_path / "local" / p).read_bytes() == (tmp_path / "ray" / p).read_bytes() for p in images)


def test_eval_cli_with_ray(tmp_path, ray_session):
    make_vimeo(tmp_path, 2, "zip", h=32, w=48)
    args = ["eval", "--dataset", "vimeo-fast", "--data-root", str(tmp_path), "--limit", "2", "--model", "bicubic",
            "-q"]
    local = CliRunner().invoke(main, args)
    spread = CliRunner().invoke(main, args + ["--ray", "--ray-workers", "2"])
    assert local.exit_code == 0 and spread.exit_code == 0, spread.output
    measured = [line for line in local.output.splitlines() if "measured" in line]
    assert len(measured) == 1
    assert measured[0].rsplit(None, 1)[0] == next(line for line in spread.output.splitlines()
                                                  if "measured" in line).rsplit(None, 1)[0]  # s/clip apart


# --- array-job parts without Ray ----------------------------------------------------------------


def test_parts_share_one_manifest_and_a_requeued_part_skips_its_done_chunks(tmp_path, clip):
    bicubic = build_upscaler("bicubic")
    out = tmp_path / "out.mkv"
    plan = plan_upscale(clip, out, bicubic.descriptor, replace(LOSSLESS, **CHUNKS))
    # two tasks plan at once: the first to publish creates the manifest, the other checks against it
    jobs = [prepare_job(plan, bicubic) for _ in range(2)]
    spaces = [Workspace(job.work_dir, job.chunk_format.extension, shared=True) for job in jobs]
    for job, space in zip(jobs, spaces):
        decode_and_plan(job, ChunkRunner(job, space, None, wanted=lambda k: False))
        job.manifest.planned = True
        publish_plan(job, space)
    assert len(jobs[0].manifest.chunks) == 6 and jobs[1].manifest.chunks == jobs[0].manifest.chunks
    # a run without --part cannot start while a task holds the folder
    with pytest.raises(OutputError, match="another stdan run is using the work folder"):
        upscale_video(clip, out, bicubic, replace(LOSSLESS, **CHUNKS))
    for space in spaces:
        space.close()
    made = run_job(plan, bicubic, PartExecutor(bicubic, Part(2, 3)))
    assert (made.chunks, made.made, made.resumed) == (6, 2, 0)
    assert sorted(p.name for p in (tmp_path / ".out.mkv.stdan-job").glob("*.done.json")) == [
        "chunk-000001.done.json", "chunk-000004.done.json"]
    again = run_job(plan, bicubic, PartExecutor(bicubic, Part(2, 3)))
    assert (again.made, again.resumed) == (0, 2)
    summary = upscale_video(clip, out, bicubic, replace(LOSSLESS, **CHUNKS))
    assert (summary.chunks, summary.resumed) == (6, 2)


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_bad_part_refused(text):
    with pytest.raises(OptionError, match="use I/N"):
        parse_part(text)


@pytest.mark.parametrize("extra, message", [
    (["--part", "3/2"], "--part 3/2: use I/N with 1 <= I <= N"),
    (["--part", "1/2", "--ray"], "--part and --ray are two ways"),
    (["--part", "1/2", "--restart"], "--restart cannot be combined with --part"),
    (["--ray-workers", "2"], "--ray-workers needs --ray"),
])
def test_cluster_option_mistakes_are_one_line(tmp_path, clip, extra, message):
    result = CliRunner().invoke(main, ["upscale", str(clip), str(tmp_path / "o.mkv"), "--model", "bicubic", *extra])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.output and not (tmp_path / "o.mkv").exists()


def test_without_ray_installed_one_line_names_the_extra(tmp_path, clip, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    make_vimeo(tmp_path / "data", 1, "zip", h=32, w=48)
    for args in (["upscale", str(clip), str(tmp_path / "o.mkv"), "--model", "bicubic", "--ray"],
                 ["eval", "--dataset", "vimeo-fast", "--data-root", str(tmp_path / "data"), "--limit", "1",
                  "--model", "bicubic", "--ray", "auto"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1
        assert result.output == ('error: --ray needs Ray, which is not installed; install it with: '
                                 'pip install "ray>=2.9" (or, in the stdan-cli folder, pip install ".[ray]")\n')
    assert not (tmp_path / "o.mkv").exists()


def test_worker_layouts():
    assert plan_workers({"CPU": 2}) == WorkerLayout(1, "cpu", 2, 2, 0)
    assert plan_workers({"CPU": 2}, workers=2) == WorkerLayout(2, "cpu", 1, 1, 0)
    assert plan_workers({"CPU": 64, "GPU": 4}) == WorkerLayout(4, "cuda", 1, 1, 1)
    assert plan_workers({"CPU": 64, "GPU": 4}, "cuda:1", workers=2) == WorkerLayout(2, "cuda", 1, 1, 1)
    assert plan_workers({"CPU": 64, "GPU": 4}, "cpu", workers=4) == WorkerLayout(4, "cpu", 16, 16, 0)
    assert plan_workers({"CPU": 16}, "cpu", workers=1, largest_node=8) == WorkerLayout(1, "cpu", 8, 8, 0)
    with pytest.raises(OptionError, match="need 6 CPUs, at most 2 on one node; the cluster has 2"):
        plan_workers({"CPU": 2}, workers=3, threads=2)
    with pytest.raises(OptionError, match="need 8 CPUs, at most 4 on one node; the cluster has 8"):
        plan_workers({"CPU": 8}, workers=1, threads=8, largest_node=4)
    with pytest.raises(Exception, match="the Ray cluster has no GPUs"):
        plan_workers({"CPU": 8}, "cuda")


def test_the_driver_plans_with_the_workers_memory_not_its_own(tmp_path, clip):
    # Workers on GPUs, a driver without one: the plan must not ask this machine's CUDA.
    base = WorkerDescription(__version__, "stdan", "fp32", "cuda", build_upscaler("bicubic").descriptor, None, 8 * 2**30)
    agreed = agreed_description([base, replace(base, memory_budget=2 * 2**30)])
    assert agreed.memory_budget == 2 * 2**30  # descriptions differing only in free memory agree: the smallest
    with pytest.raises(RayError, match="do not run the same model"):
        agreed_description([base, replace(base, precision="bf16")])
    descriptor = replace(base.descriptor, bytes_per_pixel=2**20)  # a window of the 24x16 clip needs 384 MiB
    cuda = torch.device("cuda")
    small_budget = plan_upscale(clip, tmp_path / "a.mkv", descriptor, LOSSLESS, cuda, budget_bytes=2**27)
    large_budget = plan_upscale(clip, tmp_path / "a.mkv", descriptor, LOSSLESS, cuda, budget_bytes=2**30)
    assert len(small_budget.tiles) > 1 and len(large_budget.tiles) == 1
