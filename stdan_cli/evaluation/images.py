"""PNG reading and writing through PyAV (FFmpeg's PNG codec): no image library needed."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from stdan_cli.errors import StdanError


class ImageError(StdanError):
    """A frame of a dataset cannot be read."""


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file; raises ImageError with the file named."""
    try:
        with av.open(str(path)) as c:
            frame = next(c.decode(video=0))
            return frame.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, StopIteration, OSError) as exc:
        raise ImageError(f"cannot read image {path}: {getattr(exc, 'strerror', None) or exc or 'no frame'}") from None


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write (H, W, 3) uint8 RGB as a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="image2") as c:
        stream = c.add_stream("png")
        stream.height, stream.width = rgb.shape[:2]
        stream.pix_fmt = "rgb24"
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in stream.encode(frame):
            c.mux(packet)
        for packet in stream.encode(None):
            c.mux(packet)
