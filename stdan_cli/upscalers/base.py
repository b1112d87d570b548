"""What the pipeline and the evaluation ask of an upscaler."""

from __future__ import annotations

from typing import Hashable, Protocol, Sequence

import torch

from stdan_cli.model import ModelDescriptor


class Upscaler(Protocol):
    """Maps one window (B, N, 3, H, W) float32 RGB in [0, 1] (on the host) to (B, 2N-1, 3, sH, sW)
    float32 on the upscaler's ``device``, unclamped, in the order [in0, mid, in1, mid, ...].

    For a stream of overlapping windows, ``skip_outputs=k`` returns (and computes) only
    outputs k.. (the earlier ones came from the previous window), and calls with the same
    ``cache_key`` (e.g. a tile's index) encode a frame shared with the previous window once;
    ``frame_indices`` (the N frames' indices in the video) tells which frames are shared,
    else they are recognised by content.
    ``inputs_only=True`` returns (and computes) only the outputs at even positions, the input
    frames' times (:func:`stdan_cli.model.output_positions`).
    """

    name: str
    descriptor: ModelDescriptor
    device: torch.device
    precision: str  # as resolved for the device: fp32, tf32, bf16 or fp16
    precision_why: str  # why --precision auto chose it here, for the run's summary; "" when named
    notices: list[str]  # what the run should tell the user (e.g. windows redone in fp32)
    weights_sha256: str | None  # of the weights as loaded (see upscalers.stdan.state_dict_sha256); None: none
    threads: int | None  # PyTorch's intra-op threads during a call (None: PyTorch's choice), restored after it

    def reset(self) -> None:
        """Forget state carried between windows (the tiles changed)."""

    def __call__(
        self,
        frames: torch.Tensor,
        skip_outputs: int = 0,
        cache_key: Hashable = None,
        inputs_only: bool = False,
        frame_indices: Sequence[int] | None = None,
    ) -> torch.Tensor: ...


def weights_identity(upscaler: Upscaler) -> str | None:
    """What identifies the weights an upscaler runs (a job's manifest records it)."""
    return upscaler.weights_sha256
