"""Device-aware choices, checked on the CPU with what only a GPU has mocked: precision,
TF32, the memory budget, the out-of-memory fallback and the non-finite fp16 guard."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from media import make_video, read_frames

import stdan_cli.upscalers.registry as upscaler_registry  # the upscale command builds its upscaler there
from stdan_cli.api import upscale_video
from stdan_cli.cli import main
from stdan_cli.cli.main import OUT_OF_MEMORY
from stdan_cli.errors import OptionError, is_out_of_memory
from stdan_cli.pipeline import UpscaleOptions, plan_upscale
from stdan_cli.upscalers import StdanUpscaler, build_upscaler, memory_budget, resolve_precision
from stdan_cli.upscalers import device as device_module
from stdan_cli.upscalers import stdan as stdan_upscaler_module
from stdan_cli.upscalers.device import CPU_MEMORY_BUDGET, GiB, tf32_allowed
from stdan_cli.video.encoders import EncodeSettings

CUDA0, CUDA1 = torch.device("cuda", 0), torch.device("cuda", 1)
LOSSLESS = EncodeSettings(codec="ffv1", pix_fmt="yuv444p")


@pytest.fixture
def two_gpus(monkeypatch):
    """cuda:0 an Ampere card (8.6), cuda:1 a Turing card (7.5); the current device is cuda:0."""
    capability = {0: (8, 6), 1: (7, 5)}
    asked = []

    def get_capability(device):
        asked.append(device)
        return capability[torch.device(device).index]

    monkeypatch.setattr(torch.cuda, "get_device_capability", get_capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # the current device's answer
    return asked


@pytest.fixture
def cpu_with(monkeypatch):
    """Makes this CPU report the given /proc/cpuinfo flags, and oneDNN bfloat16 support or not."""

    def make(flags: set[str], onednn_bf16: bool = True) -> None:
        monkeypatch.setattr(device_module, "cpu_flags", lambda: frozenset(flags))
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn_bf16)

    return make


def test_auto_precision_follows_the_device(two_gpus, monkeypatch, cpu_with):
    cpu_with({"avx2", "fma"})
    assert resolve_precision("auto", torch.device("cpu")).name == "fp32"
    assert resolve_precision("auto", CUDA0).name == "bf16"
    assert resolve_precision("auto", CUDA1).name == "fp16"
    monkeypatch.setattr(torch.backends.mps, "is_macos_or_newer", lambda major, minor: major <= 13)
    assert resolve_precision("auto", torch.device("mps")).name == "fp16"


NO_NATIVE = "auto: no native bfloat16 on this CPU"


@pytest.mark.parametrize("flags, onednn, name, why", [
    ({"avx512f", "avx512_bf16"}, True, "bf16", "auto: native bfloat16 on this CPU, AVX512-BF16"),
    ({"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}, True, "bf16", "auto: native bfloat16 on this CPU, AMX"),
    ({"avx512f", "avx512bw"}, True, "fp32", NO_NATIVE),  # oneDNN converts bf16 to float32 there: slower
    ({"avx2", "fma"}, False, "fp32", NO_NATIVE),
    ({"avx512_bf16"}, False, "fp32", NO_NATIVE),  # a PyTorch build without oneDNN bfloat16
    (set(), False, "fp32", NO_NATIVE),  # no /proc/cpuinfo (macOS, Windows)
])
def test_auto_on_a_cpu_is_bf16_where_it_is_native(cpu_with, flags, onednn, name, why):
    cpu_with(flags, onednn)
    chosen = resolve_precision("auto", torch.device("cpu"))
    assert (chosen.name, chosen.why) == (name, why)
    assert resolve_precision(name, torch.device("cpu")).why == ""  # named by the user: nothing to explain


def test_cpu_flags_are_read_from_proc_cpuinfo(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some Xeon\nflags\t\t: fpu sse2 avx512f avx512_bf16\n\n"
                    "processor\t: 1\nflags\t\t: fpu sse2 avx512f avx512_bf16\n")
    monkeypatch.setattr(device_module, "CPUINFO", info)
    device_module.cpu_flags.cache_clear()
    try:
        assert device_module.cpu_flags() == {"fpu", "sse2", "avx512f", "avx512_bf16"}
        device_module.cpu_flags.cache_clear()
        monkeypatch.setattr(device_module, "CPUINFO", tmp_path / "absent")
        assert device_module.cpu_flags() == frozenset()
    finally:
        device_module.cpu_flags.cache_clear()  # the next caller reads the real file again


@pytest.mark.parametrize("flags, said", [({"avx512_bf16"}, ", stdan, bf16 (auto: native bfloat16 on this CPU, AVX512-BF16)"),
                                         ({"avx2"}, ", stdan, fp32 (auto: no native bfloat16 on this CPU)")])
def test_the_summary_says_what_auto_chose_and_why(tmp_path, weights, cpu_with, flags, said):
    cpu_with(flags)
    src = make_video(tmp_path / "in.mkv", n_frames=3, size=(16, 16))
    result = CliRunner().invoke(main, ["upscale", str(src), str(tmp_path / "o.mkv"), "--weights", str(weights),
                                       "--device", "cpu", "--codec", "ffv1", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert said in result.output, result.output


def test_bf16_check_asks_the_chosen_device(two_gpus):
    assert resolve_precision("bf16", CUDA0).matmul_dtype == torch.bfloat16
    with pytest.raises(OptionError, match="cuda:1 does not support bfloat16"):
        resolve_precision("bf16", CUDA1)
    assert CUDA1 in two_gpus


@pytest.mark.parametrize("name, device, message", [
    ("fp16", "cpu", "needs a GPU"), ("tf32", "cpu", "for CUDA GPUs"), ("tf32", "mps", "for CUDA GPUs"),
])
def test_precisions_a_device_cannot_run_are_refused(name, device, message):
    with pytest.raises(OptionError, match=message):
        resolve_precision(name, torch.device(device))


def test_tf32_is_set_for_the_block_and_the_callers_setting_restored():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        with tf32_allowed(resolve_precision("fp32", CUDA0).tf32):
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        with tf32_allowed(resolve_precision("tf32", CUDA0).tf32):
            assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_an_upscaler_allows_tf32_during_its_calls_only(weights, monkeypatch):
    # The process's TF32 flags are the caller's: building and running an fp32 upscaler turns
    # TF32 off for its own calls and leaves the flags as they were, before and after.
    seen = []
    real = stdan_upscaler_module.upscale_window

    def spy(*args, **kwargs):
        seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
        return real(*args, **kwargs)

    monkeypatch.setattr(stdan_upscaler_module, "upscale_window", spy)
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:  # (the flags are properties monkeypatch cannot restore)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        upscaler = build_upscaler("stdan", weights=weights, device="cpu", precision="fp32", threads=1)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        upscaler(torch.rand(1, 2, 3, 16, 24, generator=torch.Generator().manual_seed(0)))
        assert seen == [(False, False)]
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_memory_budget_comes_from_the_device(monkeypatch):
    asked = []
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: asked.append(device) or (10 * GiB, 24 * GiB))
    monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: 16 * GiB)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 6 * GiB)
    assert memory_budget(CUDA1) == int(10 * GiB * device_module.GPU_MEMORY_SHARE) and asked == [CUDA1]
    assert memory_budget(torch.device("mps")) == int(10 * GiB * device_module.GPU_MEMORY_SHARE)
    assert memory_budget(torch.device("cpu")) == CPU_MEMORY_BUDGET
    assert memory_budget(CUDA1, gib=1.5) == int(1.5 * GiB)


def test_tiles_are_sized_by_the_free_gpu_memory(tmp_path, monkeypatch):
    src = make_video(tmp_path / "in.mp4", n_frames=2, size=(96, 64))
    descriptor = build_upscaler("bicubic").descriptor
    free = {"bytes": 64 * GiB}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (free["bytes"], 80 * GiB))
    roomy = plan_upscale(src, tmp_path / "o.mp4", descriptor, UpscaleOptions(), CUDA0)
    free["bytes"] = 96 * 64 * descriptor.bytes_per_pixel // 3  # a third of what the whole frame needs
    tight = plan_upscale(src, tmp_path / "o.mp4", descriptor, UpscaleOptions(), CUDA0)
    assert len(roomy.tiles) == 1 and len(tight.tiles) > 1


class _RunsOutOfMemoryOnLargeTiles:
    """The bicubic upscaler on a device that holds tiles of at most ``max_pixels`` input pixels."""

    def __init__(self, max_pixels: int):
        self.inner = build_upscaler("bicubic")
        self.name, self.precision, self.descriptor = "bicubic", "fp32", self.inner.descriptor
        self.device, self.notices, self.max_pixels = torch.device("cpu"), [], max_pixels
        self.weights_sha256 = None
        self.resets = 0

    def reset(self):
        self.resets += 1

    def __call__(self, frames, skip_outputs=0, cache_key=None, inputs_only=False, frame_indices=None):
        if frames.shape[-1] * frames.shape[-2] > self.max_pixels:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return self.inner(frames, skip_outputs, cache_key, inputs_only)


def test_out_of_memory_halves_the_tiles_and_gives_the_same_frames(tmp_path):
    rng = np.random.default_rng(0)
    src = make_video(tmp_path / "in.mkv", n_frames=5, size=(64, 48), codec="ffv1", pix_fmt="yuv444p",
                     frames=[rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(5)])
    plain = upscale_video(src, tmp_path / "a.mkv", build_upscaler("bicubic"), UpscaleOptions(encoding=LOSSLESS))
    device = _RunsOutOfMemoryOnLargeTiles(max_pixels=32 * 32)
    fallback = upscale_video(src, tmp_path / "b.mkv", device, UpscaleOptions(encoding=LOSSLESS))
    assert plain.tiles == 1 and device.resets >= 1
    assert any("out of memory with 64 px tiles; continued with 32 px tiles" in n for n in fallback.notices), fallback.notices
    np.testing.assert_array_equal(np.stack(read_frames(tmp_path / "a.mkv")[0]), np.stack(read_frames(tmp_path / "b.mkv")[0]))


def test_out_of_memory_at_the_smallest_tile_is_one_line(tmp_path, monkeypatch):
    src = make_video(tmp_path / "in.mp4", n_frames=3, size=(64, 48))
    monkeypatch.setattr(upscaler_registry, "build_upscaler", lambda *a, **k: _RunsOutOfMemoryOnLargeTiles(max_pixels=10))
    result = CliRunner().invoke(main, ["upscale", str(src), str(tmp_path / "o.mp4"), "--model", "bicubic"])
    assert result.exit_code == 1 and result.output.strip() == f"error: {OUT_OF_MEMORY}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_the_cpu_allocator_failing_counts_as_out_of_memory():
    with pytest.raises(RuntimeError) as caught:
        torch.empty(2**52, dtype=torch.uint8)  # 4 PiB
    assert is_out_of_memory(caught.value)
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_a_window_that_is_not_finite_in_low_precision_is_redone_in_fp32(tmp_path):
    from stdan_cli.model import STDAN, STDANConfig

    torch.manual_seed(0)
    path = tmp_path / "small.pth"
    torch.save(STDAN(STDANConfig.small()).state_dict(), path)
    fp32 = build_upscaler("stdan", weights=path, device="cpu", precision="fp32")
    overflowing = copy.deepcopy(fp32.model)
    with torch.no_grad():
        overflowing.conv_last.weight.fill_(float("inf"))  # what fp16 overflow looks like downstream
    guarded = StdanUpscaler(overflowing, fp32.descriptor, fp32.device, "fp16", fallback=fp32.model)
    x = torch.rand(1, 4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    out = guarded(x)
    assert torch.isfinite(out).all() and torch.equal(out, fp32(x))
    assert guarded.notices == ["1 window(s) redone in fp32: their fp16 output was not finite"]
    assert fp32.notices == [] and fp32.fallback is None  # fp32 itself needs no guard


@pytest.mark.slow
def test_batched_tiles_equal_tile_by_tile(tmp_path):
    from stdan_cli.model import STDAN, STDANConfig
    from stdan_cli.pipeline.tiles import plan_tiles, tile_batches, upscale_tiles

    torch.manual_seed(0)
    path = tmp_path / "small.pth"
    torch.save(STDAN(STDANConfig.small()).state_dict(), path)
    x = torch.rand(1, 4, 3, 40, 48, generator=torch.Generator().manual_seed(2))
    tiles = plan_tiles(40, 48, 16, 8, 8)
    groups = tile_batches(tiles, 4)
    assert any(len(g) > 1 for g in groups) and sorted(k for g in groups for k in g) == list(range(len(tiles)))
    one = build_upscaler("stdan", weights=path, device="cpu", precision="fp32")
    many = build_upscaler("stdan", weights=path, device="cpu", precision="fp32")
    for skip in (0, 1):  # the second window reuses each group's cached features
        a = upscale_tiles(one, x, tiles, skip, batch=1)
        b = upscale_tiles(many, x, tiles, skip, batch=4)
        assert (a - b).abs().max() <= 1e-5


def test_tile_batch_fills_a_gpu_and_stays_one_on_the_cpu():
    from stdan_cli.pipeline.tiles import auto_tile_batch, plan_tiles

    tiles = plan_tiles(64, 64, 16, 8, 8)
    assert auto_tile_batch(tiles, 1000, 10 * GiB, torch.device("cpu")) == 1
    assert auto_tile_batch(tiles, 1000, 10 * GiB, CUDA0) == len(tiles)
    largest = max((t.y1 - t.y0) * (t.x1 - t.x0) for t in tiles)
    assert auto_tile_batch(tiles, 1000, 3 * largest * 1000, CUDA0) == 3


def test_frames_go_back_as_codes_made_like_the_encoder_made_them():
    from stdan_cli.upscalers.transfer import quantize, to_host

    x = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(3)) * 1.2 - 0.1  # unclamped
    for bits, dtype, scale in ((8, torch.uint8, 255.0), (10, torch.uint16, 65535.0)):
        codes = to_host(quantize(x, bits))
        assert codes.dtype == dtype
        reference = np.round(np.clip(x.numpy(), 0, 1) * scale).astype(np.uint16 if bits > 8 else np.uint8)
        np.testing.assert_array_equal(codes.numpy(), reference)


def test_the_pipeline_names_frames_so_a_shared_frame_is_encoded_once(tmp_path):
    """Seven identical frames: matched by content, the second window would reuse all four
    cached frames; named by their indices, exactly the shared frame 3 is reused."""
    from stdan_cli.model import STDAN, STDANConfig

    torch.manual_seed(0)
    path = tmp_path / "small.pth"
    torch.save(STDAN(STDANConfig.small()).state_dict(), path)
    upscaler = build_upscaler("stdan", weights=path, device="cpu", precision="fp32")
    src = make_video(tmp_path / "in.mkv", n_frames=7, size=(16, 16), codec="ffv1", pix_fmt="yuv444p",
                     frames=[np.full((16, 16, 3), 100, np.uint8)] * 7)
    upscale_video(src, tmp_path / "out.mkv", upscaler, UpscaleOptions(encoding=LOSSLESS))
    assert [cache.encoded for cache in upscaler.caches.values()] == [7]


def test_slice_sizes_follow_the_device_and_its_free_memory(tmp_path, monkeypatch):
    from stdan_cli.model.slicing import CPU_SLICES
    from stdan_cli.upscalers.device import slice_policy

    assert slice_policy(torch.device("cpu"), 64 * GiB) == CPU_SLICES
    roomy = slice_policy(CUDA0, 16 * GiB)
    assert roomy.swin_logit_bytes is None and roomy.stdfa_bytes == roomy.deform_column_bytes == 2 * GiB
    assert slice_policy(CUDA0, 0).stdfa_bytes == CPU_SLICES.stdfa_bytes  # never below the CPU's steps
    from stdan_cli.model import STDAN, STDANConfig

    path = tmp_path / "small.pth"
    torch.save(STDAN(STDANConfig.small()).state_dict(), path)
    seen = []
    monkeypatch.setattr(stdan_upscaler_module, "slice_policy", lambda device, budget: seen.append(device) or roomy)
    stdan = build_upscaler("stdan", weights=path, device="cpu", precision="fp32")
    assert stdan.model.slice_policy == roomy and seen == [torch.device("cpu")]  # the model takes the device's policy


def test_threads_apply_to_the_upscalers_calls_only_and_are_restored(monkeypatch):
    from stdan_cli.upscalers import intra_op_threads
    from stdan_cli.upscalers.bicubic import BicubicUpscaler

    before = torch.get_num_threads()
    wanted = 1 if before > 1 else 2
    upscaler = build_upscaler("bicubic", threads=wanted)
    assert torch.get_num_threads() == before  # building it changes nothing
    seen = []
    original = BicubicUpscaler._upscale
    monkeypatch.setattr(BicubicUpscaler, "_upscale", lambda self, *a: seen.append(torch.get_num_threads()) or original(self, *a))
    upscaler(torch.rand(1, 2, 3, 4, 4))
    assert seen == [wanted] and torch.get_num_threads() == before
    with pytest.raises(RuntimeError), intra_op_threads(wanted):
        raise RuntimeError("a failing block restores the count too")
    assert torch.get_num_threads() == before
