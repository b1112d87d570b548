"""``stdan export`` as a function: the network's two parts written as ONNX files, then checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from stdan_cli.errors import OptionError

ONNX_INSTALL = ('stdan export needs onnx: pip install "onnx>=1.15" "onnxruntime>=1.17" (or, in the stdan-cli '
                'folder, pip install ".[onnx]")')


@dataclass(frozen=True)
class ExportRequest:
    out_dir: Path
    weights: str | None = None  # a path or a registry name; None: the default checkpoint (in the cache)
    precision: str = "fp32"
    size: tuple[int, int] | None = None  # fixed (height, width); None: dynamic
    window: int = 4
    check: bool = True  # run both files in ONNX Runtime and compare them with eager PyTorch
    overwrite: bool = False


def run_export(request: ExportRequest, phase: Callable[[str], None] = lambda name: None) -> Iterator[str]:
    """Export, then check; yields a line for each file written and each comparison, and tells
    ``phase`` when each step starts (loading, each part's export, the check: each can take minutes)."""
    from stdan_cli.model import load_model
    from stdan_cli.upscalers.engines import export_parts
    from stdan_cli.upscalers.engines.check import compare_with_eager
    from stdan_cli.weights import resolve_weights

    try:
        import onnx  # noqa: F401
    except ImportError:
        raise OptionError(ONNX_INSTALL) from None
    r = request
    phase("loading weights")
    model = load_model(resolve_weights(r.weights)).model

    def starting(spec) -> None:
        phase(f"exporting {spec.filename(r.window, r.precision)} (minutes for the official network)")

    for part in export_parts(model, r.out_dir, r.window, r.precision, r.size, r.overwrite, starting):
        yield (f"wrote {part.path} ({part.path.stat().st_size / 2**20:.1f} MiB, {part.seconds:.1f} s; "
               "onnx.checker passed)")
    if r.check:
        phase("checking against eager PyTorch in ONNX Runtime")
        yield from compare_with_eager(model, r.out_dir, r.window, r.precision, r.size)
