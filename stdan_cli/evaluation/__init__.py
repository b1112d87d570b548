"""Evaluation with the paper's protocol: MATLAB-style degradation, PSNR/SSIM on RGB and Y.

- :func:`evaluate`: score an upscaler on ``vimeo-fast|medium|slow`` or ``vid4``.
- :mod:`~stdan_cli.evaluation.metrics`, :mod:`~stdan_cli.evaluation.resize`: the protocol's
  functions, checked against the official helpers' outputs.
"""

from stdan_cli.evaluation.datasets import DATASETS, DatasetError, find_clips
from stdan_cli.evaluation.runner import METRICS, ClipResult, DatasetResult, evaluate, write_json

__all__ = ["evaluate", "write_json", "find_clips", "DATASETS", "METRICS", "DatasetError", "ClipResult", "DatasetResult"]
