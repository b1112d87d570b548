"""STDAN in plain PyTorch (no compiled extensions), with checkpoint loading and inference.

- :class:`STDAN` / :class:`STDANConfig`: the network; ``STDAN()`` is the official configuration.
- :func:`load_model`: a checkpoint path or state_dict -> :class:`LoadedModel` (``.model`` in
  eval mode, ``.descriptor``).
- :func:`upscale_window`: one window of N frames of any size -> 2N-1 frames at 4x.
- :func:`read_state_dict`, :func:`describe_checkpoint`: safe reading and recognition of
  checkpoints; :class:`ModelDescriptor` tells the pipeline scale, size multiple and tiling advice;
  :func:`looks_like_html` spots a web page saved in place of a checkpoint.
"""

from stdan_cli.model.inference import FeatureCache, pad_to_multiple, upscale_window
from stdan_cli.model.loader import (
    LoadedModel,
    ModelDescriptor,
    check_state_dict,
    describe_checkpoint,
    describe_config,
    infer_config,
    load_model,
    looks_like_html,
    read_state_dict,
)
from stdan_cli.model.stdan_arch import STDAN, STDANConfig, output_positions

__all__ = [
    "STDAN",
    "STDANConfig",
    "ModelDescriptor",
    "LoadedModel",
    "load_model",
    "upscale_window",
    "FeatureCache",
    "pad_to_multiple",
    "read_state_dict",
    "describe_checkpoint",
    "describe_config",
    "check_state_dict",
    "infer_config",
    "looks_like_html",
    "output_positions",
]
