"""Exported files against eager PyTorch: both parts run in ONNX Runtime on the CPU."""

from __future__ import annotations

from pathlib import Path

import torch

from stdan_cli.model import STDAN, output_positions
from stdan_cli.upscalers.engines.export import relative_l2
from stdan_cli.upscalers.engines.parts import FEATURES, RECONSTRUCT


def check_size(model: STDAN, size: tuple[int, int] | None) -> tuple[int, int]:
    """The fixed size, or 3x5 size multiples: not the traced 2x3, so a size frozen into the
    graph shows."""
    m = model.config.size_multiple
    return size if size is not None else (3 * m, 5 * m)


def compare_with_eager(model: STDAN, folder: str | Path, window: int, precision: str,
                       size: tuple[int, int] | None = None) -> list[str]:
    """One line per part: its relative L2 difference from eager float32 PyTorch (the skipped
    first output and the input-times-only variants are checked through ``positions``)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return ["not compared with eager: onnxruntime is not installed"]
    folder = Path(folder)
    h, w = check_size(model, size)
    x = torch.rand(1, window, 3, h, w, generator=torch.Generator().manual_seed(0))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    lines = []
    try:
        feats = ort.InferenceSession(str(folder / FEATURES.filename(window, precision)), options,
                                     providers=["CPUExecutionProvider"])
        recon = ort.InferenceSession(str(folder / RECONSTRUCT.filename(window, precision)), options,
                                     providers=["CPUExecutionProvider"])
        with torch.inference_mode():
            l1 = model.extract_features(x)
            got = torch.from_numpy(feats.run(None, {"frames": x[0].numpy()})[0])
            lines.append(f"features at {h}x{w}: relative L2 {relative_l2(got, l1[0]):.2e} against eager fp32")
            for skip, inputs_only in ((0, False), (1, False), (0, True)):
                pos = torch.tensor(output_positions(window, skip, inputs_only), dtype=torch.int64)
                out = recon.run(None, {"features": l1.numpy(), "positions": pos.numpy()})[0]
                ref = model.reconstruct(l1, skip, inputs_only)
                lines.append(f"reconstruct at {h}x{w}, outputs {pos.tolist()}: relative L2 "
                             f"{relative_l2(torch.from_numpy(out), ref):.2e} against eager fp32")
    except Exception as exc:  # e.g. an fp16 operator the CPU provider lacks
        lines.append(f"not compared with eager in ONNX Runtime's CPU provider: {str(exc).splitlines()[0][:160]}")
    return lines
