"""The upscale pipeline: plan a run, then decode -> windows -> tiles -> upscaler -> encode.

- :func:`upscale_video`: ``stdan upscale`` as a function.
- :func:`plan_upscale` / :func:`run_plan`: the same in two steps.
- :class:`UpscaleOptions`, :data:`MODES`: what a user chooses.
- :mod:`~stdan_cli.pipeline.windows`, :mod:`~stdan_cli.pipeline.tiles`: temporal windows and
  spatial tiles; :mod:`~stdan_cli.pipeline.scenes`: scene cuts; :mod:`~stdan_cli.pipeline.background`:
  decode and encode threads. A run is carried out as a job of chunks (:mod:`stdan_cli.jobs`).
"""

from stdan_cli._lazy import lazy_exports

__all__ = [
    "upscale_video",
    "plan_upscale",
    "run_plan",
    "validate",
    "UpscalePlan",
    "UpscaleSummary",
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
    "UpscaleSummary": "run",
    "run_plan": "run",
    "upscale_video": "run",
})
