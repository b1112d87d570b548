"""Seconds per Vimeo-90K clip of `stdan eval` on this machine (official configuration).

    python benchmarks/bench_eval.py [--clips 2] [--precisions fp32,bf16] [--threads N]

Writes --clips synthetic septuplets of the official size (448x256 ground truth, so the
model sees 112x64 LR inputs and makes 448x256 outputs) in the `sequences/<id>/` layout to a
temporary folder, then runs :func:`stdan_cli.evaluation.evaluate` on them exactly as
`stdan eval --dataset vimeo-fast --limit N` does: reading, MATLAB-bicubic degradation, one
4-frame window per clip, scoring 7 frames on RGB and Y. One warm-up window first. Prints
wall seconds per clip, split into the model and the rest (I/O, degradation, metrics).

Weights: the parity fixture (official shapes, random values) from ../shared/reference;
speed does not depend on the values. Without it, a random initialisation is saved and used.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from stdan_cli.evaluation import evaluate
from stdan_cli.evaluation.datasets import vimeo_ids
from stdan_cli.evaluation.images import write_png
from stdan_cli.upscalers import build_upscaler

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO.parent / "shared" / "reference" / "parity_weights_fp16.pt"


def scene(t: int, h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([60 + 110 * xx / w, 40 + 130 * yy / h, 128 + 50 * np.sin(xx / 6.0 + yy / 9.0 + 0.3 * t)], -1)
    disc = (yy - h / 2 - 2 * t) ** 2 + (xx - w / 3 - 3 * t) ** 2 < (h / 6) ** 2
    img[disc] = [220, 60, 40]
    img += rng.normal(0, 3, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=2, help="clips timed per precision (default: %(default)s)")
    parser.add_argument("--precisions", default="fp32,bf16", help="(default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for n, cid in enumerate(vimeo_ids("vimeo-fast")[: args.clips]):
            for t in range(7):
                write_png(root / "sequences" / cid / f"im{t + 1}.png", scene(t, 256, 448, 10 * n + t))
        weights = FIXTURE
        if not FIXTURE.is_file():
            from stdan_cli.model import STDAN

            weights = root / "random.pth"
            torch.save(STDAN().state_dict(), weights)
        print(f"torch {torch.__version__}; weights: {'parity fixture' if weights == FIXTURE else 'random init'}; "
              f"{args.clips} clips of 448x256 (LR 112x64)")
        print(f"{'prec':>5} {'threads':>7} {'s/clip':>7} {'model':>7} {'other':>7}")
        for precision in args.precisions.split(","):
            up = build_upscaler("stdan", weights, "cpu", precision, args.threads)
            up(torch.rand(1, 4, 3, 64, 112))  # warm-up
            t = time.perf_counter()
            result = evaluate("vimeo-fast", root, up, limit=args.clips)
            per_clip = (time.perf_counter() - t) / args.clips
            model = result.model_seconds_per_clip
            print(f"{precision:>5} {torch.get_num_threads():>7} {per_clip:7.2f} {model:7.2f} {per_clip - model:7.2f}")


if __name__ == "__main__":
    main()
