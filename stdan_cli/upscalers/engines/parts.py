"""The two parts of the network an engine runs, as modules with plain tensor inputs.

The pipeline calls STDAN in two steps (see :func:`stdan_cli.model.upscale_window`): the
per-frame feature extraction, so that a frame shared by two overlapping windows is encoded
once (the feature cache), and the reconstruction of one window from its frames' features.
An engine replaces exactly these two calls, so tiles, the feature cache and chunks stay the
pipeline's.

The reconstruction takes the output positions it should make as an input tensor
(``positions``, int64): one graph serves every window variant the pipeline uses (all 2N-1
outputs, those after the ones an overlapping window already made, the input times only),
and outputs left out are not decoded. N (frames per window) is fixed in a graph: LSTFI's
recurrence is unrolled over the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from stdan_cli.model import STDAN


@dataclass(frozen=True)
class PartSpec:
    """One exported part: its file stem, input and output names, and which axes are dynamic."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic: dict  # input name -> {axis: description}

    def filename(self, window: int, precision: str) -> str:
        """``features-fp32.onnx``; the reconstruction names its window: ``reconstruct-n4-fp32.onnx``."""
        return f"{self.name}{f'-n{window}' if self.name == 'reconstruct' else ''}-{precision}.onnx"


FEATURES = PartSpec(
    "features", ("frames",), ("features",),
    {"frames": {0: "frames (B*N)", 2: "height", 3: "width"}},
)
RECONSTRUCT = PartSpec(
    "reconstruct", ("features", "positions"), ("outputs",),
    {"features": {0: "batch", 3: "height", 4: "width"}, "positions": {0: "outputs"}},
)
PARTS = (FEATURES, RECONSTRUCT)


class FeaturePart(nn.Module):
    """frames (F, 3, H, W) float32 in [0, 1], H and W multiples of the size multiple -> level-1
    features (F, nf, H, W): :meth:`STDAN.extract_features` of independent frames."""

    def __init__(self, model: STDAN):
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.model.extract_features(frames.unsqueeze(0))[0]


class ReconstructPart(nn.Module):
    """features (B, N, nf, H, W), positions (T,) int64 in 0..2N-2 -> frames (B, T, 3, sH, sW):
    :meth:`STDAN.reconstruct` making the outputs at ``positions`` (unclamped)."""

    def __init__(self, model: STDAN):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.model.decode(self.model.aggregate(features).index_select(1, positions))


def part_module(spec: PartSpec, model: STDAN) -> nn.Module:
    return (FeaturePart if spec is FEATURES else ReconstructPart)(model).eval()


