"""Regional compilation for ``--backend compile``: ``torch.compile`` applied to the network's
repeated work, not to the whole network.

Compiling STDAN whole traces every one of its 48 Swin blocks, LSTFI's unrolled recurrence and
STDFA into one graph: on the project's 2-core CPU that had not finished in 30 minutes. The
time goes where the work repeats, so only that is compiled (:data:`REGIONS`, picked by type,
so the model's files know nothing of compilation): the step of a Swin block
(:meth:`~stdan_cli.model.swin.SwinBlock.step`: norm, window attention, residual, norm, MLP,
over one slice of windows), the non-matmul work that dominates a window once the matmuls are
fast. The block's loop over slices stays eager, so a step's temporaries stay in cache as they
do in eager PyTorch (compiling the whole block attended all windows at once and ran 2.6x
slower than eager; docs/performance.md).

Every block runs one compiled function: Dynamo compiles the method once and passes each
instance's parameters in as graph inputs (PyTorch's "regional compilation" recipe). A step
sees only (windows, tokens, channels) and its additive attention term, never the tile's size,
the shift or the batch, and its shapes are dynamic (``dynamic=True``), so one graph serves
every block, tile size, batch of tiles and number of frames. It is traced with duck sizing
off: PyTorch would otherwise give dimensions of equal size one symbol, and a slice of 64
windows (as many as a window has tokens) would be fixed to that number.

LSTFI's alignment step, the other repeated block, stays eager: compiled, it ran no faster
(3.47 against 3.49 s a step at 64x112) and took about 100 s of the preparation on 2 cores.
Everything else (convolutions at either end, STDFA, pixel shuffle) runs as in
``--backend torch``. Preparation time and speed against eager, measured: docs/performance.md.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import torch
import torch.fx.experimental._config as fx_config
from torch import nn

from stdan_cli.model.swin import SwinBlock

# The regions by type, and the method of each that is compiled.
REGIONS: dict[type[nn.Module], str] = {SwinBlock: "step"}


def compile_regions(model: nn.Module, mode: str | None = None) -> dict[str, int]:
    """Compile, in place, the region method of every submodule of ``model`` whose type is in
    :data:`REGIONS`. Returns how many of each type were compiled; a module already compiled is
    left as it is, so calling this twice compiles nothing more.

    Each type's method is compiled once (``torch.compile``, dynamic shapes, traced without
    duck sizing) and every instance calls that one compiled function with itself as ``self``.
    Graphs are also kept per number of PyTorch threads (Dynamo guards on it): the engine
    prepares and runs under the same ``--threads``."""
    done: Counter[str] = Counter()
    functions: dict[type, Callable] = {}
    for module in model.modules():
        kind = type(module)
        if kind in REGIONS and not getattr(module, "_compiled_region", False):
            method = REGIONS[kind]
            if kind not in functions:
                functions[kind] = torch.compile(getattr(kind, method), dynamic=True, mode=mode)
            setattr(module, method, _without_duck_sizing(functions[kind], module))
            module._compiled_region = True
            done[kind.__name__] += 1
    return dict(done)


def _without_duck_sizing(compiled: Callable, module: nn.Module) -> Callable:
    def call(*args):
        with fx_config.patch(use_duck_shape=False):  # read when a call traces; see the module docstring
            return compiled(module, *args)
    return call


def compiled_graphs() -> int:
    """Graphs Dynamo has compiled in this process so far (all of them, not only the regions')."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def describe(regions: dict[str, int]) -> str:
    """``48 SwinBlock`` (each type in the order the model holds them)."""
    return ", ".join(f"{count} {name}" for name, count in regions.items()) or "nothing"
