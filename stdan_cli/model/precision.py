"""Mixed precision for inference: bfloat16 (or float16) matmuls, float32 everywhere else.

Autocast over the whole network turns every activation into bfloat16, and the rounding
accumulates along STDAN's long residual paths (relative L2 error 1.4e-2 on the parity
fixtures). Here only the heavy convolutions and linear layers compute in low precision:
their weights are stored in it, their input is cast on entry and their output cast back to
float32, so residual streams, normalisation, softmax, deformable offsets and sampling stay
in float32 (relative L2 error 7e-3, see tests/test_model_precision.py).
"""

from __future__ import annotations

import torch
from torch import nn

from stdan_cli.model.swin import Mlp, WindowAttention

# Layers that stay in float32: the shallow convolutions at either end of the two Swin bodies
# and the per-pixel q/k/v maps are cheap, and their rounding reaches the output most directly.
_KEEP_FP32 = ("conv_first", "feature_extraction.conv_", "feature_recon.conv_", "stdfa.qkv_maps")


def _to_low(dtype):
    return lambda module, args: tuple(a.to(dtype) if torch.is_tensor(a) else a for a in args)


def _to_fp32(module, args, output):
    return output.float()


def use_low_precision_matmuls(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> nn.Module:
    """Make the heavy Conv2d/Linear layers of ``model`` compute in ``dtype`` (in place)."""
    for module in model.modules():
        # Swin attention and MLP: the whole sub-layer, not each linear, runs in low precision
        # (they cast their input to their weights' dtype); the block adds the result to its
        # float32 residual stream.
        if isinstance(module, (WindowAttention, Mlp)) and getattr(module, "_low_precision", None) is None:
            module.to(dtype)
            module._low_precision = dtype
            for child in module.modules():
                child._low_precision = dtype
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear)) or name.startswith(_KEEP_FP32):
            continue
        if getattr(module, "_low_precision", None) is not None:
            continue
        module.to(dtype)
        module.register_forward_pre_hook(_to_low(dtype))
        module.register_forward_hook(_to_fp32)
        module._low_precision = dtype
    return model
