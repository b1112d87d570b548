"""Upscalers: callables that turn one window of frames into its outputs.

- :func:`build_upscaler`: ``--model/--weights/--device/--precision/--threads`` -> an upscaler.
- :data:`UPSCALERS`: the named upscalers (``stdan``, ``bicubic``).
- :class:`Upscaler`: what the pipeline and the evaluation call.
"""

from stdan_cli.upscalers.base import Upscaler, weights_identity
from stdan_cli.upscalers.bicubic import BICUBIC_DESCRIPTOR, BicubicUpscaler
from stdan_cli.upscalers.device import (
    PRECISIONS,
    Precision,
    intra_op_threads,
    memory_budget,
    resolve_device,
    resolve_precision,
)
from stdan_cli.upscalers.registry import UPSCALERS, build_upscaler
from stdan_cli.upscalers.stdan import StdanUpscaler

__all__ = [
    "build_upscaler",
    "UPSCALERS",
    "Upscaler",
    "StdanUpscaler",
    "BicubicUpscaler",
    "BICUBIC_DESCRIPTOR",
    "PRECISIONS",
    "resolve_device",
    "Precision",
    "resolve_precision",
    "memory_budget",
    "intra_op_threads",
    "weights_identity",
]
