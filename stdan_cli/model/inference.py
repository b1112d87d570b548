"""Running the network on one temporal window of frames of any size."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from stdan_cli.model.stdan_arch import STDAN


def pad_to_multiple(frames: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad the bottom and right of (..., H, W) up to multiples of ``multiple``."""
    h, w = frames.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if not (ph or pw):
        return frames
    lead = frames.shape[:-2]
    padded = F.pad(frames.reshape(-1, h, w), (0, pw, 0, ph))
    return padded.view(*lead, h + ph, w + pw)


@torch.inference_mode()
def upscale_window(model: STDAN, frames: torch.Tensor) -> torch.Tensor:
    """(B, N, 3, H, W) RGB in [0, 1], any H, W >= 1 -> (B, 2N-1, 3, sH, sW), unclamped.

    Frame order [in0, mid, in1, mid, ...]. Reproduces the official test-time path: zero-pad
    bottom/right to the model's size multiple, run, crop.
    """
    if frames.dim() != 5 or frames.shape[2] != 3:
        raise ValueError(f"expected frames shaped (B, N, 3, H, W), got {tuple(frames.shape)}")
    h, w = frames.shape[-2:]
    s = model.config.scale
    out = model(pad_to_multiple(frames, model.config.size_multiple))
    return out[..., : s * h, : s * w]
