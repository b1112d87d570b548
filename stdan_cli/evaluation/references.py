"""Published figures shown beside measured ones. Only figures with a known source are here;
all are for the BI degradation (MATLAB bicubic x1/4), so none are shown for BD runs.

Sources:
- STDAN on Vid4: the authors' own run of ``codes/test.py`` with the released checkpoint
  ``STDAN_20220306.pth`` on the Vid4 archive's ``lr_x4`` frames, logged in
  ``uploaded_STDAN.ipynb`` (github.com/littlewhitesea/STDAN, cell "3.3 Run test.py", run of
  2023-10-13): "Total Average PSNR: 24.747522 dB PSNR-Y: 26.281771 dB", "Total Average SSIM:
  0.783654 SSIM-Y: 0.804113", and the per-folder averages below.
- Zooming Slow-Mo (Xiang et al., CVPR 2020) and TMNet (Xu et al., CVPR 2021) on
  Vimeo-Fast/Medium/Slow: PSNR-Y/SSIM-Y as published in their papers. No STDAN Vimeo figure is
  shown: no logged run of the released checkpoint on Vimeo is available to cite.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Reference:
    method: str
    psnr_y: float
    ssim_y: float
    psnr: float | None = None
    ssim: float | None = None
    source: str = ""

    def to_json(self) -> dict:
        return asdict(self)


STDAN_NOTEBOOK = ("STDAN (authors' run): the released checkpoint STDAN_20220306.pth on the Vid4 lr_x4 frames, "
                  "the authors' own run of codes/test.py logged in uploaded_STDAN.ipynb (github.com/littlewhitesea/STDAN)")
ZSM = "ZSM: Zooming Slow-Mo (Xiang et al., CVPR 2020), PSNR-Y/SSIM-Y as published"
TMNET = "TMNet: Xu et al., CVPR 2021, PSNR-Y/SSIM-Y as published"

REFERENCES: dict[str, list[Reference]] = {
    "vid4": [Reference("STDAN (authors' run)", 26.2818, 0.8041, 24.7475, 0.7837, STDAN_NOTEBOOK)],
    "vimeo-fast": [Reference("ZSM (paper)", 36.81, 0.9415, source=ZSM), Reference("TMNet (paper)", 37.04, 0.9435, source=TMNET)],
    "vimeo-medium": [Reference("ZSM (paper)", 35.41, 0.9361, source=ZSM), Reference("TMNet (paper)", 35.60, 0.9380, source=TMNET)],
    "vimeo-slow": [Reference("ZSM (paper)", 33.36, 0.9138, source=ZSM), Reference("TMNet (paper)", 33.51, 0.9159, source=TMNET)],
}

# Per clip, STDAN with the released checkpoint (same notebook run): (PSNR-Y, SSIM-Y, PSNR, SSIM).
VID4_CLIPS: dict[str, tuple[float, float, float, float]] = {
    "calendar": (23.816652, 0.801719, 22.061260, 0.769440),
    "city": (27.456674, 0.788213, 25.913591, 0.767201),
    "foliage": (25.436478, 0.733489, 24.047161, 0.718088),
    "walk": (28.417280, 0.893030, 26.968075, 0.879888),
}


def references_for(dataset: str, degradation: str = "bi") -> list[Reference]:
    """The published figures comparable with a run (BI only)."""
    return list(REFERENCES.get(dataset, [])) if degradation == "bi" else []
