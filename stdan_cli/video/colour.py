"""Colour metadata: how YUV frames map to RGB, and the tags to keep on the output.

Values are FFmpeg's enums (AVColorSpace, AVColorRange, AVColorPrimaries,
AVColorTransferCharacteristic), as PyAV exposes them on frames and codec contexts.
"""

from __future__ import annotations

from dataclasses import dataclass

UNSPECIFIED = 2  # the value of "unspecified" in the primaries, transfer and matrix enums
RANGE_UNSPECIFIED, RANGE_LIMITED, RANGE_FULL = 0, 1, 2

# AVColorSpace -> swscale's name of the YUV<->RGB matrix.
_SWS_MATRIX = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "SMPTE170M", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}


_RGB_PREFIXES = ("rgb", "bgr", "gbr", "argb", "abgr", "rgba", "bgra", "pal", "gray", "ya", "0rgb", "0bgr")


def is_rgb_format(pix_fmt: str) -> bool:
    """True for pixel formats without a YUV matrix (RGB, palette, grey)."""
    return pix_fmt.startswith(_RGB_PREFIXES)


@dataclass(frozen=True)
class ColourInfo:
    """The colour description of a video (FFmpeg enum values)."""

    matrix: int = UNSPECIFIED  # colorspace
    range: int = RANGE_UNSPECIFIED
    primaries: int = UNSPECIFIED
    transfer: int = UNSPECIFIED

    @classmethod
    def of(cls, frame_or_context) -> "ColourInfo":
        return cls(
            matrix=int(frame_or_context.colorspace),
            range=int(frame_or_context.color_range),
            primaries=int(frame_or_context.color_primaries),
            transfer=int(frame_or_context.color_trc),
        )

    def sws_matrix(self, height: int) -> str:
        """The YUV<->RGB matrix; untagged video is taken as BT.709 from 720 lines up and
        BT.601 below, as players do."""
        if self.matrix in _SWS_MATRIX:
            return _SWS_MATRIX[self.matrix]
        return "ITU709" if height >= 720 else "ITU601"

    def sws_range(self, pix_fmt: str) -> str:
        """'JPEG' (full) or 'MPEG' (limited); untagged YUV is limited unless it is a yuvj format."""
        if self.range == RANGE_FULL or (self.range == RANGE_UNSPECIFIED and pix_fmt.startswith("yuvj")):
            return "JPEG"
        return "MPEG"

    def resolved(self, height: int, pix_fmt: str) -> "ColourInfo":
        """The same description with the matrix and range the decoder assumed made explicit."""
        matrix = self.matrix if self.matrix != UNSPECIFIED else (1 if self.sws_matrix(height) == "ITU709" else 6)
        rng = RANGE_FULL if self.sws_range(pix_fmt) == "JPEG" else RANGE_LIMITED
        return ColourInfo(matrix, rng, self.primaries, self.transfer)
