"""benchmarks/gpu_check.py, the script a person with a GPU runs, end to end on the CPU at a tiny size."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_runs_end_to_end_on_the_cpu(reference_dir):
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--fixtures", str(reference_dir),
         "--small", "--sizes", "16x16", "--precisions", "fp32,fp16", "--runs", "1", "--crop", "8"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "| parity case a (fp32, TF32 off) |" in out and "| parity case b (fp32, TF32 off) |" in out
    assert "FAIL" not in out and out.rstrip().endswith("parity: ok")
    for variant in ("bf16 (mixed", "fp16 (mixed", "autocast bf16", "model.to(torch.bfloat16)", "model.half()"):
        row = next(line for line in out.splitlines() if line.startswith(f"| {variant}"))
        value = row.split("|")[3].strip()
        assert float(value) < 2e-2, row  # finite and close: neither an error nor "not finite"
    assert "| 16x16 | fp32 |" in out and "| 16x16 | fp16 | skipped: --precision fp16 needs a GPU" in out
    assert "| engines | - | skipped: no CUDA device (cpu); name them with --engines | | |" in out
    assert "| eval: device's hardware name recorded |" in out


def test_gpu_check_eval_rows_for_a_model_on_another_device():
    """The GPU branch of check_eval_records, on PyTorch's meta device (no GPU here): CPU frames
    given to a model elsewhere must be refused with the call to make."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    rows = gpu_check.check_eval_records(torch.device("meta"))
    assert rows[1][0] == "upscale_window: CPU frames, model on meta" and rows[1][2] == "pass", rows
    assert gpu_check.check_eval_records(torch.device("cpu"))[0][2] == "pass"
