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
recipe), so 48 blocks cost two graphs (with and without the window shift), and a third pair
for a batch of one image (a single new frame's features, a single output: PyTorch compiles a
size of 1 apart). Shapes are
dynamic (``dynamic=True``): another tile size, batch of tiles or number of new frames reuses
the graphs instead of compiling again. What is left eager (convolutions at either end,
STDFA, pixel shuffle) runs as in ``--backend torch``.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import torch
from torch import nn

from stdan_cli.model.pcd import LSTFIStep
from stdan_cli.model.swin import SwinBlock

REGION_TYPES: tuple[type[nn.Module], ...] = (SwinBlock, LSTFIStep)


def compile_regions(model: nn.Module, mode: str | None = None) -> dict[str, int]:
    """Compile, in place, every submodule of ``model`` whose type is in :data:`REGION_TYPES`.
    Returns how many of each type were compiled; a module already compiled is left as it is, so
    calling this twice compiles nothing more.

    Each type's ``forward`` is compiled once (``torch.compile``, dynamic shapes) and every
    instance calls that one compiled function with itself as ``self``. Its tensor inputs are
    made contiguous on the way in: LSTFI passes each frame's pyramid as a view into the
    window's features, and the first frame's view starting at offset 0 would otherwise be
    compiled apart from the others (PyTorch specialises sizes and offsets of 0 and 1)."""
    done: Counter[str] = Counter()
    functions: dict[type, Callable] = {}
    for module in model.modules():
        kind = type(module)
        if isinstance(module, REGION_TYPES) and not getattr(module, "_compiled_region", False):
            if kind not in functions:
                functions[kind] = torch.compile(kind.forward, dynamic=True, mode=mode)
            module.forward = _with_contiguous_inputs(functions[kind], module)
            module._compiled_region = True
            done[kind.__name__] += 1
    return dict(done)


def _contiguous(value):
    if torch.is_tensor(value):
        return value.contiguous()
    if isinstance(value, tuple):
        return tuple(_contiguous(v) for v in value)
    return value


def _with_contiguous_inputs(compiled: Callable, module: nn.Module) -> Callable:
    def forward(*args):
        return compiled(module, *(_contiguous(a) for a in args))
    return forward


def describe(regions: dict[str, int]) -> str:
    """``1 LSTFIStep, 48 SwinBlock`` (in the order the model holds them)."""
    return ", ".join(f"{count} {name}" for name, count in regions.items()) or "nothing"
