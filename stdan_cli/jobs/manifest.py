"""The job's work folder: its manifest, done records and atomic writes.

The manifest pins a job down: the input's identity (size, modification time, sha256 of its
first and last MiB), every option that changes the output, the model and its weights' sha256,
the package version, and the chunk table as planned so far. A run whose input, options or
weights differ from the manifest's is refused, naming what changed.

Every file is written under a temporary name, flushed to disk and renamed, so a crash (even
``kill -9``) leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from stdan_cli import __version__
from stdan_cli.errors import JobMismatch
from stdan_cli.jobs.plan import ChunkSpec

FORMAT = 1
MIB = 2**20
MANIFEST = "manifest.json"
TEMP_SUFFIX = ".tmp"


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a part.
    The temporary name is this writer's own, so several processes (``--part`` runs sharing a
    work folder) may write the same file at once: the last rename wins, whole."""
    temp = path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")
    with open(temp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)
    fsync_dir(path.parent)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 * MIB), b""):
            h.update(block)
    return h.hexdigest()


def input_identity(path: Path) -> dict:
    """Size, modification time and the sha256 of the first and last MiB of ``path``."""
    st = path.stat()
    with open(path, "rb") as f:
        head = hashlib.sha256(f.read(MIB)).hexdigest()
        f.seek(max(0, st.st_size - MIB))
        tail = hashlib.sha256(f.read(MIB)).hexdigest()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "head_sha256": head, "tail_sha256": tail}


@dataclass
class Manifest:
    input: dict  # input_identity(), plus "path" (informative)
    options: dict  # option (as spelled on the command line) -> value, every one that changes the output
    model: dict  # "--model", "--precision", "weights sha256"
    video: dict = field(default_factory=dict)  # facts the assembly needs: rotation, range origin...
    chunks: list[ChunkSpec] = field(default_factory=list)  # planned so far, in order
    planned: bool = False  # the chunk table is complete
    version: str = __version__
    left_out: list[str] = field(default_factory=list)  # options the user did not give (their value is the default)

    def to_json(self) -> bytes:
        data = {
            "format": FORMAT, "stdan_cli": self.version, "input": self.input, "options": self.options,
            "model": self.model, "video": self.video, "planned": self.planned,
            "chunks": [c.to_dict() for c in self.chunks], "left_out": self.left_out,
        }
        return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "Manifest":
        data = json.loads(raw)
        if data.get("format") != FORMAT:
            raise ValueError(f"manifest format {data.get('format')}")
        return cls(
            input=data["input"], options=data["options"], model=data["model"], video=data.get("video", {}),
            chunks=[ChunkSpec.from_dict(c) for c in data["chunks"]], planned=bool(data["planned"]),
            version=data["stdan_cli"], left_out=list(data.get("left_out", [])),
        )

    def save(self, work_dir: Path) -> None:
        atomic_write(work_dir / MANIFEST, self.to_json())

    def record(self, spec: ChunkSpec) -> None:
        """Add a newly planned chunk (or check that a re-planned one is the recorded one)."""
        if spec.index < len(self.chunks):
            if self.chunks[spec.index] != spec:
                raise JobMismatch(
                    f"chunk {spec.index} is planned differently than in the work folder's manifest; "
                    "pass --restart to discard the work folder and start over"
                )
            return
        if spec.index != len(self.chunks):
            raise AssertionError(f"chunk {spec.index} planned after {len(self.chunks)} chunks")
        self.chunks.append(spec)


def load_manifest(work_dir: Path) -> Manifest | None:
    path = work_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        return Manifest.from_json(path.read_bytes())
    except (ValueError, KeyError, TypeError) as exc:
        raise JobMismatch(
            f"the work folder {work_dir} has an unreadable manifest ({exc}); pass --restart to discard it and start over"
        ) from None


def differences(recorded: Manifest, wanted: Manifest) -> list[str]:
    """What differs between the work folder's job and this run's, in words for users: one
    ``option: old -> new`` each, saying when a value is only an option's default because the
    option was left out."""
    found = []
    if recorded.version != wanted.version:
        found.append(f"stdan-cli version: {recorded.version} -> {wanted.version}")
    identity = ("size", "mtime_ns", "head_sha256", "tail_sha256")
    if any(recorded.input.get(k) != wanted.input.get(k) for k in identity):
        changed = [k.replace("_ns", "").replace("_sha256", " content") for k in identity
                   if recorded.input.get(k) != wanted.input.get(k)]
        found.append(f"the input: {', '.join(changed)} changed")
    for key in sorted(set(recorded.options) | set(wanted.options)):
        a, b = recorded.options.get(key), wanted.options.get(key)
        if a != b:
            found.append(_change(key, a, b, key in recorded.left_out, key in wanted.left_out))
    for key in sorted(set(recorded.model) | set(wanted.model)):
        a, b = recorded.model.get(key), wanted.model.get(key)
        if a != b:
            found.append(f"the weights: sha256 {str(a)[:12]} -> {str(b)[:12]}" if "sha256" in key
                         else _change(key, a, b, key in recorded.left_out, key in wanted.left_out))
    return found


def refusal_text(work_dir: Path, changed: list[str], restart: str = "--restart") -> str:
    """The one line that refuses to resume a work folder made for another job (``changed``:
    :func:`differences`)."""
    return (f"the work folder {work_dir} belongs to another job, it differs in {'; '.join(changed)}; "
            f"give the same options as before to resume it, or pass {restart} to discard it and start over")


def _change(key: str, old, new, old_left_out: bool, new_left_out: bool) -> str:
    before = f"{_show(old)} (left out: the default)" if old_left_out and old is not None else _show(old)
    after = f"{_show(new)} (left out: the default)" if new_left_out and new is not None else _show(new)
    return f"{key}: {before} -> {after}"


def _show(value) -> str:
    if value is None:
        return "not given"
    if isinstance(value, dict):
        return " ".join(f"{k}={_show(v)}" for k, v in sorted(value.items())) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(_show(v) for v in value) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    return str(value)


# --- done records ---------------------------------------------------------------------------


def chunk_name(index: int, extension: str) -> str:
    return f"chunk-{index:06d}{extension}"


def record_name(index: int) -> str:
    return f"chunk-{index:06d}.done.json"


@dataclass(frozen=True)
class DoneRecord:
    spec: ChunkSpec
    file: str  # name inside the work folder
    frames: int
    bytes: int
    sha256: str
    start: int  # pts of the chunk's first frame (output time base)
    end: int  # where the chunk's last frame ends (output time base): the next chunk's start

    def to_json(self) -> bytes:
        data = {"chunk": self.spec.to_dict(), "file": self.file, "frames": self.frames, "bytes": self.bytes,
                "sha256": self.sha256, "start": self.start, "end": self.end}
        return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "DoneRecord":
        data = json.loads(raw)
        return cls(ChunkSpec.from_dict(data["chunk"]), str(data["file"]), int(data["frames"]),
                   int(data["bytes"]), str(data["sha256"]), int(data["start"]), int(data["end"]))


def write_done(work_dir: Path, record: DoneRecord) -> None:
    atomic_write(work_dir / record_name(record.spec.index), record.to_json())


def read_done(work_dir: Path, index: int) -> DoneRecord | None:
    """The done record of chunk ``index`` if it exists and is readable (None otherwise)."""
    path = work_dir / record_name(index)
    try:
        return DoneRecord.from_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return None


def check_done(work_dir: Path, record: DoneRecord, spec: ChunkSpec) -> str | None:
    """Why the recorded chunk cannot be used (None: it can): missing, wrong size or sha256,
    or recorded for another chunk."""
    if record.spec != spec:
        return "was recorded for another plan"
    path = work_dir / record.file
    if not path.is_file():
        return "is missing"
    if path.stat().st_size != record.bytes:
        return "has the wrong size"
    if file_sha256(path) != record.sha256:
        return "does not match its sha256"
    return None


def remove_done(work_dir: Path, index: int, record: DoneRecord | None = None) -> None:
    """Remove chunk ``index``'s done record and, when ``record`` is given, its file."""
    (work_dir / record_name(index)).unlink(missing_ok=True)
    if record is not None:
        (work_dir / record.file).unlink(missing_ok=True)


def done_records(work_dir: Path) -> dict[int, DoneRecord]:
    """Readable done records whose chunk file is present (checked fully when reached)."""
    found = {}
    for path in sorted(work_dir.glob("chunk-*.done.json")):
        try:
            index = int(path.name[len("chunk-") :].split(".")[0])
        except ValueError:
            continue
        record = read_done(work_dir, index)
        if record is not None and record.spec.index == index:
            found[index] = record
    return found
