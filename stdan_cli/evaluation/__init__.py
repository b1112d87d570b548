"""Evaluation with the paper's protocol: MATLAB-style degradation, PSNR/SSIM on RGB and Y.

- :func:`evaluate`: score an upscaler on ``vimeo-fast|medium|slow`` or ``vid4``.
- :mod:`~stdan_cli.evaluation.metrics`, :mod:`~stdan_cli.evaluation.resize`: the protocol's
  functions, checked against the official helpers' outputs.
- :mod:`~stdan_cli.evaluation.protocol`: windows per dataset and how LR frames are made;
  :mod:`~stdan_cli.evaluation.datasets`: accepted layouts, ``--limit``/``--list`` selections;
  :mod:`~stdan_cli.evaluation.references`: published figures and their sources.
- :mod:`~stdan_cli.evaluation.provenance`: the weights' identity, versions, date, command;
  :mod:`~stdan_cli.evaluation.notices`: what the protocol assumed about the frames;
  :mod:`~stdan_cli.evaluation.progress_log`: progress lines for log files.
"""

from stdan_cli.errors import DatasetError
from stdan_cli.evaluation.datasets import DATASETS, ClipList, Selection, find_clips, read_clip_list, select_clips
from stdan_cli.evaluation.protocol import DEGRADATIONS
from stdan_cli.evaluation.runner import METRICS, ClipResult, DatasetResult, evaluate, write_json

__all__ = ["evaluate", "write_json", "find_clips", "select_clips", "read_clip_list", "ClipList", "Selection", "DATASETS", "DEGRADATIONS", "METRICS", "DatasetError", "ClipResult", "DatasetResult"]
