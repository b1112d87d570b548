"""PNG reading and writing through PyAV (FFmpeg's PNG codec): no image library needed.

Files are opened as Python file objects, never by name, so FFmpeg's image2 patterns
(``%d`` in a file name) cannot redirect a read or a write to another file. Any image FFmpeg
decodes is read (8/16-bit, grey, palette, alpha dropped) and converted to 8-bit RGB, which is
what ``cv2.imread`` gives the official scripts (in BGR order, which they flip to RGB).
:func:`read_image` also says what the file was (grey, alpha, more than 8 bits), so a run can
tell the user what it assumed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from stdan_cli.errors import ImageError
from stdan_cli.safe_files import atomic_write


@dataclass(frozen=True)
class SourceFormat:
    """What an image file held before it became 8-bit RGB."""

    grayscale: bool  # one grey channel, copied to R, G and B
    alpha: bool  # an alpha channel (or a palette with transparent entries), dropped
    bits: int  # bits per channel (16-bit files are rounded to 8)


def _source_format(frame: av.VideoFrame) -> SourceFormat:
    fmt = frame.format
    colour = [c for c in fmt.components if not c.is_alpha]
    alpha = any(c.is_alpha for c in fmt.components)
    if fmt.has_palette:  # a palette's alpha is in its entries: transparent only if one is used
        alpha = bool((frame.to_ndarray(format="rgba")[..., 3] < 255).any())
    grayscale = not fmt.has_palette and len(colour) == 1
    return SourceFormat(grayscale, alpha, max(c.bits for c in fmt.components))


def read_image(path: Path) -> tuple[np.ndarray, SourceFormat]:
    """(H, W, 3) uint8 RGB of an image file and what the file held; raises ImageError naming the file."""
    try:
        with open(path, "rb") as f, av.open(f) as c:
            frame = next(c.decode(video=0))
            return frame.to_ndarray(format="rgb24"), _source_format(frame)
    except (av.error.FFmpegError, StopIteration, ValueError) as exc:  # before OSError: some subclass it
        detail = f" ({exc.strerror})" if isinstance(getattr(exc, "strerror", None), str) else ""
        raise ImageError(f"cannot read image {path}: not a readable image{detail}") from None
    except OSError as exc:
        raise ImageError(f"cannot read image {path}: {exc.strerror or exc}") from None


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file; raises ImageError naming the file."""
    return read_image(path)[0]


def encode_png(rgb: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB as the bytes of a PNG file."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="image2pipe") as c:
        stream = c.add_stream("png")
        stream.height, stream.width = rgb.shape[:2]
        stream.pix_fmt = "rgb24"
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24")
        for packet in stream.encode(frame):
            c.mux(packet)
        for packet in stream.encode(None):
            c.mux(packet)
    return buffer.getvalue()


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write (H, W, 3) uint8 RGB as a PNG (parent folders are created): a temporary file of ours
    renamed to ``path``, so a link there is replaced, never written through."""
    data = encode_png(rgb)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data, sync=False)  # one of many frames: not flushed one by one
    except OSError as exc:
        raise ImageError(f"cannot write {path}: {exc.strerror or exc}") from None
