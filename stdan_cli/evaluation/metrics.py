"""PSNR and SSIM exactly as the official evaluation helpers compute them.

Per frame: the model output is clamped to [0, 1], scaled to 0-255 and rounded to uint8 (the
saved frame); PSNR on RGB at 0-255; Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 (MATLAB's
rgb2ycbcr luma, kept as a float); SSIM with an 11x11 Gaussian window (sigma 1.5),
C1 = (0.01*255)^2, C2 = (0.03*255)^2, 'valid' filtering, on RGB (mean over channels) and on Y.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def to_uint8(frame: np.ndarray | torch.Tensor) -> np.ndarray:
    """A model output (H, W, 3) or (3, H, W) float RGB -> the saved uint8 frame (H, W, 3).

    As the official ``tensor2img``: clamp to [0, 1] and ``(x * 255.0).round()`` in float32
    (numpy rounds half to even), then cast. Doing the product in float64 instead would round a
    few values per frame differently (those whose float32 product lands on k + 0.5).
    """
    if isinstance(frame, torch.Tensor):
        frame = frame.detach().float().cpu().numpy()
        if frame.ndim == 3 and frame.shape[0] == 3 and frame.shape[-1] != 3:
            frame = frame.transpose(1, 2, 0)
    x = np.clip(np.asarray(frame, dtype=np.float32), np.float32(0), np.float32(1))
    return np.round(x * np.float32(255.0)).astype(np.uint8)


def luma(rgb_u8: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr's Y channel (16-235) as float64, from uint8 RGB."""
    rgb = rgb_u8.astype(np.float64)
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR at peak 255 of two images on the 0-255 scale (inf when identical)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 20 * math.log10(255.0 / math.sqrt(mse))


def _gaussian_1d() -> torch.Tensor:
    x = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(x**2) / (2 * 1.5**2))
    return g / g.sum()


_G = _gaussian_1d()
_ROWS, _COLS = _G.view(1, 1, 11, 1), _G.view(1, 1, 1, 11)  # the 11x11 window, separated


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    x = torch.from_numpy(a.astype(np.float64))[None, None]
    y = torch.from_numpy(b.astype(np.float64))[None, None]
    # 'valid' filtering (the 5-pixel border is dropped); the five maps are filtered in one batch
    mu_x, mu_y, e_xx, e_yy, e_xy = F.conv2d(F.conv2d(torch.cat([x, y, x * x, y * y, x * y]), _ROWS), _COLS)
    s_xx, s_yy, s_xy = e_xx - mu_x**2, e_yy - mu_y**2, e_xy - mu_x * mu_y
    m = ((2 * mu_x * mu_y + _C1) * (2 * s_xy + _C2)) / ((mu_x**2 + mu_y**2 + _C1) * (s_xx + s_yy + _C2))
    return float(m.mean())


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two images on the 0-255 scale: (H, W) or (H, W, C) (mean over channels)."""
    if a.ndim == 2:
        return _ssim_plane(a, b)
    return float(np.mean([_ssim_plane(a[..., c], b[..., c]) for c in range(a.shape[2])]))


def frame_scores(output_u8: np.ndarray, gt_u8: np.ndarray) -> dict[str, float]:
    """PSNR/SSIM on RGB and Y of one saved output frame against its ground truth."""
    if output_u8.shape != gt_u8.shape:
        raise ValueError(f"output {output_u8.shape} and ground truth {gt_u8.shape} differ in size")
    y_out, y_gt = luma(output_u8), luma(gt_u8)
    return {
        "psnr": psnr(output_u8, gt_u8),
        "ssim": ssim(output_u8, gt_u8),
        "psnr_y": psnr(y_out, y_gt),
        "ssim_y": ssim(y_out, y_gt),
    }
