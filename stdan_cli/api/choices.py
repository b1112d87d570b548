"""What the command line offers, read from the tables that define it: modes, models, precisions,
backends, devices (and their one parser), datasets, deinterlacing, the defaults of the job options.

Importing this module loads no PyTorch (``stdan --help`` and option errors read it)."""

from __future__ import annotations

from stdan_cli.cluster.session import LOCAL
from stdan_cli.evaluation.datasets import DATASET_SPECS, DATASETS
from stdan_cli.evaluation.references import VID4_CLIPS
from stdan_cli.pipeline.options import CHUNK_SECONDS, MODES, SCENE_THRESHOLD
from stdan_cli.pipeline.scene_list import DEFAULT_THRESHOLD
from stdan_cli.pipeline.timecode import parse_time
from stdan_cli.upscalers.device_names import DEVICE_CHOICES, DEVICE_HELP, DEVICE_KINDS, parse_device
from stdan_cli.upscalers.engines.backends import BACKENDS
from stdan_cli.upscalers.precisions import PRECISIONS
from stdan_cli.upscalers.registry import UPSCALERS
from stdan_cli.video.deinterlace import DEINTERLACE_MODES

__all__ = ["BACKENDS", "CHUNK_SECONDS", "DATASETS", "DATASET_SPECS", "DEFAULT_THRESHOLD", "DEINTERLACE_MODES",
           "DEVICE_CHOICES", "DEVICE_HELP", "DEVICE_KINDS", "LOCAL", "MODES",
           "PRECISIONS", "SCENE_THRESHOLD", "UPSCALERS", "VID4_CLIPS", "parse_device", "parse_time"]
