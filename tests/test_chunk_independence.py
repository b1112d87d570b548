"""A chunk's frames are a function of the chunk alone: one process, ``--part`` tasks and Ray
workers make the same frames because no chunk starts with features cached from the chunk
before it. Low precision needs this: bfloat16 rounds a frame's features differently when the
frame is computed in a batch of four than alone, so carried-over features change its outputs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
import torch
from job_runs import LOSSLESS, same_frames
from media import make_video
from scene_media import shots

from stdan_cli.api import upscale_video
from stdan_cli.cluster.parts import Part, PartExecutor
from stdan_cli.jobs import run_job
from stdan_cli.pipeline import plan_upscale
from stdan_cli.upscalers import build_upscaler

CHUNKS = dict(chunk_frames=3)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """Two shots (a cut at frame 9), 17 frames at 24x16: 6 chunks of 3 frames, 3 in each shot."""
    frames, _ = shots([9, 8], size=(24, 16))
    return make_video(tmp_path_factory.mktemp("clip") / "in.mkv", frames=frames, codec="ffv1", pix_fmt="yuv444p")


@dataclass
class HistoryDependent:
    """Bicubic, brightened by one code value per window since the last ``reset()``: an upscaler
    whose output depends on what it computed before, as low-precision feature reuse does."""

    inner: object = field(default_factory=lambda: build_upscaler("bicubic"))
    since_reset: int = 0

    def __getattr__(self, name):  # name, descriptor, device, precision... of the bicubic upscaler
        return getattr(self.inner, name)

    def reset(self) -> None:
        self.since_reset = 0

    def __call__(self, frames, *args, **kwargs) -> torch.Tensor:
        self.since_reset += 1
        return self.inner(frames, *args, **kwargs) + self.since_reset / 255


def parts_then_assemble(clip: Path, out: Path, upscaler, n: int) -> Path:
    options = replace(LOSSLESS, **CHUNKS)
    plan = plan_upscale(clip, out, upscaler.descriptor, options)
    for k in range(1, n + 1):
        run_job(plan, upscaler, PartExecutor(upscaler, Part(k, n)))
    upscale_video(clip, out, upscaler, options)  # assembles: every chunk is done
    return out


def test_every_chunk_starts_without_the_features_of_the_chunk_before(clip, tmp_path):
    upscaler = HistoryDependent()
    one = tmp_path / "one.mkv"
    summary = upscale_video(clip, one, upscaler, replace(LOSSLESS, **CHUNKS))
    assert (summary.chunks, summary.scenes) == (6, 2)
    assert same_frames(one, parts_then_assemble(clip, tmp_path / "parts.mkv", upscaler, 2))


@pytest.mark.slow
@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="this CPU runs no bfloat16")
def test_bf16_parts_make_the_frames_of_one_process(clip, tmp_path, weights):
    small = build_upscaler("stdan", weights=weights, device="cpu", precision="bf16", threads=1)
    one = tmp_path / "one.mkv"
    upscale_video(clip, one, small, replace(LOSSLESS, **CHUNKS))
    assert same_frames(one, parts_then_assemble(clip, tmp_path / "parts.mkv", small, 2))
