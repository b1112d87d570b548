"""Print the max abs error of this port against every official parity fixture.

    python benchmarks/parity_report.py        # needs ../shared/reference next to the repository
"""

from __future__ import annotations

from pathlib import Path

import torch

from stdan_cli.model import load_model, upscale_window
from stdan_cli.model.deform import deform_sample, modulated_deform_conv2d

REF = Path(__file__).resolve().parents[2] / "shared" / "reference"


def main() -> None:
    ops = torch.load(REF / "parity_ops.pt", weights_only=True)
    for c in ("dsp_v2_a", "dsp_v2_b"):
        out = deform_sample(ops[f"{c}.input"], ops[f"{c}.offset"], ops[f"{c}.mask"], ops[f"{c}.deformable_groups"])
        ref = ops[f"{c}.output"]
        print(f"{c:26s} max abs {(out.reshape(ref.shape) - ref).abs().max():.2e}")
    for c in ("modulated_deform_conv_a", "modulated_deform_conv_b"):
        out = modulated_deform_conv2d(ops[f"{c}.input"], ops[f"{c}.offset"], ops[f"{c}.mask"],
                                      ops[f"{c}.weight"], ops[f"{c}.bias"], ops[f"{c}.deformable_groups"])
        print(f"{c:26s} max abs {(out - ops[f'{c}.output']).abs().max():.2e}")
    model = load_model(REF / "parity_weights_fp16.pt").model
    for case in "ab":
        data = torch.load(REF / f"parity_case_{case}.pt", weights_only=True)
        err = (upscale_window(model, data["input"]) - data["output"]).abs()
        print(f"case {case} output              max abs {err.max():.2e}, mean {err.mean():.2e}")


if __name__ == "__main__":
    main()
