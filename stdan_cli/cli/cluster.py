"""The options ``upscale`` and ``eval`` share to run beyond one process: ``--ray``,
``--ray-workers``, ``--shared-input`` and ``--part`` (checked together by
:class:`stdan_cli.api.Distribution`, which also sets the Ray workers up)."""

from __future__ import annotations

from typing import Callable

import click

from stdan_cli.api.choices import LOCAL

RAY_HELP = ("Run the model on Ray workers: without ADDRESS a Ray cluster of this machine's CPUs and GPUs "
            "is started (and stopped at the end); 'auto' joins the cluster this machine belongs to "
            "('ray start'), ray://HOST:PORT one elsewhere. ADDRESS is optional, so give --ray after the "
            "command's arguments, or as --ray=ADDRESS. Needs Ray: pip install \"ray>=2.9\". Default: no Ray.")
WORKERS_HELP = ("Ray workers (actors; each loads the model once). Default: one per GPU of the cluster, "
                "each owning its GPU; on CPUs 1, and N workers share the cores (--threads each, default "
                "the cluster's CPUs divided by N).")


def ray_option(fn: Callable) -> Callable:
    fn = click.option("--ray-workers", type=int, default=None, metavar="N", help=WORKERS_HELP)(fn)
    return click.option("--ray", "ray_address", is_flag=False, flag_value=LOCAL, default=None,
                        metavar="[ADDRESS]", help=RAY_HELP)(fn)


def cluster_options(fn: Callable) -> Callable:
    """--ray/--ray-workers/--shared-input/--part of ``upscale`` (passed as ray_address,
    ray_workers, shared_input, part)."""
    fn = click.option("--part", default=None, metavar="I/N",
                      help="Make only the chunks whose index mod N is I-1 (1-based I: the I-th, (I+N)-th... chunk) in the "
                           "work folder, shared with the other parts, and stop without assembling: one task of "
                           "a Slurm or Kubernetes array job (all tasks must see the work folder). The same "
                           "command without --part then assembles, making any chunk still missing. Default: "
                           "all chunks, then assemble.")(fn)
    fn = click.option("--shared-input", is_flag=True,
                      help="With --ray: every node reads INPUT at the same path (a shared filesystem), "
                           "instead of receiving a copy through Ray's object store. Default: a copy.")(fn)
    return ray_option(fn)
