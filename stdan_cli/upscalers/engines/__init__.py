"""Engines: the network exported once (ONNX) and run by other runtimes, checked against eager.

- :data:`BACKENDS` / :class:`Backend`: what ``--backend`` offers (needs, devices, precisions);
  :func:`place` resolves ``--backend/--device/--precision`` together.
- :func:`export_parts`: ``stdan export``: the per-frame feature extraction and the per-window
  reconstruction as ONNX files.
- :class:`Engine` / :func:`build_engine`: the two parts prepared (cached in the tool's cache folder)
  and run in ONNX Runtime, OpenVINO or ``torch.compile``, standing in for the model.
"""

from stdan_cli._lazy import lazy_exports

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendUnavailable",
    "Placement",
    "get_backend",
    "place",
    "Engine",
    "build_engine",
    "EXPORT_PRECISIONS",
    "OPSET",
    "ExportedPart",
    "export_parts",
    "relative_l2",
]

__getattr__ = lazy_exports(__name__, {
    **dict.fromkeys(("BACKENDS", "Backend", "BackendUnavailable", "Placement", "get_backend", "place"), "backends"),
    **dict.fromkeys(("Engine", "build_engine"), "engine"),
    **dict.fromkeys(("EXPORT_PRECISIONS", "OPSET", "ExportedPart", "export_parts", "relative_l2"), "export"),
})
