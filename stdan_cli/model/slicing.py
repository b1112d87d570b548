"""How much of a window the network processes at once, and when per-size tensors are cached.

Three steps of STDAN split their work into slices so that temporaries stay small: the Swin
blocks attend a few windows at a time (as many as a number of bytes of attention logits
holds), STDFA samples the key candidates of a few frame pairs at a time, and the deformable
convolution forms the columns of a few batch items at a time.
The slicing never changes the result (tests hold each sliced form equal to the unsliced
one); it only decides memory traffic and peak memory, so the best sizes depend on the device.
:class:`SlicePolicy` gathers the three sizes; :data:`CPU_SLICES` is the default, tuned on CPU
(L2-cache-sized Swin steps, ~100 MB of sampled candidates). A caller sets another policy per
device with :meth:`stdan_cli.model.STDAN.set_slice_policy`.

While the model is traced (``torch.jit.trace``) or compiled/exported (``torch.export``,
``torch.compile``) nothing is sliced and nothing is cached: every size-dependent tensor is
computed in the graph from the traced height and width, so one graph serves every size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable, TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class SlicePolicy:
    """Slice sizes of the three sliced steps; ``None`` means everything at once."""

    # Bytes of attention logits per Swin step, so that a step's temporaries stay in cache: 32
    # windows of the official 6 heads in float32, 64 in bfloat16 (measured fastest for each).
    swin_logit_bytes: int | None = 3 * 2**20
    stdfa_bytes: int | None = 96 * 2**20  # STDFA: bytes of sampled key candidates per step
    deform_column_bytes: int | None = 128 * 2**20  # DCNv2: bytes of deformable columns per step


CPU_SLICES = SlicePolicy()
UNSLICED = SlicePolicy(None, None, None)


def tracing() -> bool:
    """True while the model is traced, compiled or exported (then shapes may be symbolic)."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def active(policy: SlicePolicy) -> SlicePolicy:
    """The policy to apply now: unsliced while tracing (see the module docstring)."""
    return UNSLICED if tracing() else policy


def per_size(cache: dict, key: Hashable, build: Callable[[], T]) -> T:
    """``build()`` cached under ``key`` (a size and device), except while tracing.

    Built outside inference mode and without autograd, so the cached tensors can be used
    both under ``torch.inference_mode`` and in a forward pass that is later differentiated.
    """
    if tracing():
        return build()
    if key not in cache:
        with torch.inference_mode(False), torch.no_grad():
            cache[key] = build()
    return cache[key]
