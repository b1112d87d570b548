"""What a work folder records: the job's manifest and a done record per finished chunk.

The manifest pins a job down: the input's identity (size, modification time, sha256 of its
first and last MiB), every option that changes the output, the model and its weights' sha256,
the package version, and the chunk table as planned so far. A run whose input, options or
weights differ from the manifest's is refused, naming what changed. A complete plan also
records its seek table (:class:`~stdan_cli.jobs.plan.SeekTable`): where each chunk's decoding
may start.

Both are read back as untrusted data (:mod:`stdan_cli.jobs.strict_json`): a file that is not
what this tool writes makes the manifest "damaged" (pass --restart) and a done record
"corrupt" (its chunk is made again). Nothing read back names a file: a chunk's file name is
derived from its index, and a done record must agree with the planned chunk in every number.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from stdan_cli import __version__
from stdan_cli.errors import JobMismatch
from stdan_cli.jobs import strict_json
from stdan_cli.jobs.plan import ChunkSpec, SeekTable
from stdan_cli.jobs.strict_json import Damaged, get, obj

FORMAT = 3  # 3: the marker names its folder, the manifest its chunks' extension
MIB = 2**20
MANIFEST = "manifest.json"
EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,12}")  # what a chunk file's extension may be (the output's)


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


@dataclass(frozen=True)
class VideoFacts:
    """What the assembly needs to copy the input's other streams, found while planning."""

    keep_audio: bool = True  # the mode keeps the input's duration, so its audio fits
    shift: bool = False  # a range: the other streams are cut to it and start at 0
    start_seconds: float | None = None  # the range's origin in the input's seconds (None: no range)
    end_seconds: float | None = None  # where the range ends in the input's seconds (None: the end)

    def to_dict(self) -> dict:
        return {"keep_audio": self.keep_audio, "shift": self.shift, "start_seconds": self.start_seconds,
                "end_seconds": self.end_seconds}

    @classmethod
    def from_data(cls, data: object) -> "VideoFacts":
        """The facts ``data`` (a manifest's ``video`` object) records; a missing fact has its
        default (a manifest written before planning records none); :class:`Damaged` when a
        value is of the wrong kind."""
        video = obj(data, "video")
        keep_audio, shift = (get(video, key, "bool", "video", optional=True) for key in ("keep_audio", "shift"))
        start, end = (get(video, key, "number", "video", optional=True) for key in ("start_seconds", "end_seconds"))
        return cls(True if keep_audio is None else keep_audio, bool(shift), start, end)


@dataclass
class Manifest:
    input: dict  # input_identity(), plus "path" (informative)
    # Every choice that changes the output, by the name users know it by (pipeline.options.OPTION_NAMES)
    options: dict
    model: dict  # the model's choices, named the same way: model, precision, weights sha256
    video: VideoFacts = field(default_factory=VideoFacts)  # facts the assembly needs: range origin, audio kept
    chunks: list[ChunkSpec] = field(default_factory=list)  # planned so far, in order
    planned: bool = False  # the chunk table is complete
    version: str = __version__
    left_out: list[str] = field(default_factory=list)  # options the user did not give (their value is the default)
    extension: str = ".mkv"  # of the chunk files (the output's): with the chunk table, names every file of the job
    seek: SeekTable | None = None  # where each chunk's decoding may start (a complete plan's, when its input allows)

    def to_json(self) -> bytes:
        data = {
            "format": FORMAT, "stdan_cli": self.version, "input": self.input, "options": self.options,
            "model": self.model, "video": self.video.to_dict(), "planned": self.planned, "extension": self.extension,
            "chunks": [c.to_dict() for c in self.chunks], "left_out": self.left_out,
            "seek": self.seek.to_dict() if self.seek is not None else None,
        }
        return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_data(cls, data: object) -> "Manifest":
        """The manifest ``data`` (parsed JSON) describes; :class:`Damaged` when it is not one."""
        data = obj(data, "the manifest")
        if get(data, "format", "any") != FORMAT:
            raise Damaged(f"format {data.get('format')!r} is not this version's ({FORMAT})")
        chunks = get(data, "chunks", "list")
        specs = [ChunkSpec.from_dict(c, f"chunks[{i}]") for i, c in enumerate(chunks)]
        if any(s.index != i for i, s in enumerate(specs)):
            raise Damaged("chunks are not numbered in order")
        video = VideoFacts.from_data(get(data, "video", "object"))
        left_out = get(data, "left_out", "list")
        if not all(type(k) is str for k in left_out):
            raise Damaged("left_out is not a list of option names")
        extension = get(data, "extension", "str")
        if not EXTENSION.fullmatch(extension):
            raise Damaged(f"extension {extension!r} cannot be a chunk file's")
        seek = data.get("seek")
        seek = SeekTable.from_dict(seek) if seek is not None else None
        if seek is not None and not seek.fits(specs):
            raise Damaged("the seek table does not describe the chunks")
        return cls(input=get(data, "input", "object"), options=get(data, "options", "object"),
                   model=get(data, "model", "object"), video=video, chunks=specs,
                   planned=get(data, "planned", "bool"), version=get(data, "stdan_cli", "str"), left_out=left_out,
                   extension=extension, seek=seek)

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
    if recorded.extension != wanted.extension:
        found.append(f"the output's extension: {recorded.extension} -> {wanted.extension}")
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
    """The one name chunk ``index``'s file has (``extension``: the output's, e.g. ``.mp4``)."""
    return f"chunk-{index:06d}{extension}"


def record_name(index: int) -> str:
    return f"chunk-{index:06d}.done.json"


@dataclass(frozen=True)
class DoneRecord:
    spec: ChunkSpec
    file: str  # chunk_name(spec.index, extension): recorded to be checked, never used as a path
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
    def from_data(cls, data: object) -> "DoneRecord":
        data = obj(data, "the record")
        return cls(ChunkSpec.from_dict(get(data, "chunk", "object")), get(data, "file", "str"),
                   get(data, "frames", "nat"), get(data, "bytes", "nat"), get(data, "sha256", "str"),
                   get(data, "start", "int"), get(data, "end", "int"))

    def problem(self, spec: ChunkSpec, extension: str) -> str | None:
        """Why this record cannot be the done chunk ``spec`` (None: it agrees in every number)."""
        if self.spec != spec:
            return "was recorded for another plan"
        if self.file != chunk_name(spec.index, extension):
            return f"names another file ({self.file!r})"
        if (self.frames, self.start, self.end) != (spec.outputs, spec.start, spec.end):
            return "does not agree with the plan (frames or times)"
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            return "has no valid sha256"
        return None


def read_record(path: Path) -> DoneRecord | None:
    """The done record at ``path``; None when it is absent; :class:`Damaged` when it is not one."""
    try:
        return DoneRecord.from_data(strict_json.load(path))
    except FileNotFoundError:
        return None


def read_manifest(path: Path) -> Manifest | None:
    try:
        return Manifest.from_data(strict_json.load(path))
    except FileNotFoundError:
        return None
