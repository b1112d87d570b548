"""Colour metadata: how YUV frames map to RGB, and the tags to keep on the output.

Values are FFmpeg's enums (AVColorSpace, AVColorRange, AVColorPrimaries,
AVColorTransferCharacteristic), as PyAV exposes them on frames and codec contexts.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction

import av

UNSPECIFIED = 2  # the value of "unspecified" in the primaries, transfer and matrix enums
RANGE_UNSPECIFIED, RANGE_LIMITED, RANGE_FULL = 0, 1, 2

TRANSFER_PQ, TRANSFER_HLG = 16, 18  # SMPTE ST 2084 and ARIB STD-B67: the HDR transfers

# AVColorSpace -> swscale's name of the YUV<->RGB matrix (decoding and encoding both use it).
SWS_MATRIX = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "SMPTE170M", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}


def bit_depth(pix_fmt: str | av.VideoFormat) -> int:
    """Bits per component of a pixel format (the deepest component)."""
    fmt = pix_fmt if isinstance(pix_fmt, av.VideoFormat) else av.VideoFormat(pix_fmt)
    return max(c.bits for c in fmt.components)


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

    @property
    def is_hdr(self) -> bool:
        return self.transfer in (TRANSFER_PQ, TRANSFER_HLG)

    def sws_matrix(self, height: int) -> str:
        """The YUV<->RGB matrix; untagged video is taken as BT.709 from 720 lines up and
        BT.601 below, as players do."""
        if self.matrix in SWS_MATRIX:
            return SWS_MATRIX[self.matrix]
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


_MASTERING = struct.Struct("<20i2i")  # AVMasteringDisplayMetadata: R, G, B, white (x, y), min, max luminance (rationals); 2 flags
_LIGHT = struct.Struct("<2I")  # AVContentLightMetadata: MaxCLL, MaxFALL


@dataclass(frozen=True)
class HdrParamNames:
    """How an encoder library takes HDR10 metadata in its ``key=value:...`` parameter list."""

    display: str  # mastering display: G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)
    light: str  # content light level: MaxCLL,MaxFALL
    xy_unit: int | None = None  # chromaticities as integers in 1/xy_unit (None: plain decimals)
    luminance_unit: int | None = None  # cd/m2 as integers in 1/luminance_unit (None: plain decimals)


@dataclass(frozen=True)
class HdrMetadata:
    """HDR10 static metadata of a stream: the mastering display (SMPTE ST 2086) and the
    content light levels, as read from the decoded frames' side data."""

    primaries: tuple[tuple[Fraction, Fraction], ...] | None = None  # (x, y) of R, G, B, white point
    luminance: tuple[Fraction, Fraction] | None = None  # (min, max) cd/m2
    max_cll: int | None = None
    max_fall: int | None = None

    @classmethod
    def of(cls, frame: av.VideoFrame) -> "HdrMetadata | None":
        primaries = luminance = cll = fall = None
        for sd in frame.side_data:
            data, name = bytes(sd), sd.type.name
            if name == "MASTERING_DISPLAY_METADATA" and len(data) >= _MASTERING.size:
                v = _MASTERING.unpack_from(data)
                r = [Fraction(v[i], v[i + 1]) if v[i + 1] else Fraction(0) for i in range(0, 20, 2)]
                if v[20]:
                    primaries = ((r[0], r[1]), (r[2], r[3]), (r[4], r[5]), (r[6], r[7]))
                if v[21]:
                    luminance = (r[8], r[9])
            elif name == "CONTENT_LIGHT_LEVEL" and len(data) >= _LIGHT.size:
                cll, fall = _LIGHT.unpack_from(data)
        if primaries is None and luminance is None and cll is None:
            return None
        return cls(primaries, luminance, cll, fall)

    def encoder_params(self, names: HdrParamNames) -> list[str]:
        """``key=value`` entries for an encoder library's parameter list."""

        def num(value: Fraction, unit: int | None) -> str:
            return str(round(value * unit)) if unit else f"{float(value):.6g}"

        params = []
        if self.primaries is not None and self.luminance is not None:
            (r, g, b, wp), (lo, hi) = self.primaries, self.luminance
            xy = {k: f"({num(p[0], names.xy_unit)},{num(p[1], names.xy_unit)})" for k, p in zip("RGBW", (r, g, b, wp))}
            lum = f"L({num(hi, names.luminance_unit)},{num(lo, names.luminance_unit)})"
            params.append(f"{names.display}=G{xy['G']}B{xy['B']}R{xy['R']}WP{xy['W']}{lum}")
        if self.max_cll is not None:
            params.append(f"{names.light}={self.max_cll},{self.max_fall or 0}")
        return params

    def dropped_notices(self, codec: str, carriers: list[str]) -> list[str]:
        """Notices for an encoder that cannot carry this metadata (``carriers`` can)."""
        can = f"({', '.join(carriers)} can)"
        notices = []
        if self.primaries is not None or self.luminance is not None:
            notices.append(f"HDR mastering-display metadata dropped: {codec} cannot carry it {can}")
        if self.max_cll is not None:
            notices.append(f"HDR content-light-level metadata dropped: {codec} cannot carry it {can}")
        return notices
