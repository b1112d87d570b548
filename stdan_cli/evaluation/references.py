"""Published figures shown beside measured ones. Only figures with a known source are here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    method: str
    psnr_y: float
    ssim_y: float
    psnr: float | None = None
    ssim: float | None = None
    source: str = ""


_STDAN_NOTEBOOK = "STDAN, released checkpoint, the authors' own notebook run (github.com/littlewhitesea/STDAN)"
_ZSM = "Zooming Slow-Mo (Xiang et al., CVPR 2020), as published"
_TMNET = "TMNet (Xu et al., CVPR 2021), as published"

REFERENCES: dict[str, list[Reference]] = {
    "vid4": [Reference("STDAN (released)", 26.2818, 0.8041, 24.7475, 0.7837, _STDAN_NOTEBOOK)],
    "vimeo-fast": [Reference("Zooming Slow-Mo", 36.81, 0.9415, source=_ZSM), Reference("TMNet", 37.04, 0.9435, source=_TMNET)],
    "vimeo-medium": [Reference("Zooming Slow-Mo", 35.41, 0.9361, source=_ZSM), Reference("TMNet", 35.60, 0.9380, source=_TMNET)],
    "vimeo-slow": [Reference("Zooming Slow-Mo", 33.36, 0.9138, source=_ZSM), Reference("TMNet", 33.51, 0.9159, source=_TMNET)],
}

# Per clip, Y channel (PSNR-Y, SSIM-Y), STDAN with the released checkpoint (same source).
VID4_CLIPS: dict[str, tuple[float, float]] = {
    "calendar": (23.82, 0.8017),
    "city": (27.46, 0.7882),
    "foliage": (25.44, 0.7335),
    "walk": (28.42, 0.8930),
}
