"""The model a run uses: ``--model/--weights/--device/--precision/--threads/--offline/--backend``
as one value, checked, its checkpoint found (downloaded on first use), built and prepared."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from stdan_cli.errors import OptionError
from stdan_cli.upscalers.registry import UPSCALERS

NotifyFn = Callable[[str], None]


@dataclass(frozen=True)
class ModelChoice:
    """Which upscaler, where and how it runs (the model options of ``upscale`` and ``eval``)."""

    name: str = "stdan"
    weights: str | None = None  # a path or a registry name; None: the default checkpoint
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    backend: str = "auto"
    offline: bool = False  # never download the default checkpoint
    quiet: bool = False  # no bar for a first-run download

    @property
    def needs_weights(self) -> bool:
        return self.name in UPSCALERS and UPSCALERS[self.name].needs_weights

    def checkpoint(self) -> str | None:
        """What to pass as ``weights`` to :func:`~stdan_cli.upscalers.build_upscaler`: for the
        model with weights without --weights, the default checkpoint, downloaded on first use
        (after --device, --precision and --backend are checked: a mistake there should not wait
        for a download). None for a model without weights."""
        if self.name in UPSCALERS and not self.needs_weights:
            if self.weights is not None:
                raise OptionError(f"--weights is for a model with weights (stdan); --model {self.name} has none")
            return None
        if self.name not in UPSCALERS:
            return self.weights
        from stdan_cli.upscalers.device import resolve_device, resolve_precision
        from stdan_cli.upscalers.engines import get_backend, place
        from stdan_cli.weights.first_run import weights_for_run

        if get_backend(self.backend).engine:
            place(self.backend, self.device, self.precision)  # --backend with --device and --precision
        else:
            resolve_precision(self.precision, resolve_device(self.device))
        return str(weights_for_run(self.weights, offline=self.offline, quiet=self.quiet))

    def checkpoint_file(self, checkpoint: str | None) -> Path | None:
        """The file workers elsewhere load (resolved here, before a cluster starts); None for a
        model without weights. ``checkpoint``: what :meth:`checkpoint` gave."""
        if not self.needs_weights:
            return None
        from stdan_cli.weights import resolve_weights

        return resolve_weights(checkpoint)

    def build(self, checkpoint: str | None):
        """The upscaler in this process (``checkpoint``: what :meth:`checkpoint` gave)."""
        from stdan_cli.upscalers import build_upscaler

        return build_upscaler(self.name, checkpoint, self.device, self.precision, self.threads, self.backend)


def prepare_backend(upscaler, window: int, notify: NotifyFn) -> None:
    """Prepare an engine upscaler's parts for ``window``-frame windows before the run, with a
    line per preparation and its time (nothing is said when the cache has them; ``compile``
    always compiles its blocks, and says how long that took here)."""
    engine = getattr(upscaler, "engine", None)
    if engine is None:
        return
    engine.notify = notify
    try:
        engine.prepare(window)
    finally:
        engine.notify = None
