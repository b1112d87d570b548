"""A prepared engine: the network's two parts in a backend's runtime, standing in for the
model in :func:`stdan_cli.model.upscale_window` (``extract_features`` per frame,
``reconstruct`` per window), so tiles, the feature cache and chunks are the pipeline's.

Parts are prepared on first use, or up front with :meth:`Engine.prepare` (the CLI does, to
show the phase and its time before the run starts): the exported ONNX file is taken from the
cache (:mod:`stdan_cli.upscalers.engines.cache`) or exported into it; the runtime then loads it. A
cached file that is damaged, or that the runtime cannot load, is removed and exported again.
``compile`` exports nothing: the Swin blocks' steps are compiled in place
(:mod:`stdan_cli.upscalers.engines.regional`), and preparing runs one small window through
them, which compiles every graph the run needs (shapes are dynamic), timed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from stdan_cli.model import STDAN, output_positions
from stdan_cli.model.loader import state_dict_sha256
from stdan_cli.upscalers.engines import cache
from stdan_cli.upscalers.engines.backends import Placement
from stdan_cli.upscalers.engines.export import export_part, exporter_version, precision_model
from stdan_cli.upscalers.engines.parts import FEATURES, RECONSTRUCT, PartSpec, part_module
from stdan_cli.upscalers.precisions import PRECISIONS

# Said before compiling, so the wait is expected (the official network's Swin steps: 12-15 s
# on the project's quiet 2-core CPU; benchmarks/bench_model.py --backends compile); the phase
# line after it gives the time taken here.
COMPILE_MEASURED = "measured: about 15 s for the official network on a 2-core CPU"


@dataclass
class Engine:
    placement: Placement
    # The network the parts are exported from (float32), or for compile the one it runs (in the
    # run's precision, its repeated blocks compiled in place).
    model: STDAN
    weights_sha256: str
    root: Path  # the engine cache
    threads: int | None = None
    notify: Callable[[str], None] | None = None  # phase lines (preparation and its time)
    prepared: list[str] = field(default_factory=list)  # what this engine exported or built
    notices: list[str] = field(default_factory=list)  # damaged cache entries replaced
    regions: dict[str, int] = field(default_factory=dict)  # compile: the compiled modules by type
    _runners: dict = field(default_factory=dict)

    @property
    def config(self):
        return self.model.config

    @property
    def backend(self) -> str:
        return self.placement.backend.name

    @property
    def frames_dtype(self) -> torch.dtype:
        """What the parts take: the float32 frames of the eager network they are exported from."""
        return self.model.frames_dtype

    @property
    def frames_device(self) -> torch.device:
        return self.model.frames_device

    # --- the model's interface (see upscale_window) -------------------------------------
    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, 3, H, W) -> (B, N, nf, H, W), as :meth:`STDAN.extract_features`."""
        b, n, c, h, w = x.shape
        out = self._runner(FEATURES, n)(x.reshape(b * n, c, h, w).float())
        return out.to(self.placement.device).view(b, n, *out.shape[1:])

    def reconstruct(self, l1: torch.Tensor, skip_outputs: int = 0, inputs_only: bool = False) -> torch.Tensor:
        """(B, N, nf, H, W) -> (B, T, 3, sH, sW), as :meth:`STDAN.reconstruct`."""
        n = l1.shape[1]
        positions = torch.tensor(output_positions(n, skip_outputs, inputs_only), dtype=torch.int64,
                                 device=l1.device if self.placement.device.type == "cuda" else "cpu")
        return self._runner(RECONSTRUCT, n)(l1.float(), positions).to(self.placement.device)

    # --- preparation ------------------------------------------------------------------
    def prepare(self, window: int) -> list[str]:
        """Make both parts ready for windows of ``window`` frames; returns what was prepared now."""
        before = len(self.prepared)
        for spec in (FEATURES, RECONSTRUCT):
            self._runner(spec, window)
        if not self.placement.backend.exports and not self.prepared:  # compile: its blocks now
            self._compile_now(window)
        return self.prepared[before:]

    def _compile_now(self, window: int) -> None:
        """Compile the graph a run needs by running one small window, timed: 2x3 size multiples,
        so that no Swin step takes a single window (PyTorch would specialise a size of 1). A
        step sees neither the batch nor the tile's size, so other tile sizes, batches and
        numbers of frames reuse it (see :mod:`~stdan_cli.upscalers.engines.regional`)."""
        from stdan_cli.model import upscale_window
        from stdan_cli.upscalers.device import intra_op_threads, tf32_allowed
        from stdan_cli.upscalers.engines.regional import compiled_graphs, describe

        m = self.config.size_multiple
        frames = torch.rand(1, window, 3, 2 * m, 3 * m, generator=torch.Generator().manual_seed(0))
        what = f"compile engine: compiling {describe(self.regions)} (torch.compile, dynamic shapes)"
        self._say(f"preparing {what}; {COMPILE_MEASURED}...")
        start, graphs = time.perf_counter(), compiled_graphs()
        with intra_op_threads(self.threads), tf32_allowed(PRECISIONS[self.placement.precision].tf32):
            upscale_window(self, frames.to(self.placement.device))
        seconds, graphs = time.perf_counter() - start, compiled_graphs() - graphs
        done = f"compiled {describe(self.regions)} into {graphs} graph{'' if graphs == 1 else 's'} in {seconds:.1f} s here"
        self.prepared.append(done)
        self._say(f"prepared compile engine: {done}; other tile sizes and numbers of frames reuse them")

    def _part_name(self, spec: PartSpec, window: int) -> str:
        return f"reconstruct-n{window}" if spec is RECONSTRUCT else spec.name

    def _runner(self, spec: PartSpec, window: int) -> Callable:
        key = self._part_name(spec, window)
        if key not in self._runners:
            self._runners[key] = self._load(spec, window)
        return self._runners[key]

    def _say(self, line: str) -> None:
        if self.notify is not None:
            self.notify(line)

    def _load(self, spec: PartSpec, window: int) -> Callable:
        if not self.placement.backend.exports:
            return self._compiled(spec)
        path = self._onnx(spec, window)
        try:
            return self._open(path, spec)
        except Exception as exc:  # the runtime cannot read the cached file: export it again
            cache.discard(path)
            reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
            self.notices.append(f"cached engine {path.name} could not be loaded ({reason}); exported again")
            return self._open(self._onnx(spec, window), spec)

    def _onnx_precision(self) -> str:
        return self.placement.backend.onnx_precision(self.placement.precision)

    def _onnx(self, spec: PartSpec, window: int) -> Path:
        """The part's ONNX file from the cache, exported into it when missing or damaged."""
        key = cache.EngineKey(self.weights_sha256, "onnx", exporter_version(), self._part_name(spec, window),
                              "dynamic", self._onnx_precision())
        path = key.path(self.root, ".onnx")
        if path.exists() and not cache.is_intact(path):
            cache.discard(path)
            self.notices.append(f"cached engine {path} was damaged; exported again")
        if not path.exists():
            what = f"{self.backend} engine: exporting {key.part} ({key.precision}) to ONNX"
            self._say(f"preparing {what}...")
            start = time.perf_counter()
            tmp = cache.new_file(path)
            try:
                export_part(precision_model(self.model, key.precision), spec, tmp, window)
                cache.commit(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            seconds = time.perf_counter() - start
            self.prepared.append(f"{key.part} ({key.precision}) exported in {seconds:.1f} s")
            self._say(f"prepared {what} in {seconds:.1f} s (cached in {path.parent})")
        return path

    def _open(self, path: Path, spec: PartSpec) -> Callable:
        p = self.placement
        return p.backend.open(path, p, self.threads, self.root / self.weights_sha256[:16], self._output_shape(spec),
                              self._report)

    def _report(self, line: str, prepared: bool) -> None:
        """What a runtime did while loading a part: said, and kept in :attr:`prepared` when it
        prepared something new (else it reused what an earlier run prepared)."""
        if prepared:
            self.prepared.append(line)
            self._say(f"prepared {self.backend} engine: {line}")
        else:
            self._say(line)

    def _output_shape(self, spec: PartSpec) -> Callable[..., tuple[int, ...]]:
        cfg = self.config
        if spec is FEATURES:
            return lambda frames: (frames.shape[0], cfg.nf, *frames.shape[2:])
        s = cfg.scale
        return lambda feats, positions: (feats.shape[0], positions.shape[0], 3, s * feats.shape[3], s * feats.shape[4])

    def _compiled(self, spec: PartSpec) -> Callable:
        """The part run by :attr:`model` with its repeated blocks compiled (once for both parts;
        see :mod:`stdan_cli.upscalers.engines.regional`). Graphs compile on their first call
        (:meth:`prepare` makes that call up front); PyTorch caches compiled code on disk, so a
        later process compiles faster."""
        from stdan_cli.upscalers.engines.regional import compile_regions

        if not self.regions:
            self.regions = compile_regions(self.model)
        module = part_module(spec, self.model)

        def run(*inputs: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return module(*(t.to(self.placement.device) for t in inputs))
        return run


def build_engine(placement: Placement, model: STDAN, threads: int | None = None, cache_dir: str | Path | None = None,
                 weights_sha256: str | None = None) -> Engine:
    """An :class:`Engine` for ``model`` (eval; float32, or for compile in the run's precision) at
    ``placement``, cached in ``cache_dir``
    (default: :func:`stdan_cli.upscalers.engines.cache.cache_root`) under the sha256 of
    ``model``'s weights (``weights_sha256``: that digest, when the caller computed it already)."""
    sha = weights_sha256 or state_dict_sha256(model)
    root = Path(cache_dir) if cache_dir is not None else cache.cache_root()
    return Engine(placement, model.eval(), sha, root, threads)
