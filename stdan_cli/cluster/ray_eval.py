"""``stdan eval --ray``: clips scored by Ray actors, each with the model loaded once.

A clip's frames travel to a worker as file bytes (no shared filesystem is assumed); the
worker scores it with :func:`stdan_cli.evaluation.runner.evaluate_clip`, the function a
local run uses, so the scores are the same. Results are put back in the clips' order; saved
output images come back as PNG bytes and are written by the driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from stdan_cli.cluster.pool import WorkerPool
from stdan_cli.cluster.ray_job import agreed_description
from stdan_cli.cluster.session import WorkerLayout
from stdan_cli.cluster.workers import ClipWorker, Payload, WorkerSpec
from stdan_cli.errors import DatasetError
from stdan_cli.evaluation.datasets import Clip, select_clips
from stdan_cli.evaluation.protocol import DEGRADATIONS
from stdan_cli.evaluation.runner import ClipResult, DatasetResult
from stdan_cli.evaluation.saved_images import open_image_folder


def _clip_files(clip: Clip) -> tuple[list[tuple[str, bytes]], dict[int, tuple[str, bytes]] | None]:
    gt = [(p.name, p.read_bytes()) for p in clip.gt]
    lr = {i: (p.name, p.read_bytes()) for i, p in clip.lr.items()} if clip.lr is not None else None
    return gt, lr


def evaluate_on_ray(
    ray,
    dataset: str,
    data_root: str | Path,
    spec: WorkerSpec,
    layout: WorkerLayout,
    weights_path: Path | None = None,
    degradation: str = "bi",
    limit: int | None = None,
    save_images: str | Path | None = None,
    progress: Callable[[int, int, ClipResult], None] | None = None,
    clip_list=None,
    overwrite: bool = False,
) -> DatasetResult:
    """:func:`stdan_cli.evaluation.evaluate` with the clips spread over ``layout.workers`` actors."""
    if degradation not in DEGRADATIONS:
        raise DatasetError(f"unknown degradation '{degradation}'; use bi or bd")
    selection = select_clips(dataset, data_root, limit, clip_list)
    clips = list(selection.clips)
    save = open_image_folder(save_images, data_root, selection, overwrite) if save_images is not None else None
    weights = Payload(Path(weights_path).name, data=Path(weights_path).read_bytes()) if weights_path else None
    pool = WorkerPool(ray, ClipWorker, (spec, ray.put(weights) if weights else None), layout.workers,
                      {"num_cpus": layout.num_cpus, "num_gpus": layout.num_gpus})
    try:
        d = agreed_description(pool.call_all("describe"))
        results: dict[int, ClipResult] = {}

        def submit(actor, k: int):
            gt, lr = _clip_files(clips[k])
            return actor.evaluate.remote(clips[k].name, gt, lr, dataset, degradation, save is not None)

        def store(k: int, answer) -> None:
            clip_result, images = answer
            for relative, data in images:
                save.write(relative, data)
            results[k] = clip_result
            if progress:
                progress(len(results), len(clips), clip_result)

        pool.run(range(len(clips)), submit, store, label=lambda k: f"clip {clips[k].name}")
    except BaseException:
        pool.shutdown(graceful=False)
        raise
    pool.shutdown()
    result = DatasetResult(dataset, degradation, d.name, d.precision, d.device_type)
    result.clips = [results[k] for k in range(len(clips))]
    return result
