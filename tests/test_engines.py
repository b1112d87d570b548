"""Engines (--backend, stdan export): ONNX Runtime and OpenVINO against eager PyTorch on the
small configuration, the engine cache, and the one-line errors.

Exporting is the slow part (tens of seconds for the small configuration on 2 loaded cores),
so the session exports once, for 2-frame windows, into one cache every test shares; tests
that need a fresh or damaged cache copy it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stdan_cli.errors import OptionError
from stdan_cli.model import STDAN, STDANConfig, load_model, upscale_window
from stdan_cli.upscalers.engines import BackendUnavailable, build_engine, place, relative_l2

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

WINDOW = 2


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A small-configuration checkpoint whose deformable offsets are not zero (the official
    initialisation zeroes them, which would leave the sampling untested)."""
    torch.manual_seed(0)
    model = STDAN(STDANConfig.small())
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "conv_offset" in name:
                p.normal_(0.0, 0.05)
    path = tmp_path_factory.mktemp("weights") / "small.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def eager(weights):
    return load_model(weights).model


@pytest.fixture(scope="module")
def ort_engine(tmp_path_factory, weights, eager):
    """An ONNX Runtime engine whose preparation filled a new cache (the session's only export)."""
    root = tmp_path_factory.mktemp("engines")
    engine = build_engine(place("onnxruntime", "cpu", "fp32"), eager, threads=1, cache_dir=root)
    assert [line.split(" ")[0] for line in engine.prepare(WINDOW)] == ["features", f"reconstruct-n{WINDOW}"]
    return engine


@pytest.fixture(scope="module")
def ort_cache(ort_engine) -> Path:
    return ort_engine.root


def frames(h: int, w: int, n: int = WINDOW, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_exported_files_pass_the_onnx_checker(ort_cache):
    import onnx

    files = sorted(ort_cache.rglob("*.onnx"))
    assert [f.name for f in files] == ["features-dynamic-fp32.onnx", f"reconstruct-n{WINDOW}-dynamic-fp32.onnx"]
    for f in files:
        onnx.checker.check_model(str(f), full_check=True)
        graph = onnx.load(str(f), load_external_data=False).graph
        assert any(node.op_type == "GridSample" for node in graph.node) == f.name.startswith("reconstruct")


@pytest.mark.parametrize("size,skip,inputs_only", [((16, 24), 0, False), ((20, 44), 1, False), ((24, 16), 0, True)])
def test_onnxruntime_equals_eager(ort_engine, eager, size, skip, inputs_only):
    """Within 2e-4 relative L2 at sizes other than the traced one (16x24 after padding is
    the traced size; 20x44 pads to 24x48), for every window variant."""
    x = frames(*size)
    ref = upscale_window(eager, x, skip, inputs_only=inputs_only)
    out = upscale_window(ort_engine, x, skip, inputs_only=inputs_only)
    assert out.shape == ref.shape
    assert relative_l2(out, ref) < 2e-4


def test_a_second_engine_prepares_nothing(ort_cache, weights, eager):
    engine = build_engine(place("onnxruntime", "cpu", "fp32"), eager, threads=1, cache_dir=ort_cache)
    x = frames(16, 24)
    out = engine.extract_features(x)
    assert engine.prepared == [] and engine.notices == []
    assert relative_l2(out, eager.extract_features(x)) < 2e-4


OPENVINO_CHILD = """
import json, sys
from pathlib import Path
import torch
from stdan_cli.model import load_model, upscale_window
from stdan_cli.upscalers.engines import build_engine, place
from stdan_cli.upscalers.engines.export import relative_l2
eager = load_model(Path(sys.argv[1])).model
engine = build_engine(place("openvino", "cpu", "fp32"), eager, threads=1, cache_dir=Path(sys.argv[2]))
lines = []
engine.notify = lines.append
engine.prepare(int(sys.argv[3]))
x = torch.rand(1, int(sys.argv[3]), 3, 24, 32, generator=torch.Generator().manual_seed(1))
ref = upscale_window(eager, x, 1)
print(json.dumps({"l2": relative_l2(upscale_window(engine, x, 1), ref), "prepared": engine.prepared, "lines": lines}))
"""


def openvino_child(weights: Path, cache_dir: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", OPENVINO_CHILD, str(weights), str(cache_dir), str(WINDOW)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_openvino_equals_eager_and_a_second_run_reuses_its_compiled_model(ort_cache, weights, tmp_path):
    """In child processes: OpenVINO's runtime, once loaded, makes a later SIGINT to this process
    (the training tests' Ctrl-C) crash it with a segmentation fault."""
    pytest.importorskip("openvino")
    root = tmp_path / "cache"
    shutil.copytree(ort_cache, root, ignore=shutil.ignore_patterns("openvino-*"))
    first = openvino_child(weights, root)
    assert first["l2"] < 2e-4
    # OpenVINO reads the exported files and compiles them, into its CACHE_DIR in the engine cache
    assert [p.split(" ")[0] for p in first["prepared"]] == ["features-dynamic-fp32", f"reconstruct-n{WINDOW}-dynamic-fp32"]
    assert all(" compiled by OpenVINO for CPU in " in p for p in first["prepared"])
    blobs = sorted(root.rglob("openvino-*/**/*.blob"))
    assert len(blobs) == 2
    second = openvino_child(weights, root)
    assert second["l2"] < 2e-4
    assert second["prepared"] == []  # nothing exported, nothing compiled
    reused = [line for line in second["lines"] if "reused from OpenVINO's cache" in line]
    assert len(reused) == 2 and sorted(root.rglob("openvino-*/**/*.blob")) == blobs


def test_damaged_cache_entry_is_exported_again(ort_cache, weights, eager, tmp_path):
    root = tmp_path / "cache"
    shutil.copytree(ort_cache, root)
    (victim,) = root.rglob("features-*.onnx")
    victim.write_bytes(victim.read_bytes()[:1000])  # truncated
    lines = []
    engine = build_engine(place("onnxruntime", "cpu", "fp32"), eager, threads=1, cache_dir=root)
    engine.notify = lines.append
    x = frames(16, 24)
    assert relative_l2(engine.extract_features(x), eager.extract_features(x)) < 2e-4
    assert [p.split(" ")[0] for p in engine.prepared] == ["features"]
    assert len(engine.notices) == 1 and "damaged" in engine.notices[0]
    assert any(line.startswith("prepared onnxruntime engine: exporting features") for line in lines)


def test_unreadable_cache_entry_with_a_matching_digest_is_exported_again(ort_cache, weights, eager, tmp_path):
    """A file its runtime refuses, whatever its sidecar says, is exported again too."""
    from stdan_cli.upscalers.engines import cache

    root = tmp_path / "cache"
    shutil.copytree(ort_cache, root)
    (victim,) = root.rglob("features-*.onnx")
    victim.write_bytes(b"not an onnx file")
    tmp = cache.new_file(victim)
    tmp.write_bytes(b"not an onnx file")
    cache.commit(tmp, victim)  # the sidecar now vouches for the bad file
    engine = build_engine(place("onnxruntime", "cpu", "fp32"), eager, threads=1, cache_dir=root)
    x = frames(16, 24)
    assert relative_l2(engine.extract_features(x), eager.extract_features(x)) < 2e-4
    assert len(engine.notices) == 1 and "could not be loaded" in engine.notices[0]


def test_unknown_backend_and_device_mismatch_are_one_line():
    with pytest.raises(OptionError, match="unknown backend 'tensorrt'"):
        place("tensorrt")
    with pytest.raises(BackendUnavailable, match="cannot run on --device mps; it runs on cpu, gpu, npu"):
        place("openvino", "mps")
    with pytest.raises(BackendUnavailable, match="no CUDAExecutionProvider: pip install onnxruntime-gpu"):
        from unittest import mock

        with mock.patch("torch.cuda.is_available", return_value=True), \
                mock.patch("torch.cuda.device_count", return_value=1), \
                mock.patch("torch.cuda.current_device", return_value=0):
            place("onnxruntime", "cuda")


def test_missing_extra_is_one_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(BackendUnavailable,
                       match=r'^--backend openvino needs openvino: pip install "onnx>=1\.15" "openvino>=2024\.0"$'):
        place("openvino")


def test_cli_errors_are_one_line(weights, tmp_path):
    from click.testing import CliRunner
    from media import make_video

    from stdan_cli.cli.main import main

    src = make_video(tmp_path / "in.mkv", n_frames=2)
    runner = CliRunner()
    result = runner.invoke(main, ["upscale", str(src), str(tmp_path / "o.mkv"), "--weights", str(weights),
                                  "--backend", "openvino", "--device", "cuda"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --backend openvino cannot run on --device cuda; it runs on cpu, gpu, npu"]
    result = runner.invoke(main, ["upscale", str(src), str(tmp_path / "o.mkv"), "--model", "bicubic",
                                  "--backend", "onnxruntime"])
    assert result.exit_code == 2 and "runs in PyTorch only" in result.output
    assert not (tmp_path / "o.mkv").exists()


def test_upscale_with_onnxruntime_matches_eager_within_one_code_value(ort_cache, weights, tmp_path, monkeypatch):
    """A whole run (tiles, feature cache, chunks, encoding) on a lossless codec; the engine
    comes from the session's cache, so the run prepares nothing and says nothing about it."""
    import av
    import numpy as np
    from click.testing import CliRunner
    from media import make_video

    from stdan_cli.cli.main import main

    rng = np.random.default_rng(0)
    pictures = [rng.integers(0, 256, (16, 24, 3), dtype=np.uint8) for _ in range(3)]
    src = make_video(tmp_path / "in.mkv", n_frames=3, codec="ffv1", pix_fmt="yuv444p", frames=pictures)
    monkeypatch.setenv("STDAN_ENGINE_CACHE", str(ort_cache))
    before = {f: f.stat().st_mtime_ns for f in ort_cache.rglob("*")}
    common = ["--weights", str(weights), "--device", "cpu", "--precision", "fp32", "--threads", "1", "--window", str(WINDOW), "--stride", "1",
              "--codec", "ffv1", "--pix-fmt", "yuv444p", "--tile", "16", "--tile-overlap", "8", "--chunk-frames", "2"]
    runner = CliRunner()
    outputs = {}
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / f"{backend}.mkv"
        result = runner.invoke(main, ["upscale", str(src), str(out), "--backend", backend, *common])
        assert result.exit_code == 0, result.output
        assert "preparing" not in result.output
        with av.open(str(out)) as container:
            outputs[backend] = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert outputs["torch"].shape == outputs["onnxruntime"].shape == (5, 64, 96, 3)
    assert np.abs(outputs["torch"].astype(int) - outputs["onnxruntime"].astype(int)).max() <= 1
    assert {f: f.stat().st_mtime_ns for f in ort_cache.rglob("*")} == before  # nothing prepared or rewritten


@pytest.fixture
def exports_copied(ort_cache, monkeypatch):
    """``stdan export`` with exporting replaced by a copy of the session's files (an export takes
    minutes here): the command around the export is what these tests check."""
    import stdan_cli.upscalers.engines.export as export_module

    def copy_cached(model, spec, path, window, size=None):
        (cached,) = ort_cache.rglob(f"{spec.name}*-fp32.onnx")
        shutil.copyfile(cached, path)
        return 0.0

    monkeypatch.setattr(export_module, "export_part", copy_cached)


def test_stdan_export_writes_checks_and_refuses_to_replace(exports_copied, weights, tmp_path):
    """The command around the export (tested above through the engine): files named by part,
    window and precision, the comparison with eager at another size, no replacement without -y.
    Exporting itself is replaced by a copy of the session's files (an export takes minutes here)."""
    from click.testing import CliRunner

    from stdan_cli.cli.main import main

    out = tmp_path / "onnx"
    runner = CliRunner()
    args = ["export", "-o", str(out), "--weights", str(weights), "--window", str(WINDOW)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["features-fp32.onnx", f"reconstruct-n{WINDOW}-fp32.onnx"]
    errors = [float(line.split("relative L2 ")[1].split()[0]) for line in result.output.splitlines()
              if "relative L2" in line]
    assert len(errors) == 4 and max(errors) < 2e-4, result.output  # features and three window variants
    again = runner.invoke(main, args)
    assert again.exit_code == 1 and again.output.strip().endswith("exists; use -y/--overwrite to replace it")
    assert runner.invoke(main, [*args, "-y", "--no-check"]).exit_code == 0


@pytest.mark.parametrize("backend", ["onnxruntime"])  # not OpenVINO in this process (see above)
def test_an_engine_plans_tiles_for_its_unsliced_graphs(backend, weights, tmp_path):
    # Exported graphs hold every step's temporaries at once: with the same memory an engine must
    # be given smaller tiles than eager PyTorch, or a frame eager runs whole exhausts it.
    # OpenVINO's upscaler takes the same path (its Backend's bytes_per_pixel). compile runs its
    # steps in eager's slices, so it plans as eager does.
    from media import make_video

    from stdan_cli.pipeline import UpscaleOptions
    from stdan_cli.pipeline.plan import plan_upscale
    from stdan_cli.upscalers import build_upscaler
    from stdan_cli.upscalers.engines import BACKENDS

    src = make_video(tmp_path / "in.mkv", n_frames=2, size=(96, 64))
    eager = build_upscaler("stdan", weights, "cpu", "fp32", 1)
    engine = build_upscaler("stdan", weights, "cpu", "fp32", 1, backend)  # parts are prepared on first use
    assert engine.descriptor.bytes_per_pixel == BACKENDS[backend].bytes_per_pixel > eager.descriptor.bytes_per_pixel
    budget = 96 * 64 * eager.descriptor.bytes_per_pixel  # eager runs the whole frame in it
    whole = plan_upscale(src, tmp_path / "a.mkv", eager.descriptor, UpscaleOptions(), budget_bytes=budget)
    tiled = plan_upscale(src, tmp_path / "b.mkv", engine.descriptor, UpscaleOptions(), budget_bytes=budget)
    assert len(whole.tiles) == 1 and len(tiled.tiles) > 1
    assert build_upscaler("stdan", weights, "cpu", "fp32", 1, "compile").descriptor == eager.descriptor


# --- torch.compile: the network it compiles -----------------------------------------------------


def test_compile_builds_the_network_in_the_resolved_precision(weights):
    # Nothing compiles until the first call: the network it will compile is already in bf16.
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("this CPU has no bfloat16 support")
    from stdan_cli.model.swin import WindowAttention
    from stdan_cli.upscalers import build_upscaler

    upscaler = build_upscaler("stdan", weights, "cpu", "bf16", 1, "compile")
    assert upscaler.precision == "bf16"
    model = upscaler.engine.model
    dtypes = {m.qkv.weight.dtype for m in model.modules() if isinstance(m, WindowAttention)}
    assert dtypes == {torch.bfloat16}
    assert upscaler.fallback is not model and next(upscaler.fallback.parameters()).dtype == torch.float32


@pytest.fixture(scope="module")
def compiled(weights):
    """A compile upscaler prepared as upscale and eval prepare it (the slow part: its graphs),
    with the phase lines it said and the number of graphs Dynamo compiled meanwhile."""
    from stdan_cli.api import prepare_backend
    from stdan_cli.upscalers import build_upscaler

    upscaler = build_upscaler("stdan", weights, "cpu", "fp32", 1, "compile")
    lines: list[str] = []
    before = compiled_graphs()
    prepare_backend(upscaler, WINDOW, lines.append)
    return upscaler, lines, compiled_graphs() - before


def compiled_graphs() -> int:
    """Graphs Dynamo has compiled in this process so far."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


@pytest.mark.slow
def test_compile_prepares_a_graph_per_block_variant_and_says_how_long_it_took(compiled):
    upscaler, lines, graphs = compiled
    engine = upscaler.engine
    # Regional: the step of every Swin block, not the whole network. The 4 blocks share one
    # graph: a step sees neither the shift nor the batch nor the tile's size.
    assert engine.regions == {"SwinBlock": 4}
    assert graphs == 1
    assert len(engine.prepared) == 1
    assert re.fullmatch(r"compiled 4 SwinBlock into 1 graph in \d+\.\d s here", engine.prepared[0])
    # said before compiling (what the wait rests on) and after (the time it took here)
    assert lines[0].startswith("preparing compile engine: compiling 4 SwinBlock") and "measured" in lines[0]
    assert lines[-1] == (f"prepared compile engine: {engine.prepared[0]}; other tile sizes and numbers of "
                         "frames reuse them")
    assert engine.prepare(WINDOW) == []  # prepared once


@pytest.mark.slow
def test_compiled_blocks_equal_eager_and_other_tile_sizes_and_frame_counts_compile_nothing(compiled, eager):
    # Through the upscaler, as the pipeline calls it: under the threads the engine prepared with
    # (graphs are kept per number of threads), a feature cache per tile.
    upscaler, _, _ = compiled
    before = compiled_graphs()
    # None is the warm-up's 16x24 (6 windows a step): 24x40 and 40x32 make other numbers of
    # windows a step, 16x16 as many rows as the network has channels, 3 frames another batch for
    # the encoder and the decoder, skipped outputs and inputs_only fewer outputs.
    for size, n, skip, inputs_only in (((24, 40), 2, 0, False), ((16, 16), 2, 1, True), ((40, 32), 3, 1, False)):
        x = frames(*size, n=n)
        out = upscaler(x, skip, size, inputs_only)
        ref = upscale_window(eager, x, skip, inputs_only=inputs_only)
        assert out.shape == ref.shape
        assert relative_l2(out, ref) < 1e-4
    # a stream of windows over one tile at yet another size: the second window encodes one new
    # frame, and takes the first's features from the cache
    video = torch.rand(1, 3, 3, 32, 48, generator=torch.Generator().manual_seed(1))
    first = upscaler(video[:, :2], 0, "tile", frame_indices=[0, 1])
    second = upscaler(video[:, 1:], 1, "tile", frame_indices=[1, 2])
    assert upscaler.caches["tile"].encoded == 3
    ref = torch.cat([upscale_window(eager, video[:, :2]), upscale_window(eager, video[:, 1:], 1)], 1)
    assert relative_l2(torch.cat([first, second], 1), ref) < 1e-4
    assert compiled_graphs() == before  # every size, batch and output count reused the prepared graphs


def test_eager_upscalers_have_nothing_to_prepare():
    from stdan_cli.api import prepare_backend
    from stdan_cli.upscalers import build_upscaler

    said: list[str] = []
    prepare_backend(build_upscaler("bicubic"), 4, said.append)
    assert said == []

# --- where engines go, what keys them, and their permissions (issue 29) ---------------------------


def _clip(tmp_path: Path) -> Path:
    import numpy as np
    from media import make_video

    rng = np.random.default_rng(0)
    pictures = [rng.integers(0, 256, (16, 24, 3), dtype=np.uint8) for _ in range(3)]
    return make_video(tmp_path / "in.mkv", n_frames=3, codec="ffv1", pix_fmt="yuv444p", frames=pictures)


ENGINE_RUN = ["--device", "cpu", "--precision", "fp32", "--threads", "1", "--window", str(WINDOW), "--stride", "1", "--codec", "ffv1",
              "--pix-fmt", "yuv444p", "--chunk-frames", "2"]


def _frames(path: Path):
    import av
    import numpy as np

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(int)


@pytest.mark.slow
def test_new_weights_under_a_stale_sidecar_run_and_are_recorded(ort_cache, weights, tmp_path, monkeypatch):
    """New weights copied over w.pth with the old w.pth.sha256 left beside it: the cache was
    keyed by the sidecar, so --backend onnxruntime ran the old weights' engines while the job
    recorded the new weights. Engines are keyed by the weights as loaded: the new ones are
    exported and run, and their key is the digest the job records."""
    from click.testing import CliRunner

    from stdan_cli.cli.main import main
    from stdan_cli.model.loader import state_dict_sha256
    from stdan_cli.weights.store import sha256_file, write_sidecar

    checkpoint = tmp_path / "w.pth"
    shutil.copyfile(weights, checkpoint)
    write_sidecar(checkpoint, sha256_file(checkpoint))  # as the weights store leaves it
    torch.manual_seed(1)
    torch.save(STDAN(STDANConfig.small()).state_dict(), tmp_path / "new.pth")
    shutil.copyfile(tmp_path / "new.pth", checkpoint)  # new weights, the old sidecar stays
    cache_dir = tmp_path / "cache"
    shutil.copytree(ort_cache, cache_dir)  # holds the old weights' engines
    monkeypatch.setenv("STDAN_ENGINE_CACHE", str(cache_dir))
    src = _clip(tmp_path)
    runner = CliRunner()
    for backend in ("torch", "onnxruntime"):
        result = runner.invoke(main, ["upscale", str(src), str(tmp_path / f"{backend}.mkv"), "--weights",
                                      str(checkpoint), "--backend", backend, *ENGINE_RUN])
        assert result.exit_code == 0, result.output
    assert abs(_frames(tmp_path / "torch.mkv") - _frames(tmp_path / "onnxruntime.mkv")).max() <= 1
    new_sha = state_dict_sha256(load_model(checkpoint).model)
    assert (cache_dir / new_sha[:16]).is_dir()


def test_engines_for_a_checkpoint_elsewhere_go_in_the_tools_cache(ort_cache, weights, tmp_path, monkeypatch):
    """--backend with --weights PATH put a stdan-engines/ folder beside the user's checkpoint.
    Engines live in the tool's cache (here $STDAN_HOME/engines, which already holds them, so
    nothing is prepared) and the checkpoint's folder is left as it was."""
    from click.testing import CliRunner

    from stdan_cli.cli.main import main

    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copyfile(weights, mine / "w.pth")
    monkeypatch.delenv("STDAN_ENGINE_CACHE", raising=False)
    monkeypatch.setenv("STDAN_HOME", str(tmp_path / "home"))
    shutil.copytree(ort_cache, tmp_path / "home" / "engines")
    result = CliRunner().invoke(main, ["upscale", str(_clip(tmp_path)), str(tmp_path / "out.mkv"), "--weights",
                                       str(mine / "w.pth"), "--backend", "onnxruntime", *ENGINE_RUN])
    assert result.exit_code == 0, result.output
    assert "preparing" not in result.output
    assert [p.name for p in mine.iterdir()] == ["w.pth"]


@pytest.fixture
def group_umask():
    """The umask of a shared cluster folder (group-writable files), restored afterwards."""
    old = os.umask(0o002)
    yield 0o664
    os.umask(old)


def test_engine_cache_files_get_the_umasks_permissions(tmp_path, group_umask):
    """Cache entries were created by mkstemp (0600): other users of a shared cache could not read them."""
    from stdan_cli.upscalers.engines import cache
    from stdan_cli.weights.store import sidecar_path

    path = tmp_path / "engines" / "features.onnx"
    tmp = cache.new_file(path)
    tmp.write_bytes(b"an engine")
    cache.commit(tmp, path)
    assert stat.S_IMODE(path.stat().st_mode) == group_umask
    assert stat.S_IMODE(sidecar_path(path).stat().st_mode) == group_umask


def test_stdan_export_files_get_the_umasks_permissions(exports_copied, weights, tmp_path, group_umask):
    from click.testing import CliRunner

    from stdan_cli.cli.main import main

    out = tmp_path / "onnx"
    result = CliRunner().invoke(main, ["export", "-o", str(out), "--weights", str(weights), "--window", str(WINDOW),
                                       "--no-check"])
    assert result.exit_code == 0, result.output
    assert sorted((p.name, stat.S_IMODE(p.stat().st_mode)) for p in out.iterdir()) == [
        ("features-fp32.onnx", group_umask), (f"reconstruct-n{WINDOW}-fp32.onnx", group_umask)]


def test_stdan_export_does_not_write_through_a_link(exports_copied, weights, tmp_path):
    """A link at an output name is refused without -y and replaced (its target kept) with it."""
    from click.testing import CliRunner

    from stdan_cli.cli.main import main

    out = tmp_path / "onnx"
    out.mkdir()
    target = tmp_path / "precious.txt"
    target.write_text("mine")
    (out / "features-fp32.onnx").symlink_to(target)
    args = ["export", "-o", str(out), "--weights", str(weights), "--window", str(WINDOW), "--no-check"]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1 and "exists; use -y/--overwrite" in refused.output
    assert CliRunner().invoke(main, [*args, "-y"]).exit_code == 0
    assert target.read_text() == "mine" and not (out / "features-fp32.onnx").is_symlink()


def test_stdan_export_shows_its_phases_and_their_time(weights, tmp_path, monkeypatch):
    # Issue 32: `stdan export` printed nothing for minutes (the export, then the check). Off a
    # terminal it prints the phase with the run's and the phase's clock when each starts and at
    # --log-interval; -q prints nothing. Exporting is replaced by a pause and a placeholder file.
    import time

    from click.testing import CliRunner

    import stdan_cli.upscalers.engines.export as export_module
    from stdan_cli.cli.main import main

    def slow_export(model, spec, path, window, size=None):
        time.sleep(0.3)
        path.write_bytes(b"onnx")
        return 0.3

    monkeypatch.setattr(export_module, "export_part", slow_export)
    args = ["export", "-o", str(tmp_path / "onnx"), "--weights", str(weights), "--window", str(WINDOW),
            "--log-interval", "0.1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    phases = [line.split("] ", 1)[1].split(" (")[0] for line in lines if line.startswith("[0:")]
    assert phases[0] == "loading weights" and phases[-1] == "checking against eager PyTorch in ONNX Runtime"
    assert phases.count("exporting features-fp32.onnx") >= 2  # when it starts, then at the interval
    assert f"exporting reconstruct-n{WINDOW}-fp32.onnx" in phases
    assert any(line.startswith("wrote ") for line in lines)
    quiet = CliRunner().invoke(main, [*args, "-y", "-q"])
    assert quiet.exit_code == 0 and quiet.output == ""
