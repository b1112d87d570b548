"""Regional compilation for ``--backend compile``: ``torch.compile`` applied to the network's
repeated blocks, not to the whole network.

Compiling STDAN whole traces every one of its 48 Swin blocks, LSTFI's unrolled recurrence and
STDFA into one graph: on the project's 2-core CPU that had not finished in 30 minutes. The
time goes where the work repeats, so only the repeated blocks are compiled
(:data:`REGION_TYPES`, picked by type, so the model's files know nothing of compilation):

- :class:`~stdan_cli.model.swin.SwinBlock`: the encoder's and decoder's blocks (48 in the
  official network), norm, window attention and MLP, the non-matmul work that dominates a
  window once the matmuls are fast;
- :class:`~stdan_cli.model.pcd.LSTFIStep`: the alignment step LSTFI repeats 2(N-1) times a
  window (pyramid convolutions and deformable sampling).

Every instance of a type runs one compiled function: Dynamo compiles a module's code once and
passes each instance's parameters in as graph inputs (PyTorch's "regional compilation"
recipe). Shapes are dynamic (``dynamic=True``), and nothing in the compiled code depends on
the tile's size, so a fixed set of graphs serves every tile size, batch of tiles and number of
new frames: for a Swin block one graph with and one without the window shift, and that pair
again for a batch of one image (a single new frame's features, a single output: PyTorch
compiles a size of 1 apart); for LSTFI's step one graph. Two things would otherwise make
sizes part of the graph, and :func:`compile_regions` removes both:

- duck sizing: PyTorch gives dimensions of equal size one symbol, so a tile as high as the
  network has channels (64 rows, 64 channels) fixed its height to that number; regions are
  traced with duck sizing off;
- PyTorch's convolution picks its CPU kernel by the input's size (oneDNN above 20,480
  elements for a batch of one, its own kernel below), and a traced convolution keeps that
  choice as a guard, so every size band of LSTFI's pyramid levels compiled the step again.
  The convolutions inside the regions run as one opaque operator (:func:`region_conv2d`,
  ``F.conv2d`` itself, the same kernel choice at run time), whose output shape the trace
  computes without asking for the kernel.

What is left eager (convolutions at either end, STDFA, pixel shuffle) runs as in
``--backend torch``. Preparation time and speed against eager, measured: docs/performance.md.
"""

from __future__ import annotations

import types
from collections import Counter
from typing import Callable

import torch
import torch.fx.experimental._config as fx_config
import torch.nn.functional as F
from torch import nn

from stdan_cli.model.pcd import LSTFIStep
from stdan_cli.model.swin import SwinBlock

REGION_TYPES: tuple[type[nn.Module], ...] = (SwinBlock, LSTFIStep)


@torch.library.custom_op(
    "stdan_cli::region_conv2d", mutates_args=(),
    schema="(Tensor x, Tensor weight, Tensor? bias, int[] stride, int[] padding, int[] dilation, int groups) -> Tensor")
def region_conv2d(x, weight, bias, stride, padding, dilation, groups):
    """``F.conv2d`` as an operator the compiler does not look into (see the module docstring);
    its result contiguous, as its traced shape says."""
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups).contiguous()


@region_conv2d.register_fake
def _region_conv2d_shape(x, weight, bias, stride, padding, dilation, groups):
    b, _, h, w = x.shape
    kh, kw = weight.shape[2:]
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return x.new_empty((b, weight.shape[0], oh, ow))


def _conv_forward(self: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    return torch.ops.stdan_cli.region_conv2d(x, self.weight, self.bias, list(self.stride), list(self.padding),
                                             list(self.dilation), self.groups)


def compile_regions(model: nn.Module, mode: str | None = None) -> dict[str, int]:
    """Compile, in place, every submodule of ``model`` whose type is in :data:`REGION_TYPES`.
    Returns how many of each type were compiled; a module already compiled is left as it is, so
    calling this twice compiles nothing more.

    Each type's ``forward`` is compiled once (``torch.compile``, dynamic shapes) and every
    instance calls that one compiled function with itself as ``self``, traced without duck
    sizing; the regions' plain convolutions call :func:`region_conv2d`. Tensor inputs get the
    layout of a new tensor on the way in: LSTFI passes each frame's pyramid as a view into the
    window's features (or the feature cache's), and a graph keeps its inputs' storage offsets
    and strides as guards (the first frame's view at offset 0 compiled apart from the others,
    and a batch of one taken from a larger batch has a stride of its own).

    Graphs are also kept per number of PyTorch threads (Dynamo guards on it): the engine
    prepares and runs under the same ``--threads``."""
    done: Counter[str] = Counter()
    functions: dict[type, Callable] = {}
    for module in model.modules():
        kind = type(module)
        if isinstance(module, REGION_TYPES) and not getattr(module, "_compiled_region", False):
            if kind not in functions:
                functions[kind] = torch.compile(kind.forward, dynamic=True, mode=mode)
            for conv in module.modules():
                if type(conv) is nn.Conv2d and conv.padding_mode == "zeros" and not isinstance(conv.padding, str):
                    conv.forward = types.MethodType(_conv_forward, conv)
            module.forward = _with_standard_inputs(functions[kind], module)
            module._compiled_region = True
            done[kind.__name__] += 1
    return dict(done)


def _standard_layout(value):
    """A tensor with offset 0 and the strides of a new contiguous tensor (a copy where it has
    not: a view into a larger tensor, or a size-1 dimension with another stride, which
    ``contiguous()`` leaves as it is); tuples of tensors likewise."""
    if torch.is_tensor(value):
        standard = value.storage_offset() == 0 and value.stride() == _contiguous_strides(value.shape)
        return value if standard else value.clone(memory_format=torch.contiguous_format)
    if isinstance(value, tuple):
        return tuple(_standard_layout(v) for v in value)
    return value


def _contiguous_strides(shape: torch.Size) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def _with_standard_inputs(compiled: Callable, module: nn.Module) -> Callable:
    def forward(*args):
        with fx_config.patch(use_duck_shape=False):  # read when a call traces; see the module docstring
            return compiled(module, *(_standard_layout(a) for a in args))
    return forward


def compiled_graphs() -> int:
    """Graphs Dynamo has compiled in this process so far (all of them, not only the regions')."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def describe(regions: dict[str, int]) -> str:
    """``1 LSTFIStep, 48 SwinBlock`` (in the order the model holds them)."""
    return ", ".join(f"{count} {name}" for name, count in regions.items()) or "nothing"
