"""How far bf16 inference is from fp32 on the official parity cases.

    python benchmarks/bf16_accuracy.py

For each parity case (../shared/reference/parity_case_{a,b}.pt, run with the fixture
weights): relative L2 error of the bf16 output against the fp32 output, its max abs error,
and the share of STDFA's top-2 decisions (which 2 of the 9 deformable candidates each
pixel keeps) that differ between the two runs.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from stdan_cli.model import load_model, pad_to_multiple
from stdan_cli.model import stdfa as stdfa_module
from stdan_cli.model.precision import use_low_precision_matmuls

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def run_recording_topk(model, x):
    """Output of ``model(x)`` and the top-2 indices STDFA chose, in call order."""
    chosen, topk = [], torch.topk

    def recording(*args, **kwargs):
        values, idx = topk(*args, **kwargs)
        chosen.append(idx.transpose(1, 2).reshape(-1, 2))  # (pixels, the 2 kept)
        return values, idx

    stdfa_module.torch.topk = recording  # stdfa.py calls torch.topk through its module global
    try:
        with torch.inference_mode():
            return model(x), torch.cat(chosen)
    finally:
        stdfa_module.torch.topk = topk


def main() -> None:
    fp32 = load_model(REFERENCE / "parity_weights_fp16.pt").model
    bf16 = use_low_precision_matmuls(copy.deepcopy(fp32))
    print(f"{'case':>6} {'rel L2':>9} {'max abs':>9} {'top-2 changed':>14}")
    for name in ("a", "b"):
        x = pad_to_multiple(torch.load(REFERENCE / f"parity_case_{name}.pt", weights_only=True)["input"], 8)
        ref, ref_idx = run_recording_topk(fp32, x)
        out, idx = run_recording_topk(bf16, x)
        rel = ((out - ref).norm() / ref.norm()).item()
        # a decision is the unordered pair kept: compare sorted pairs
        changed = (ref_idx.sort(1).values != idx.sort(1).values).any(1).float().mean().item()
        print(f"{name:>6} {rel:9.2e} {(out - ref).abs().max().item():9.2e} {changed:13.2%}")


if __name__ == "__main__":
    main()
