"""Reading, recognising and loading STDAN checkpoints.

Like spandrel's loaders: a checkpoint is recognised by its keys, its hyper-parameters are read
from tensor shapes, every key and shape is then checked against that configuration, and
:func:`load_model` returns a :class:`LoadedModel`: the network beside a :class:`ModelDescriptor`
that tells the pipeline what it needs (scale, size multiple, tiling advice).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Union

import torch

from stdan_cli.errors import CheckpointError, WeightsNotFound
from stdan_cli.model.stdan_arch import STDAN, STDANConfig

StateDict = dict[str, torch.Tensor]
CheckpointSource = Union[str, os.PathLike, Mapping[str, torch.Tensor]]

_WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model")
_SIGNATURE_KEYS = ("conv_first.weight", "pcd_align_modified.fusion.weight", "stdfa.conv_first.weight")


@dataclass(frozen=True)
class ModelDescriptor:
    """What the pipeline needs to know about a network: every field is read by a caller
    (``config`` and ``num_params`` by weights verification, the rest by the upscaling pipeline
    and the upscaler builders: scale, tiling advice, memory, and the capabilities below)."""

    architecture: str  # "STDAN", or "bicubic" for the baseline
    config: STDANConfig | None  # None for models that are not STDAN (the bicubic baseline)
    num_params: int
    scale: int  # spatial factor
    size_multiple: int = 8  # H and W are zero-padded to a multiple of this
    # Tiling advice: LR pixels of overlap that keep tiled output within 1e-3 of untiled
    # (measured with the fixture weights: 16 px -> 9.5e-4, 24 px -> 3.7e-4 max abs), and the
    # peak memory of one window per LR pixel (measured: 1.17 GB at 128x224, 3.9 GB at 272x480).
    tile_overlap: int = 24
    bytes_per_pixel: int = 28_000
    # Capabilities the pipeline and the upscaler builders read (instead of checking the name):
    precisions: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16")  # what --precision may ask of it
    # --compare shows a plain bicubic resize beside the model: False where that is the model itself
    can_compare: bool = True


@dataclass(frozen=True)
class LoadedModel:
    """What :func:`load_model` returns: the network (eval mode) and its descriptor."""

    model: STDAN
    descriptor: ModelDescriptor


# A zip checkpoint may declare at most this many uncompressed bytes per byte of file, or the
# floor (small files): torch.save stores members uncompressed (declared ~ file size).
MAX_INFLATION = 4
INFLATION_FLOOR = 64 << 20

_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body")


def looks_like_html(head: bytes) -> bool:
    """Whether the first bytes of a file are a web page (a download that returned HTML)."""
    head = head.lstrip().lower()
    return head.startswith(_HTML_MARKERS) or any(m in head[:1024] for m in _HTML_MARKERS)


def _load_failure(path: Path, exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in words a user can act on."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head.strip():
        return "the file is empty"
    if looks_like_html(head):
        return "it is an HTML page, not a checkpoint (a download that returned a web page?)"
    if isinstance(exc, pickle.UnpicklingError) and "weights only" in str(exc).lower():
        return "it contains Python objects that could run code, not only weights; refusing to load it"
    if zipfile.is_zipfile(path) or head.lstrip().lower().startswith(b"pk"):
        return f"it is truncated or corrupt ({type(exc).__name__})"
    return f"it is not a PyTorch checkpoint, or it is truncated or corrupt ({type(exc).__name__})"


def _check_inflation(path: Path) -> None:
    """Refuse a zip checkpoint (PyTorch's format) whose members declare more uncompressed bytes
    than :data:`MAX_INFLATION` times the file's size (at least :data:`INFLATION_FLOOR`): a small
    file that would inflate to gigabytes in ``torch.load`` (a zip bomb). ``torch.save`` stores
    its members uncompressed, so a real checkpoint declares about its own size."""
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):  # not a zip, or torch.load says what is wrong
        return
    size = path.stat().st_size
    if declared > max(INFLATION_FLOOR, MAX_INFLATION * size):
        raise CheckpointError(f"cannot use {path}: its zip members would inflate to {declared:,} bytes from "
                              f"{size:,}; refusing to load it (a checkpoint is stored, not compressed)")


def load_checkpoint_file(path: str | os.PathLike) -> object:
    """What a checkpoint file holds, read with ``torch.load(weights_only=True)`` (a pickle that
    would run code is refused, and so is a zip that would inflate far beyond its size); a
    missing, unreadable, unsafe or oversized file is a one-line CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist" if not path.exists() else
                              f"checkpoint {path} is not a regular file (a folder, a pipe or a device)")
    _check_inflation(path)
    try:
        with warnings.catch_warnings():  # e.g. about a pickle protocol: the error below says what matters
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files; all mean "unusable"
        raise CheckpointError(f"cannot use {path}: {_load_failure(path, exc)}") from None


def read_state_dict(source: CheckpointSource) -> StateDict:
    """A plain ``{name: tensor}`` dict from a checkpoint path or an already-loaded dict.

    Uses ``torch.load(weights_only=True)``: a pickle that would run code is refused. Unwraps
    ``{"params": ...}``, ``{"params_ema": ...}``, ``{"state_dict": ...}`` and a ``module.`` prefix.
    """
    obj = load_checkpoint_file(source) if isinstance(source, (str, os.PathLike)) else source
    for key in _WRAPPER_KEYS:
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError("the checkpoint is not a state_dict (a mapping of names to tensors)")
    return {re.sub(r"^module\.", "", k): v for k, v in obj.items()}


def _count(keys, pattern: str) -> int:
    found = {int(m.group(1)) for k in keys if (m := re.match(pattern, k))}
    return max(found) + 1 if found else 0


def infer_config(sd: Mapping[str, torch.Tensor]) -> STDANConfig:
    """Read STDAN hyper-parameters from tensor shapes (raises CheckpointError if not STDAN)."""
    missing = [k for k in _SIGNATURE_KEYS if k not in sd]
    if missing:
        raise CheckpointError(f"not an STDAN checkpoint: no {', '.join(missing)} among its {len(sd)} keys")
    try:
        nf = sd["conv_first.weight"].shape[0]
        embed_dim = sd["feature_extraction.conv_first.weight"].shape[0]
        table = sd["feature_extraction.layers.0.residual_group.blocks.0.attn.relative_position_bias_table"]
        window_size = (int(round(table.shape[0] ** 0.5)) + 1) // 2
        fc1 = sd["feature_extraction.layers.0.residual_group.blocks.0.mlp.fc1.weight"]
        groups = sd["pcd_align_modified.L1_dcnpack_1.conv_offset.weight"].shape[0] // 27

        def depths(prefix: str) -> tuple[int, ...]:
            n_layers = _count(sd, rf"{prefix}\.layers\.(\d+)\.")
            return tuple(
                _count(sd, rf"{prefix}\.layers\.{i}\.residual_group\.blocks\.(\d+)\.") for i in range(n_layers)
            )

        stages = _count(sd, r"upsample\.(\d+)\.weight")
        return STDANConfig(
            nf=nf,
            embed_dim=embed_dim,
            num_heads=table.shape[1],
            window_size=window_size,
            mlp_ratio=fc1.shape[0] / embed_dim,
            encoder_depths=depths("feature_extraction"),
            decoder_depths=depths("feature_recon"),
            deformable_groups=groups,
            scale=2 ** ((stages + 1) // 2),
        )
    except (KeyError, IndexError) as exc:
        raise CheckpointError(f"not an STDAN checkpoint: missing {exc}") from None


def _list(names, limit: int = 5) -> str:
    names = sorted(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def check_state_dict(sd: Mapping[str, torch.Tensor], config: STDANConfig) -> None:
    """Every key and shape must equal those of ``STDAN(config)``; float values must be finite."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in STDAN(config).state_dict().items()}
    missing = expected.keys() - sd.keys()
    unexpected = sd.keys() - expected.keys()
    misshaped = [f"{k} {tuple(sd[k].shape)} != {expected[k]}" for k in expected.keys() & sd.keys()
                 if tuple(sd[k].shape) != expected[k]]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} keys ({_list(missing)})")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} keys ({_list(unexpected)})")
    if misshaped:
        problems.append(f"mis-shaped {len(misshaped)} ({_list(misshaped, 3)})")
    if problems:
        raise CheckpointError("not a valid STDAN checkpoint: " + "; ".join(problems))
    bad = [k for k, v in sd.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"checkpoint has non-finite values (NaN/inf) in {_list(bad)}")


def checkpoint_file(spec: str | os.PathLike) -> Path:
    """The checkpoint file ``spec`` names: an existing path. Registry names (``stdan-vimeo``) and
    their file names in the weights cache are resolved one layer up, by
    :func:`stdan_cli.api.load_model` (the weights cache verifies files with this module).
    Raises :class:`~stdan_cli.errors.WeightsNotFound` saying how to get the file."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    raise WeightsNotFound(
        f"checkpoint {spec} does not exist; for a registry name (stdan-vimeo) or its file name in the "
        "weights cache use stdan_cli.api.load_model, after: stdan download-weights")


def _state_dict(checkpoint: CheckpointSource) -> StateDict:
    if isinstance(checkpoint, (str, os.PathLike)):
        checkpoint = checkpoint_file(checkpoint)
    return read_state_dict(checkpoint)


def describe_checkpoint(checkpoint: CheckpointSource) -> ModelDescriptor:
    """Recognise and fully check a checkpoint; return what the pipeline needs to run it.

    Takes what :func:`load_model` takes: a state_dict, one wrapped as ``{"params": ...}``,
    ``{"params_ema": ...}``, ``{"state_dict": ...}`` or ``{"model": ...}`` (``module.`` prefixes
    too) or a path (registry names: :func:`stdan_cli.api.describe_checkpoint`)."""
    sd = _state_dict(checkpoint)
    config = infer_config(sd)
    check_state_dict(sd, config)
    num_params = sum(v.numel() for k, v in sd.items() if not k.endswith(("relative_position_index", "attn_mask")))
    return describe_config(config, num_params)


def describe_config(config: STDANConfig, num_params: int | None = None) -> ModelDescriptor:
    if num_params is None:
        with torch.device("meta"):
            num_params = sum(p.numel() for p in STDAN(config).parameters())
    return ModelDescriptor(
        architecture="STDAN",
        config=config,
        num_params=num_params,
        scale=config.scale,
        size_multiple=config.size_multiple,
    )


def load_model(
    checkpoint: CheckpointSource,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> LoadedModel:
    """A checkpoint -> :class:`LoadedModel`: an :class:`STDAN` in eval mode on ``device``, and
    the :class:`ModelDescriptor` read from the checkpoint.

    ``checkpoint`` is a path or a state_dict, plain or wrapped
    (``{"params": ...}``, ``{"state_dict": ...}``, ``module.`` prefixes). Float16/bfloat16 copies
    are upcast to ``dtype``. Raises :class:`~stdan_cli.errors.WeightsNotFound` (saying how to get
    the file) when there is no such file, :class:`CheckpointError` for a file that is
    unreadable, unsafe, or not a matching STDAN checkpoint.
    """
    sd = _state_dict(checkpoint)
    descriptor = describe_checkpoint(sd)
    model = STDAN(descriptor.config)
    sd = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()}
    model.load_state_dict(sd, strict=True)
    return LoadedModel(model.to(device=device, dtype=dtype).eval(), descriptor)


def state_dict_sha256(model: torch.nn.Module) -> str:
    """sha256 of a model's weights as loaded: the names, dtypes, shapes and bytes of its state_dict."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{t.dtype}:{tuple(tensor.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
