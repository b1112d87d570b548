"""The registry of known checkpoints: ``registry.json`` beside this module (package data),
or the file named by ``$STDAN_REGISTRY``. Its fields are documented in the top-level
``weights/README.md``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stdan_cli.errors import RegistryError

REGISTRY_ENV = "STDAN_REGISTRY"
SHIPPED_REGISTRY = Path(__file__).resolve().with_name("registry.json")


@dataclass(frozen=True)
class WeightsEntry:
    """One known checkpoint. Field meanings are documented in ``weights/README.md``."""

    name: str
    filename: str
    description: str = ""
    architecture: str = "STDAN"
    config: dict[str, Any] = field(default_factory=dict)  # STDANConfig fields; {} = official defaults
    scale: int = 4
    time_scale: int = 2
    num_params: int | None = None
    approx_size_bytes: int | None = None
    dtype: str | None = None  # the floating-point dtype of every tensor of the file ("float32"), when known
    sha256: str | None = None
    training_data: str = ""
    google_drive_id: str | None = None
    hf_repo_id: str | None = None
    hf_filename: str | None = None
    hf_revision: str | None = None
    url: str | None = None
    manual_download: str | None = None
    homepage: str | None = None
    paper: str | None = None
    licence: str | None = None

    def architecture_config(self):
        """The :class:`STDANConfig` a file must have to be this checkpoint."""
        from stdan_cli.model import STDANConfig

        values = {k: tuple(v) if isinstance(v, list) else v for k, v in self.config.items()}
        try:
            return STDANConfig(**values)
        except TypeError as exc:
            raise RegistryError(f"registry entry '{self.name}' has a bad config: {exc}") from None

    @property
    def page_url(self) -> str | None:
        """Where a user can fetch the file by hand."""
        if self.google_drive_id:
            return f"https://drive.google.com/file/d/{self.google_drive_id}/view"
        if self.hf_repo_id:
            return f"https://huggingface.co/{self.hf_repo_id}"
        return self.url or self.homepage


@dataclass(frozen=True)
class Registry:
    path: Path
    default: str
    entries: dict[str, WeightsEntry]

    def get(self, name: str) -> WeightsEntry:
        try:
            return self.entries[name]
        except KeyError:
            known = ", ".join(sorted(self.entries)) or "none"
            raise RegistryError(f"unknown checkpoint '{name}' (known: {known}; see `stdan download-weights --list`)") from None


def registry_path() -> Path:
    env = os.environ.get(REGISTRY_ENV)
    if env:
        return Path(env).expanduser()
    return SHIPPED_REGISTRY


_FIELDS = set(WeightsEntry.__dataclass_fields__) - {"name"}


def load_registry(path: str | os.PathLike | None = None) -> Registry:
    path = Path(path) if path is not None else registry_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RegistryError(f"cannot read the weights registry {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise RegistryError(f"the weights registry {path} is not valid JSON: {exc}") from None
    entries = {}
    for name, raw in (data.get("checkpoints") or {}).items():
        unknown = set(raw) - _FIELDS
        if unknown or "filename" not in raw:
            problem = f"unknown fields {sorted(unknown)}" if unknown else "no filename"
            raise RegistryError(f"the weights registry {path}: entry '{name}' has {problem}")
        entries[name] = WeightsEntry(name=name, **raw)
    default = data.get("default") or next(iter(entries), "")
    if default not in entries:
        raise RegistryError(f"the weights registry {path} names default '{default}' but has no such entry")
    return Registry(path=path, default=default, entries=entries)


def list_entries() -> list[WeightsEntry]:
    """Known checkpoints, the default first."""
    reg = load_registry()
    return sorted(reg.entries.values(), key=lambda e: (e.name != reg.default, e.name))


def default_weights_name() -> str:
    return load_registry().default


def get_entry(name: str | None = None) -> WeightsEntry:
    reg = load_registry()
    return reg.get(name or reg.default)
