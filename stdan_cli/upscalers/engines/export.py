"""Writing the network's two parts as ONNX files, checked with ``onnx.checker``.

Exporter: PyTorch's TorchScript-based ``torch.onnx.export(dynamo=False)``, opset 17. The
dynamo exporter gives the same graph but took 155 s for the small configuration's feature
part on this project's 2-core machine where the TorchScript one took 2-6 s; sizes are traced
as tensors (the model computes every size-dependent tensor in the graph, see
:mod:`stdan_cli.model.slicing`), and the check below runs the file at a size other than the
one it was traced at, so a size frozen into the graph cannot pass unnoticed.

Shapes: height and width are dynamic by default (one file serves every tile shape and every
video; ONNX Runtime and OpenVINO on CPUs lose nothing by it), or fixed with ``size`` (static
shapes let TensorRT and NPUs plan once). The number of frames, the batch of windows and the
number of outputs stay dynamic; the frames per window (N) are fixed per reconstruction file.
Deformable sampling is ``GridSample`` (opset 16+), which ONNX Runtime, OpenVINO and
TensorRT >= 8.5 run.

Precisions: ``fp32``; ``fp16`` stores the heavy convolutions' and matmuls' weights in float16
and computes them in it, with float32 activations in between, exactly as ``--precision fp16``
does in PyTorch (:mod:`stdan_cli.model.precision`). Inputs and outputs are float32 in both.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from stdan_cli.errors import OptionError, OutputError
from stdan_cli.model import STDAN
from stdan_cli.safe_files import OutputAppeared, kind_of, put_in_place, remove_file
from stdan_cli.upscalers.engines.cache import new_file
from stdan_cli.upscalers.engines.parts import FEATURES, PARTS, RECONSTRUCT, PartSpec, part_module

OPSET = 17
EXPORT_PRECISIONS = ("fp32", "fp16")


@dataclass(frozen=True)
class ExportedPart:
    spec: PartSpec
    path: Path
    seconds: float


def exporter_version() -> str:
    """What the files depend on besides the weights: PyTorch's version and the opset."""
    return f"torch{torch.__version__.split('+')[0]}-opset{OPSET}"


def _example_size(model: STDAN, size: tuple[int, int] | None) -> tuple[int, int]:
    """The traced size: ``size`` when fixed; else 2x3 size multiples (small and unequal, so
    height and width cannot be confused and tracing is cheap)."""
    m = model.config.size_multiple
    if size is None:
        return 2 * m, 3 * m
    h, w = size
    if h % m or w % m or h <= 0 or w <= 0:
        raise OptionError(f"--size {h}x{w}: height and width must be positive multiples of {m}")
    return h, w


def _example(spec: PartSpec, model: STDAN, window: int, h: int, w: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    if spec is FEATURES:
        return (torch.rand(window, 3, h, w, generator=g),)
    # Batch 2: a size of 1 could be taken for a constant broadcast dimension.
    return torch.randn(2, window, model.config.nf, h, w, generator=g), torch.arange(2 * window - 1)


def precision_model(model: STDAN, precision: str) -> STDAN:
    """The model to export for ``precision`` (a copy for fp16; ``model`` itself for fp32)."""
    if precision not in EXPORT_PRECISIONS:
        raise OptionError(f"unknown export precision '{precision}'; use {' or '.join(EXPORT_PRECISIONS)}")
    if precision == "fp32":
        return model
    from stdan_cli.model.precision import use_low_precision_matmuls

    return use_low_precision_matmuls(copy.deepcopy(model), torch.float16)


def export_part(model: STDAN, spec: PartSpec, path: Path, window: int, size: tuple[int, int] | None = None) -> float:
    """Write one part to ``path`` (a file the caller created; see :func:`export_parts` for a
    complete-or-nothing write) and check it with ``onnx.checker``. Returns the seconds it took."""
    import onnx

    h, w = _example_size(model, size)
    dynamic = {name: {axis: label for axis, label in axes.items() if size is None or label not in ("height", "width")}
               for name, axes in spec.dynamic.items()}
    start = time.perf_counter()
    # TracerWarnings name every Python-level size computation; the graph is checked instead
    # (a size frozen into it fails the comparison at another size), so the user is spared them.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(part_module(spec, model), _example(spec, model, window, h, w), str(path), dynamo=False,
                          opset_version=OPSET, input_names=list(spec.inputs), output_names=list(spec.outputs),
                          dynamic_axes=dynamic)
    onnx.checker.check_model(str(path), full_check=True)
    return time.perf_counter() - start


def export_parts(
    model: STDAN,
    directory: str | os.PathLike,
    window: int = 4,
    precision: str = "fp32",
    size: tuple[int, int] | None = None,
    overwrite: bool = False,
    starting: Callable[[PartSpec], None] = lambda spec: None,
) -> list[ExportedPart]:
    """Both parts of ``model`` as ``directory/features-<precision>.onnx`` and
    ``directory/reconstruct-n<window>-<precision>.onnx`` (see the module docstring). Files
    already there (a link too) are refused unless ``overwrite``, which replaces them (a link
    itself, never its target); each appears complete or not at all, with the umask's
    permissions. ``starting(spec)`` is told when each part's export begins (each takes minutes)."""
    if window < 2:
        raise OptionError(f"--window must be at least 2 frames (got {window})")
    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} exists and is not a folder")
    existing = [folder / spec.filename(window, precision) for spec in PARTS
                if kind_of(folder / spec.filename(window, precision)) is not None]
    if existing and not overwrite:
        raise OutputError(f"{existing[0]} exists; use -y/--overwrite to replace it")
    net = precision_model(model.eval(), precision)
    folder.mkdir(parents=True, exist_ok=True)
    done = []
    for spec in PARTS:
        path = folder / spec.filename(window, precision)
        tmp = new_file(path)
        starting(spec)
        try:
            seconds = export_part(net, spec, tmp, window, size)
            put_in_place(tmp, path, overwrite)
        except OutputAppeared:
            raise OutputError(f"{path} appeared during the export; use -y/--overwrite to replace it") from None
        except IsADirectoryError:
            raise OutputError(f"{path} is a folder; remove it or pass another -o") from None
        finally:
            remove_file(tmp)
        done.append(ExportedPart(spec, path, seconds))
    return done


def relative_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b||, in float64."""
    a, b = a.detach().double(), b.detach().double()  # a comparison: never part of a graph
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


__all__ = ["OPSET", "EXPORT_PRECISIONS", "ExportedPart", "export_parts", "export_part", "exporter_version",
           "precision_model", "relative_l2", "RECONSTRUCT", "FEATURES"]
