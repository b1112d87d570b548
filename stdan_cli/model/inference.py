"""Running the network on one temporal window of frames of any size."""

from __future__ import annotations

from typing import Sequence

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


class FeatureCache:
    """Level-1 features of the previous window's frames, so that a frame shared by
    overlapping windows is encoded only once.

    One cache serves one stream of windows over the same region of a video (e.g. one tile).
    A cached frame is reused when its content is equal and, where the caller passes frame
    indices (their positions in the video), its index too: equal indices alone would trust a
    cache left by another video or another run. The cache keeps only the last window's frames.
    """

    def __init__(self) -> None:
        # (frame index or None, padded frame, its features) for the last window's frames
        self._entries: list[tuple[int | None, torch.Tensor, torch.Tensor]] = []
        self.encoded = 0  # frames actually encoded (for tests and statistics)

    def _lookup(self, index: int | None, frame: torch.Tensor) -> torch.Tensor | None:
        for known, cached, feat in self._entries:
            if cached.shape != frame.shape:
                continue
            if index is not None and known is not None and known != index:
                continue
            if torch.equal(cached, frame):
                return feat
        return None

    def features(
        self, model: STDAN, frames: torch.Tensor, frame_indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """(B, N, 3, H, W) padded frames -> (B, N, nf, H, W), reusing cached frames.

        ``frame_indices``: the N frames' indices in the video (equal indices mean the same
        frame); ``None`` matches frames by content instead.
        """
        n = frames.shape[1]
        if frame_indices is not None and len(frame_indices) != n:
            raise ValueError(f"{len(frame_indices)} frame indices for a window of {n} frames")
        indices = list(frame_indices) if frame_indices is not None else [None] * n
        found = [self._lookup(indices[t], frames[:, t]) for t in range(n)]
        missing = [t for t in range(n) if found[t] is None]
        if missing:
            new = model.extract_features(frames[:, missing])
            for i, t in enumerate(missing):
                found[t] = new[:, i]
            self.encoded += len(missing)
        self._entries = [(indices[t], frames[:, t], found[t]) for t in range(n)]
        return torch.stack(found, 1)


def check_frames(model: STDAN, frames: torch.Tensor) -> None:
    """Frames the model can take: floating point in [0, 1], of the model's ``frames_dtype`` and
    on its ``frames_device``. Raises TypeError/ValueError naming what to pass."""
    dtype, device = model.frames_dtype, model.frames_device
    if not frames.is_floating_point():
        raise TypeError(f"frames are {frames.dtype}; the model takes floating-point RGB in [0, 1]: pass "
                        f"frames.to({dtype}) / 255 for 8-bit frames")
    if frames.dtype != dtype:
        raise TypeError(f"frames are {frames.dtype} but the model's weights are {dtype}: pass "
                        f"frames.to({dtype}), or load the model with load_model(..., dtype={frames.dtype})")
    if frames.device != device:
        raise ValueError(f"frames are on {frames.device} but the model is on {device}: pass "
                         f"frames.to('{device}')")


@torch.inference_mode()
def upscale_window(
    model: STDAN,
    frames: torch.Tensor,
    skip_outputs: int = 0,
    cache: FeatureCache | None = None,
    inputs_only: bool = False,
    frame_indices: Sequence[int] | None = None,
) -> torch.Tensor:
    """(B, N, 3, H, W) RGB in [0, 1], any H, W >= 1 -> (B, 2N-1, 3, sH, sW), unclamped.

    Frame order [in0, mid, in1, mid, ...]. Reproduces the official test-time path: zero-pad
    bottom/right to the model's size multiple, run, crop. For a stream of overlapping windows,
    ``skip_outputs`` leaves out the first outputs (already produced by the previous window;
    they are not computed) and ``cache`` encodes each shared frame once, recognising shared
    frames by ``frame_indices`` (the frames' indices in the video) when given, else by
    content. ``inputs_only`` returns (and computes) only the outputs at the input frames' times.
    """
    if frames.dim() != 5 or frames.shape[2] != 3:
        raise ValueError(f"expected frames shaped (B, N, 3, H, W), got {tuple(frames.shape)}")
    check_frames(model, frames)
    h, w = frames.shape[-2:]
    s = model.config.scale
    padded = pad_to_multiple(frames, model.config.size_multiple)
    if cache is not None:
        l1 = cache.features(model, padded, frame_indices)
    else:
        l1 = model.extract_features(padded)
    out = model.reconstruct(l1, skip_outputs=skip_outputs, inputs_only=inputs_only)
    return out[..., : s * h, : s * w]
