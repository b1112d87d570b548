"""Synthetic footage with known scene structure: shots, cuts, a flash, a fade and a pan.

A shot is a smooth pattern of its own colours drifting slowly, so consecutive frames of a
shot differ a little (as real footage does) and two shots differ a lot.
"""

from __future__ import annotations

import numpy as np

SHOT_COLOURS = [
    ((200, 60, 40), (30, 40, 120)),
    ((40, 170, 60), (220, 210, 90)),
    ((30, 60, 210), (240, 140, 40)),
    ((150, 150, 150), (20, 20, 20)),
    ((220, 80, 200), (20, 120, 110)),
]


def shot_frame(shot: int, t: int, size: tuple[int, int] = (64, 48), drift: float = 0.6) -> np.ndarray:
    """Frame ``t`` of shot ``shot``: RGB uint8 (H, W, 3), a blend of the shot's two colours
    along a diagonal wave that moves by ``drift`` pixels a frame."""
    w, h = size
    a, b = (np.array(c, np.float32) for c in SHOT_COLOURS[shot % len(SHOT_COLOURS)])
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = (x + 0.5 * y + drift * t + 7 * shot) * (2 * np.pi / (w * (0.7 + 0.15 * shot)))
    mix = (0.5 + 0.5 * np.sin(phase))[..., None]
    return (a * mix + b * (1 - mix)).round().astype(np.uint8)


def shots(lengths: list[int], size: tuple[int, int] = (64, 48)) -> tuple[list[np.ndarray], list[int]]:
    """Consecutive shots of the given lengths -> (frames, true cuts: the first frame of every
    shot after the first)."""
    frames, cuts = [], []
    for s, n in enumerate(lengths):
        if s:
            cuts.append(len(frames))
        frames += [shot_frame(s, t, size) for t in range(n)]
    return frames, cuts


def with_flash(frames: list[np.ndarray], at: int) -> list[np.ndarray]:
    """One white frame replacing frame ``at`` (the frames around it belong to the same shot)."""
    out = list(frames)
    out[at] = np.full_like(frames[at], 255)
    return out


def fade_through_black(shot_a: int, shot_b: int, before: int, fade: int, after: int, size=(64, 48)) -> list[np.ndarray]:
    """Shot a, then ``fade`` frames darkening to black and ``fade`` frames brightening into shot b."""
    frames = [shot_frame(shot_a, t, size) for t in range(before)]
    for k in range(1, fade + 1):
        frames.append((shot_frame(shot_a, before + k, size) * (1 - k / fade)).round().astype(np.uint8))
    for k in range(1, fade + 1):
        frames.append((shot_frame(shot_b, k, size) * (k / fade)).round().astype(np.uint8))
    frames += [shot_frame(shot_b, fade + t, size) for t in range(after)]
    return frames


def pan(n: int, speed: float = 2.0, size=(64, 48)) -> list[np.ndarray]:
    """A camera panning across a wide textured scene at ``speed`` pixels a frame."""
    w, h = size
    scene_w = w + int(speed * n) + 2
    y, x = np.mgrid[0:h, 0:scene_w].astype(np.float32)
    r = 128 + 90 * np.sin(x / 9.0) * np.cos(y / 11.0)
    g = 128 + 80 * np.sin((x + y) / 13.0)
    b = 128 + 70 * np.cos(x / 17.0 - y / 7.0)
    wide = np.stack([r, g, b], -1).clip(0, 255)
    out = []
    for t in range(n):
        x0 = speed * t
        i = int(x0)
        f = x0 - i
        out.append(((1 - f) * wide[:, i : i + w] + f * wide[:, i + 1 : i + 1 + w]).round().astype(np.uint8))
    return out
