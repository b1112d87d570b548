"""What a file says about itself, carried to the output: the file's tags (title...), chapters,
attachments (fonts), and each stream's language, title and disposition.

Everything is written where the output container holds it. What the container cannot hold
is found by reading the finished file back (:func:`audit`), so each notice reports a loss
that really happened, whatever the muxer did, one notice per thing dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

# Tags that describe the old file or stream (its length, its muxer, mkvmerge's statistics,
# MP4 brand and handler names): the new file gets its own, so they are not copied.
_STALE_TAGS = {
    "duration", "encoder", "number_of_frames", "number_of_bytes", "bps", "major_brand", "minor_version",
    "compatible_brands", "handler_name", "vendor_id", "creation_time",
}
# Stream dispositions worth keeping (attached_pic and the like describe the stream's kind).
_DISPOSITIONS = ("default", "dub", "original", "comment", "lyrics", "karaoke", "forced", "hearing_impaired",
                 "visual_impaired", "captions", "descriptions")
# ISO 639-2 bibliographic codes and the terminological ones some muxers write instead.
_SAME_LANGUAGE = {"ger": "deu", "fre": "fra", "dut": "nld", "chi": "zho", "cze": "ces", "gre": "ell", "per": "fas",
                  "rum": "ron", "slo": "slk", "arm": "hye", "baq": "eus", "bur": "mya", "geo": "kat", "ice": "isl",
                  "mac": "mkd", "mao": "mri", "may": "msa", "tib": "bod", "wel": "cym", "alb": "sqi"}


def kept_tags(metadata: dict) -> dict:
    return {k: v for k, v in metadata.items() if k.lower() not in _STALE_TAGS and not k.lower().startswith("_statistics")}


def _language(code: str | None) -> str | None:
    if not code or code == "und":
        return None
    return _SAME_LANGUAGE.get(code.lower(), code.lower())


@dataclass(frozen=True)
class Attachment:
    filename: str
    mimetype: str
    data: bytes


@dataclass(frozen=True)
class StreamIdentity:
    """What names a stream to a player: its language, title and disposition flags."""

    label: str  # e.g. "audio stream #1", for notices
    tags: dict
    disposition: int
    sole: bool = False  # the only stream of its kind: 'default' is implied, its loss not worth a notice

    @classmethod
    def of(cls, stream: av.stream.Stream, label: str) -> "StreamIdentity":
        sole = sum(s.type == stream.type for s in stream.container.streams) == 1
        return cls(label, kept_tags(dict(stream.metadata)), int(stream.disposition), sole)

    def apply(self, stream: av.stream.Stream) -> None:
        stream.metadata.update(self.tags)
        stream.disposition = av.stream.Disposition(self.disposition & _kept_disposition_mask())

    def losses(self, written: av.stream.Stream, container_name: str) -> list[str]:
        """Notices for what ``written`` (the same stream read back) lost."""
        notices = []
        got = {k.lower(): v for k, v in written.metadata.items()}
        lang = self.tags.get("language")
        if _language(lang) and _language(got.get("language")) != _language(lang):
            notices.append(f"{self.label}: language '{lang}' dropped (the {container_name} container did not keep it)")
        for key, value in self.tags.items():
            if key.lower() != "language" and got.get(key.lower()) != value:
                notices.append(f"{self.label}: {key} '{value}' dropped (the {container_name} container did not keep it)")
        lost = [name for name in _DISPOSITIONS if self.disposition & _flag(name) and not int(written.disposition) & _flag(name)
                and not (name == "default" and self.sole)]
        if lost:
            notices.append(f"{self.label}: disposition {'+'.join(lost)} dropped (the {container_name} container did not keep it)")
        return notices


def _flag(name: str) -> int:
    return int(getattr(av.stream.Disposition, name))


def _kept_disposition_mask() -> int:
    mask = 0
    for name in _DISPOSITIONS:
        mask |= _flag(name)
    return mask


@dataclass(frozen=True)
class FileMetadata:
    """The file-level part: tags, chapters, attachments."""

    tags: dict
    chapters: tuple[dict, ...]
    attachments: tuple[Attachment, ...]

    @classmethod
    def of(cls, container: av.container.InputContainer) -> "FileMetadata":
        attachments = tuple(
            Attachment(s.metadata.get("filename") or f"attachment{s.index}", s.mimetype or "application/octet-stream", bytes(s.data))
            for s in container.streams
            if s.type == "attachment"
        )
        return cls(kept_tags(dict(container.metadata)), tuple(container.chapters()), attachments)

    def apply(self, output: av.container.OutputContainer, holds_attachments: bool, time_scale: Fraction = Fraction(1)) -> list[str]:
        """Write tags, chapters (their times multiplied by ``time_scale``) and attachments;
        notices for the attachments the container cannot hold."""
        output.metadata.update(self.tags)
        if self.chapters:
            output.set_chapters([
                {**c, "start": int(c["start"] * time_scale), "end": int(c["end"] * time_scale)} for c in self.chapters
            ])
        notices = []
        for a in self.attachments:
            if holds_attachments:
                output.add_attachment(a.filename, a.mimetype, a.data)
            else:
                notices.append(f"attachment '{a.filename}' ({a.mimetype}) dropped: the {output.format.name} container "
                               "cannot hold attachments (use .mkv)")
        return notices

    def losses(self, written: av.container.InputContainer, container_name: str) -> list[str]:
        notices = []
        got = {k.lower(): v for k, v in written.metadata.items()}
        for key, value in self.tags.items():
            if got.get(key.lower()) != value:
                notices.append(f"file tag {key} '{value}' dropped (the {container_name} container did not keep it)")
        n_written = len(written.chapters())
        if len(self.chapters) > n_written:
            notices.append(f"{len(self.chapters) - n_written} of {len(self.chapters)} chapters dropped "
                           f"(the {container_name} container did not keep them)")
        return notices


def audit(path: Path, container_name: str, file: FileMetadata | None, streams: dict[int, StreamIdentity]) -> list[str]:
    """Read the written file back and name every tag, chapter or flag that did not survive.
    ``streams`` maps output stream indices to what they should carry."""
    with av.open(str(path)) as written:
        notices = file.losses(written, container_name) if file else []
        for index, identity in sorted(streams.items()):
            notices += identity.losses(written.streams[index], container_name)
    return notices
