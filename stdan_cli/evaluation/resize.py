"""Making low-resolution frames from ground truth, as the official data scripts do.

- BI: MATLAB ``imresize(img, 1/4, 'bicubic')`` with antialiasing (the official
  ``imresize_np``): the cubic kernel (a = -0.5) is widened by 1/scale when downscaling, weights
  are normalised per output pixel, borders are mirrored; the result is rounded to uint8.
- BD: a 7x7 Gaussian blur (sigma 1.6, replicated borders) then MATLAB ``imresize(..., 'nearest')``
  decimation by 4, which keeps pixels 4k + 2 (0-based) of each axis.
"""

from __future__ import annotations

import math

import numpy as np


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


def _resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool = True) -> np.ndarray:
    """(out_len, in_len) matrix of MATLAB's bicubic weights, mirrored borders folded in."""
    width = 4.0
    if scale < 1 and antialias:
        width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # 1-based input coordinate of each output pixel
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based
    dist = u[:, None] - idx
    w = scale * _cubic(dist * scale) if (scale < 1 and antialias) else _cubic(dist)
    w = w / w.sum(1, keepdims=True)
    idx0 = idx.astype(np.int64) - 1  # 0-based, then mirrored ('symmetric') into range
    idx0 = np.where(idx0 < 0, -idx0 - 1, idx0)
    idx0 = np.where(idx0 >= in_len, 2 * in_len - idx0 - 1, idx0)
    m = np.zeros((out_len, in_len))
    for j in range(taps):
        np.add.at(m, (np.arange(out_len), idx0[:, j]), w[:, j])
    return m


def imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB-style bicubic resize of an (H, W, C) float image; output size ceil(size*scale)."""
    h, w = img.shape[:2]
    mh = _resize_matrix(h, math.ceil(h * scale), scale)
    mw = _resize_matrix(w, math.ceil(w * scale), scale)
    rows = np.tensordot(mh, img.astype(np.float64), axes=(1, 0))  # (out_h, w, c)
    return np.tensordot(mw, rows, axes=(1, 1)).transpose(1, 0, 2)  # (out_h, out_w, c)


def bicubic_down(gt_u8: np.ndarray, factor: int = 4) -> np.ndarray:
    """BI degradation: uint8 RGB -> uint8 RGB at 1/factor, rounded as MATLAB returns uint8."""
    out = imresize(gt_u8.astype(np.float64) / 255.0, 1 / factor)
    return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)


def _gaussian_kernel(size: int = 7, sigma: float = 1.6) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    k = np.outer(g, g)
    return k / k.sum()


def blur_down(gt_u8: np.ndarray, factor: int = 4) -> np.ndarray:
    """BD degradation: 7x7 Gaussian blur (sigma 1.6, replicate borders), keep pixels 4k + 2."""
    k = _gaussian_kernel()
    r = k.shape[0] // 2
    img = gt_u8.astype(np.float64)
    padded = np.pad(img, ((r, r), (r, r), (0, 0)), mode="edge")
    h, w = img.shape[:2]
    blurred = np.zeros_like(img)
    for dy in range(k.shape[0]):
        for dx in range(k.shape[1]):
            blurred += k[dy, dx] * padded[dy : dy + h, dx : dx + w]
    offset = factor // 2  # MATLAB 'nearest' at 1/4 picks 1-based 4k + 3
    ys = np.arange(math.ceil(h / factor)) * factor + offset
    xs = np.arange(math.ceil(w / factor)) * factor + offset
    ys, xs = np.minimum(ys, h - 1), np.minimum(xs, w - 1)
    return np.clip(np.round(blurred[ys][:, xs]), 0, 255).astype(np.uint8)
