"""What a result must carry for a reader to know what was scored, and how: the checkpoint
(registry name or path, sha256, whether the registry vouches for it), the software versions,
the device and precision, the date and the exact command.

The checkpoint is identified through the weights registry and cache (:mod:`stdan_cli.weights`):
a file is the registry's entry when it was named by the entry's name, lies in the cache under the
entry's file name, or has the entry's sha256. It is *verified* only when the registry records a
sha256 and the file has it; otherwise the report warns that nothing ties the scores to a
published checkpoint.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

import torch

SCHEMA_VERSION = 2  # of the result JSON; 1 had no provenance, selection or per-frame input flags


class WeightsStatus(Enum):
    """How far the registry vouches for a checkpoint file (the value is what the JSON says)."""

    VERIFIED = "verified"  # a registry entry with a recorded sha256, and the file has it
    NO_REGISTRY_SHA256 = "registry-entry-without-sha256"  # an entry, but the registry records no sha256
    SHA256_MISMATCH = "sha256-differs-from-registry"  # an entry whose recorded sha256 the file does not have
    NOT_IN_REGISTRY = "not-in-registry"  # a file the registry does not know


@dataclass(frozen=True)
class WeightsIdentity:
    path: Path
    sha256: str
    size: int
    name: str | None  # the registry entry the file is (by name, cache location or sha256)
    registry_sha256: str | None  # what the registry records for that entry

    @property
    def status(self) -> WeightsStatus:
        if self.name is None:
            return WeightsStatus.NOT_IN_REGISTRY
        if not self.registry_sha256:
            return WeightsStatus.NO_REGISTRY_SHA256
        if self.registry_sha256.lower() != self.sha256:
            return WeightsStatus.SHA256_MISMATCH
        return WeightsStatus.VERIFIED

    def label(self) -> str:
        """'stdan-vimeo (/cache/STDAN_20220306.pth)' or the path alone."""
        return f"{self.name} ({self.path})" if self.name else str(self.path)

    def warning(self) -> str | None:
        """Why these scores cannot be taken as a published checkpoint's (None when verified)."""
        status = self.status
        if status is WeightsStatus.VERIFIED:
            return None
        if status is WeightsStatus.NOT_IN_REGISTRY:
            return ("these weights are not a registry checkpoint (`stdan download-weights --list`): nothing ties "
                    "the scores to a published model")
        if status is WeightsStatus.NO_REGISTRY_SHA256:
            return (f"the registry records no sha256 for '{self.name}', so nothing confirms this file is the "
                    f"released checkpoint (its sha256 is {self.sha256})")
        return (f"this file's sha256 differs from the one the registry records for '{self.name}' "
                f"({self.registry_sha256}): it is not the released checkpoint")

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "size_bytes": self.size,
            "registry_sha256": self.registry_sha256,
            "status": self.status.value,
        }


def identify_weights(weights: str | os.PathLike) -> WeightsIdentity:
    """The identity of a checkpoint given as ``--weights`` takes it: a path, a registry name
    (resolved in the cache) or a registry entry's file name."""
    from stdan_cli.weights import load_registry, resolve_weights, weights_dir
    from stdan_cli.weights.store import sha256_file

    path = resolve_weights(weights).expanduser().resolve()
    digest = sha256_file(path)
    entries = load_registry().entries.values()
    cache = weights_dir().expanduser().resolve()
    entry = next((e for e in entries if cache / e.filename == path), None)  # a name, the default, or the cached file
    if entry is None:  # a copy elsewhere of a file the registry knows by its sha256
        entry = next((e for e in entries if e.sha256 and e.sha256.lower() == digest), None)
    return WeightsIdentity(path, digest, path.stat().st_size, entry.name if entry else None,
                           entry.sha256.lower() if entry and entry.sha256 else None)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str | torch.device) -> str | None:
    """The hardware behind a device: the GPU's name, or the CPU's; None when not known here."""
    device = torch.device(device) if not isinstance(device, torch.device) else device
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        return _cpu_name()
    return None


def versions() -> dict[str, str | None]:
    import av
    import numpy

    from stdan_cli import __version__

    return {
        "stdan-cli": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "av": av.__version__,
        "cuda": torch.version.cuda,
        "platform": platform.platform(),
    }


@dataclass(frozen=True)
class RunInfo:
    """When, with what and by which command a result was made."""

    started: datetime
    finished: datetime
    argv: tuple[str, ...]
    cwd: str
    device: str
    device_name: str | None
    precision: str
    threads: int
    versions: dict
    weights: WeightsIdentity | None

    @property
    def command(self) -> str:
        """The command line, as a shell would take it back: ``stdan eval ...`` (the program's
        name without its folder), or ``python script.py ...`` for a run from Python."""
        if not self.argv:
            return ""
        program = Path(self.argv[0]).name
        first = [program] if program == "stdan" else [Path(sys.executable).name, self.argv[0]]
        if program == "__main__.py":  # python -m stdan_cli
            first = [Path(sys.executable).name, "-m", "stdan_cli"]
        return shlex.join(first + list(self.argv[1:]))

    def to_json(self) -> dict:
        return {
            "started": self.started.isoformat(timespec="seconds"),
            "finished": self.finished.isoformat(timespec="seconds"),
            "command": self.command,
            "argv": list(self.argv),
            "cwd": self.cwd,
            "device": self.device,
            "device_name": self.device_name,
            "precision": self.precision,
            "threads": self.threads,
            "versions": self.versions,
        }


def collect_run_info(device: str | torch.device, precision: str, weights: WeightsIdentity | None,
                     started: datetime, hardware: str | None = "local") -> RunInfo:
    """The :class:`RunInfo` of a run that began at ``started`` and ends now. ``hardware``:
    ``"local"`` reads the device's name here; otherwise the name to record (None: unknown, e.g.
    Ray workers elsewhere)."""
    return RunInfo(
        started=started,
        finished=utc_now(),
        argv=tuple(sys.argv),
        cwd=os.getcwd(),
        device=str(device),
        device_name=device_name(device) if hardware == "local" else hardware,
        precision=precision,
        threads=torch.get_num_threads(),
        versions=versions(),
        weights=weights,
    )
