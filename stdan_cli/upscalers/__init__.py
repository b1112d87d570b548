"""Upscalers: callables that turn one window of frames into its outputs.

- :func:`build_upscaler`: ``--model/--weights/--device/--precision/--threads`` -> an upscaler.
- :data:`UPSCALERS`: the named upscalers (``stdan``, ``bicubic``).
- :class:`Upscaler`: what the pipeline and the evaluation call.
"""

from stdan_cli._lazy import lazy_exports

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

__getattr__ = lazy_exports(__name__, {
    "Upscaler": "base",
    "weights_identity": "base",
    "BICUBIC_DESCRIPTOR": "bicubic",
    "BicubicUpscaler": "bicubic",
    "PRECISIONS": "precisions",
    "Precision": "precisions",
    "memory_budget": "device",
    "resolve_device": "device",
    "resolve_precision": "device",
    "intra_op_threads": "device",
    "UPSCALERS": "registry",
    "build_upscaler": "registry",
    "StdanUpscaler": "stdan",
})
