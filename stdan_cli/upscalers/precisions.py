"""The ``--precision`` table. Kept free of torch so that ``--help`` can list it without loading
PyTorch; a row names its low-precision dtype and :attr:`Precision.matmul_dtype` gives the torch one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    """One row of the precision table."""

    name: str
    help: str
    low_dtype: str | None  # the heavy layers' torch dtype by name ("bfloat16"); None: float32
    tf32: bool = False  # let CUDA round float32 matmuls and convolutions to TF32
    why: str = ""  # why ``--precision auto`` resolved to this row on a device ("" when named)

    @property
    def matmul_dtype(self):
        """The heavy layers' ``torch.dtype``; None: float32."""
        if self.low_dtype is None:
            return None
        import torch

        return getattr(torch, self.low_dtype)


PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("auto", "bf16 on CPUs with native bfloat16 (AMX or AVX512-BF16), fp32 on other CPUs; "
                          "bf16 on GPUs that have it, else fp16", None),
        Precision("fp32", "float32 throughout, TF32 off (matches the reference)", None),
        Precision("tf32", "float32 with TF32 matmuls and convolutions (CUDA, Ampere and later)", None, tf32=True),
        Precision("bf16", "bfloat16 matmuls, float32 activations (about 0.7% relative difference)", "bfloat16"),
        Precision("fp16", "float16 matmuls, float32 activations (GPU only); a window whose output is not "
                          "finite is redone in fp32", "float16"),
    )
}
