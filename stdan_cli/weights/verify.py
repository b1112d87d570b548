"""Accept a checkpoint file only if it is safe, complete and the expected model.

Checks, in order: it is a weights-only loadable state_dict (``torch.load(weights_only=True)``,
so a pickle that would run code is refused); every key and shape matches the STDAN architecture
its shapes describe and all float values are finite; then everything the registry entry knows:
the architecture, the file size (within :data:`SIZE_TOLERANCE`), the tensors' dtype and the
parameter count, all named in one line when they differ; its sha256 equals the expected one
(the registry's, or the one recorded at the first verified download) when there is one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from stdan_cli.errors import CheckpointError
from stdan_cli.weights.registry import WeightsEntry
from stdan_cli.weights.store import human_size, sha256_file

SIZE_TOLERANCE = 0.05  # a registry size is approximate (a few kB of pickle framing differ between savers)


@dataclass(frozen=True)
class VerifiedCheckpoint:
    path: Path
    sha256: str
    size: int
    num_params: int
    config: object  # STDANConfig


def _config_difference(found, expected) -> str:
    diffs = [
        f"{f.name}={getattr(found, f.name)!r} (expected {getattr(expected, f.name)!r})"
        for f in dataclasses.fields(expected)
        if getattr(found, f.name) != getattr(expected, f.name)
    ]
    return ", ".join(diffs[:4])


def _float_dtypes(sd) -> list[str]:
    return sorted({str(v.dtype).replace("torch.", "") for v in sd.values() if v.is_floating_point()})


def registry_differences(entry: WeightsEntry, size: int, sd, descriptor) -> list[str]:
    """What about a readable STDAN state_dict differs from what ``entry`` knows, in words."""
    found = []
    expected = entry.architecture_config()
    if descriptor.config != expected:
        found.append(f"{_config_difference(descriptor.config, expected)}")
    if entry.approx_size_bytes and abs(size - entry.approx_size_bytes) > SIZE_TOLERANCE * entry.approx_size_bytes:
        found.append(f"{human_size(size)} (expected about {human_size(entry.approx_size_bytes)})")
    dtypes = _float_dtypes(sd)
    if entry.dtype and dtypes != [entry.dtype]:
        found.append(f"{'/'.join(dtypes) or 'no floating-point'} tensors (expected {entry.dtype})")
    if entry.num_params and descriptor.num_params != entry.num_params:
        found.append(f"{descriptor.num_params:,} parameters (expected {entry.num_params:,})")
    return found


def verify_checkpoint(path: str | Path, entry: WeightsEntry | None = None, what: str | None = None) -> VerifiedCheckpoint:
    """Verify ``path`` (against ``entry`` when given); raise :class:`CheckpointError` saying what was wrong.

    ``what`` names the file in messages (e.g. the URL it came from) instead of its temporary path.
    """
    from stdan_cli.model import describe_checkpoint, looks_like_html, read_state_dict

    path = Path(path)
    what = what or str(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4096)
    if size == 0:
        raise CheckpointError(f"{what} is empty (0 bytes), not a checkpoint")
    if looks_like_html(head):
        raise CheckpointError(f"{what} is an HTML web page ({human_size(size)}), not a checkpoint")
    try:
        sd = read_state_dict(path)
        descriptor = describe_checkpoint(sd)
    except CheckpointError as exc:
        # The model's messages name the (temporary) path; name the source instead.
        reason = str(exc).replace(f"cannot use {path}: ", "").replace(str(path), "the file")
        raise CheckpointError(f"{what} ({human_size(size)}) rejected: {reason}") from None
    if entry is not None:
        differ = registry_differences(entry, size, sd, descriptor)
        if differ:
            raise CheckpointError(f"{what} is an STDAN checkpoint but not '{entry.name}': {'; '.join(differ)}")
    digest = sha256_file(path)
    if entry is not None and entry.sha256 and digest != entry.sha256.lower():
        raise CheckpointError(
            f"{what} has sha256 {digest[:16]}..., but '{entry.name}' must have {entry.sha256[:16]}... (a different release or a corrupted file)"
        )
    return VerifiedCheckpoint(path=path, sha256=digest, size=size, num_params=descriptor.num_params, config=descriptor.config)
