"""Evaluation with the paper's protocol: MATLAB-style degradation, PSNR/SSIM on RGB and Y.

- :func:`evaluate`: score an upscaler on ``vimeo-fast|medium|slow`` or ``vid4``.
- :mod:`~stdan_cli.evaluation.metrics`, :mod:`~stdan_cli.evaluation.resize`: the protocol's
  functions, checked against the official helpers' outputs.
- :mod:`~stdan_cli.evaluation.protocol`: windows per dataset and how LR frames are made;
  :mod:`~stdan_cli.evaluation.datasets`: accepted layouts; :mod:`~stdan_cli.evaluation.references`:
  published figures and their sources.
"""

from stdan_cli.errors import DatasetError
from stdan_cli.evaluation.datasets import DATASETS, find_clips
from stdan_cli.evaluation.protocol import DEGRADATIONS
from stdan_cli.evaluation.runner import METRICS, ClipResult, DatasetResult, evaluate, write_json

__all__ = ["evaluate", "write_json", "find_clips", "DATASETS", "DEGRADATIONS", "METRICS", "DatasetError", "ClipResult", "DatasetResult"]
