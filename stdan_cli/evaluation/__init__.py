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

from stdan_cli._lazy import lazy_exports

__all__ = ["evaluate", "write_json", "find_clips", "select_clips", "read_clip_list", "ClipList", "Selection", "DATASETS",
           "DEGRADATIONS", "METRICS", "DatasetError", "ClipResult", "DatasetResult"]

# Imported on first use: `stdan eval --help` reads DATASETS without loading PyTorch.
__getattr__ = lazy_exports(__name__, {
    "DATASETS": "datasets",
    "DatasetError": "datasets",
    "ClipList": "datasets",
    "Selection": "datasets",
    "find_clips": "datasets",
    "read_clip_list": "datasets",
    "select_clips": "datasets",
    "DEGRADATIONS": "protocol",
    "METRICS": "runner",
    "ClipResult": "runner",
    "DatasetResult": "runner",
    "evaluate": "runner",
    "write_json": "runner",
})
