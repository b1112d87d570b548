"""Several processes through PyTorch's own launcher: ``torchrun`` sets RANK, WORLD_SIZE,
LOCAL_RANK and the rendezvous variables; each process trains on its share of every global
batch and DistributedDataParallel averages the gradients (NCCL on CUDA, gloo on the CPU)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from stdan_cli.errors import OptionError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def launched_world() -> World:
    """The process group torchrun describes in the environment (one process when absent)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        return World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError:
        raise OptionError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them)") from None


def process_device(device: torch.device, world: World) -> torch.device:
    """Under torchrun every process of a node takes the GPU of its LOCAL_RANK."""
    if device.type == "cuda" and world.distributed:
        return torch.device("cuda", world.local_rank)
    return device


def join(world: World, device: torch.device) -> None:
    if world.distributed and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def settle(world: World) -> None:
    """Give gloo's worker threads the GIL for a moment at the end of a run, before the DDP
    wrapper and its process group are freed. A thread releases a collective's tensors some time
    after the collective returns, and that release takes the GIL; freeing the process group
    joins the threads while holding the GIL, so a thread still waiting for it hangs the process
    for ever (seen with torch 2.13: a torchrun worker that never exits after its last
    iteration). A barrier does not help: gloo's barrier work holds the earlier works itself."""
    if world.distributed and dist.is_initialized():
        time.sleep(0.5)  # the GIL is released while sleeping


def leave(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def step_summary(loss: torch.Tensor, stop: bool, world: World) -> tuple[float, bool]:
    """The loss of the whole global batch (the mean over processes), and whether any process
    was asked to stop: one all-reduce, so every process stops after the same iteration."""
    if not world.distributed:
        return float(loss.detach()), stop
    t = torch.tensor([float(loss.detach()), 1.0 if stop else 0.0], dtype=torch.float64, device=loss.device)
    dist.all_reduce(t)
    return float(t[0]) / world.size, bool(t[1] > 0)
