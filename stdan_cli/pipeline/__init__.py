"""The upscale pipeline: plan a run, then decode -> windows -> tiles -> upscaler -> encode.

- :func:`plan_upscale`, :func:`validate`: every check and decision before the first frame.
- :class:`UpscaleOptions`, :data:`MODES`: what a user chooses (the one options model).
- :mod:`~stdan_cli.pipeline.windows`, :mod:`~stdan_cli.pipeline.tiles`: temporal windows and
  spatial tiles; :mod:`~stdan_cli.pipeline.scenes`: scene cuts; :mod:`~stdan_cli.pipeline.background`:
  decode and encode threads.

Layer: below the jobs (:mod:`stdan_cli.jobs`, which carry a plan out as chunks), above the
upscalers and video I/O.
"""

from stdan_cli._lazy import lazy_exports

__all__ = [
    "plan_upscale",
    "validate",
    "UpscalePlan",
    "UpscaleOptions",
    "MODES",
    "Mode",
]

__getattr__ = lazy_exports(__name__, {
    "MODES": "options",
    "Mode": "options",
    "UpscaleOptions": "options",
    "UpscalePlan": "plan",
    "plan_upscale": "plan",
    "validate": "plan",
})
