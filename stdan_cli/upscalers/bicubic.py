"""Bicubic x4 with averaged in-between frames: a fast preview and the baseline of ``eval``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Hashable, Sequence

import torch
import torch.nn.functional as F

from stdan_cli.errors import OptionError
from stdan_cli.model import ModelDescriptor, output_positions
from stdan_cli.upscalers.device import intra_op_threads
from stdan_cli.upscalers.transfer import to_device

BICUBIC_DESCRIPTOR = ModelDescriptor(
    architecture="bicubic",
    config=None,
    num_params=0,
    scale=4,
    size_multiple=1,
    tile_overlap=2,  # the bicubic kernel reaches 2 LR pixels
    bytes_per_pixel=7 * 16 * 3 * 4 * 2,  # 7 outputs at 16x the pixels, float32, plus a copy
    precisions=("fp32",),
    can_compare=False,  # --compare would put it beside itself
)


@dataclass
class BicubicUpscaler:
    """Bicubic x4 in space (PyTorch/OpenCV-style kernel, a = -0.75) and the average of
    neighbouring upscaled frames in time. Needs no weights."""

    descriptor: ModelDescriptor
    device: torch.device
    precision: str = "fp32"
    precision_why: str = ""  # one precision only
    name: str = "bicubic"
    notices: tuple[str, ...] = ()
    weights_sha256: str | None = None  # no weights
    threads: int | None = None  # PyTorch's intra-op threads during a call (None: PyTorch's choice)

    def reset(self) -> None:
        """Nothing is cached."""

    def __call__(
        self,
        frames: torch.Tensor,
        skip_outputs: int = 0,
        cache_key: Hashable = None,
        inputs_only: bool = False,
        frame_indices: Sequence[int] | None = None,
    ) -> torch.Tensor:
        with intra_op_threads(self.threads):
            return self._upscale(frames, skip_outputs, inputs_only)

    def _upscale(self, frames: torch.Tensor, skip_outputs: int, inputs_only: bool) -> torch.Tensor:
        b, n, c, h, w = frames.shape
        s = self.descriptor.scale
        x = to_device(frames, self.device).reshape(b * n, c, h, w)
        up = F.interpolate(x, scale_factor=s, mode="bicubic", align_corners=False).view(b, n, c, s * h, s * w)
        out = torch.empty(b, 2 * n - 1, c, s * h, s * w, device=self.device)
        out[:, 0::2] = up
        out[:, 1::2] = (up[:, :-1] + up[:, 1:]) / 2
        return out[:, output_positions(n, skip_outputs, inputs_only)]


def build_bicubic(weights: str | os.PathLike | None, device: torch.device, precision: str) -> BicubicUpscaler:
    if precision != "auto" and precision not in BICUBIC_DESCRIPTOR.precisions:
        raise OptionError(f"--model bicubic runs in {', '.join(BICUBIC_DESCRIPTOR.precisions)} only")
    return BicubicUpscaler(BICUBIC_DESCRIPTOR, device)
