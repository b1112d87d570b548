"""Moving frames between the host and the device.

On CUDA, host tensors are pinned (page-locked) so that copies run by DMA without an extra
staging copy, and are queued without blocking; the copy back waits for its own stream only.
Frames go back as 8- or 16-bit integers made on the device: a quarter (or half) of the
bytes of float32.
"""

from __future__ import annotations

import torch


def to_device(frames: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host frames -> float32 on ``device`` (pinned, non-blocking on CUDA)."""
    if device.type == "cuda" and frames.device.type == "cpu":
        return frames.pin_memory().to(device, torch.float32, non_blocking=True)
    return frames.to(device, torch.float32)


def quantize(frames: torch.Tensor, bit_depth: int) -> torch.Tensor:
    """Float RGB (unclamped) -> uint8 (8 bits) or uint16 (deeper) full-range codes, on the frames' device."""
    if bit_depth > 8:
        return (frames.clamp(0, 1) * 65535.0).round().to(torch.uint16)
    return (frames.clamp(0, 1) * 255.0).round().to(torch.uint8)


def to_host(frames: torch.Tensor) -> torch.Tensor:
    """Device frames -> a host tensor (into pinned memory on CUDA, then wait for that copy)."""
    if frames.device.type != "cuda":
        return frames.cpu()
    host = torch.empty(frames.shape, dtype=frames.dtype, pin_memory=True)
    host.copy_(frames, non_blocking=True)
    torch.cuda.current_stream(frames.device).synchronize()
    return host
