"""The output's size: ``--outscale`` (resize the model's 4x frames) and ``--compare``
(a bicubic baseline beside the model's frames).

Resizing uses antialiased bicubic (PyTorch's ``antialias=True``: PIL's BICUBIC kernel, widened
by the reduction factor as MATLAB's ``imresize`` does). The 4x frames are always reduced, and a
kernel that is not widened aliases fine detail into moire. On real footage
(``benchmarks/outscale_filters.py``) it is the only filter within a few dB of the best against
both a box-average and a Lanczos-3 reference at every scale, and it runs in float on the
model's device, before the frames are rounded for encoding.
"""

from __future__ import annotations

import math

import av
import torch
import torch.nn.functional as F

DIVIDER_LEVEL = 0.5  # the seam of a --compare frame: one column of mid grey on each side


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def needs_even_size(pix_fmt: str) -> tuple[bool, bool]:
    """Whether ``pix_fmt`` subsamples chroma horizontally / vertically (its frames need an even
    width / height)."""
    fmt = av.VideoFormat(pix_fmt, 16, 16)
    chroma = [c for c in fmt.components if c.is_chroma]
    return any(c.width < 16 for c in chroma), any(c.height < 16 for c in chroma)


def output_size(width: int, height: int, outscale: float, even: tuple[bool, bool] = (False, False)) -> tuple[int, int]:
    """round(outscale x the input size); ``even`` asks for an even width/height (chroma
    subsampling), rounding to the nearest even number."""
    sizes = []
    for size, must_be_even in ((width, even[0]), (height, even[1])):
        exact = outscale * size
        sizes.append(max(2, 2 * _round_half_up(exact / 2)) if must_be_even else max(1, _round_half_up(exact)))
    return sizes[0], sizes[1]


def picture_size(width: int, height: int, outscale: float, pix_fmt: str) -> tuple[int, int]:
    """The model's frames after --outscale, for an encoder of ``pix_fmt``."""
    return output_size(width, height, outscale, needs_even_size(pix_fmt))


def frame_size(picture: tuple[int, int], compare: bool) -> tuple[int, int]:
    """The encoded frame: the picture, or two of them side by side with --compare."""
    width, height = picture
    return (2 * width if compare else width), height


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(K, 3, H, W) -> (K, 3, h, w) with antialiased bicubic; unchanged when the size matches."""
    width, height = size
    if frames.shape[-2:] == (height, width):
        return frames
    return F.interpolate(frames, size=(height, width), mode="bicubic", align_corners=False, antialias=True)


def side_by_side(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """(K, 3, h, w) twice -> (K, 3, h, 2w): ``left`` then ``right``, with a one-pixel grey line
    on each side of the seam."""
    out = torch.cat([left, right], dim=-1)
    w = left.shape[-1]
    out[..., w - 1 : w + 1] = DIVIDER_LEVEL
    return out
