"""Window attention at any size, padding/cropping, and the output layout."""

from __future__ import annotations

import pytest
import torch

from stdan_cli.model import STDAN, STDANConfig, pad_to_multiple, upscale_window
from stdan_cli.model.slicing import SlicePolicy
from stdan_cli.model.swin import (
    relative_position_index,
    shift_window_mask,
    window_partition,
    window_reverse,
)


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return STDAN(STDANConfig.small()).eval()


def test_relative_position_index_formula():
    idx = relative_position_index(8)
    for a in (0, 9, 63):
        for b in (0, 17, 63):
            (ya, xa), (yb, xb) = divmod(a, 8), divmod(b, 8)
            assert idx[a, b] == (ya - yb + 7) * 15 + (xa - xb + 7)


def test_window_partition_round_trip():
    x = torch.rand(2, 16, 24, 5)
    w = window_partition(x, 8)
    assert w.shape == (2 * 2 * 3, 64, 5)
    assert torch.equal(w[1, 0], x[0, 0, 8])  # second window of the first row starts at column 8
    assert torch.equal(window_reverse(w, 8, 16, 24), x)


def test_shift_mask_regions():
    mask = shift_window_mask(16, 24, 8, 4)
    assert mask.shape == (6, 64, 64)
    assert mask[0].abs().max() == 0  # top-left window lies in one region
    last = mask[-1]  # bottom-right window straddles 4 regions of 16 tokens each
    assert (last == 0).sum() == 4 * 16 * 16 and set(last.unique().tolist()) == {-100.0, 0.0}


@pytest.mark.parametrize("hw", [(8, 8), (16, 40), (24, 16)])
def test_any_multiple_of_8_runs_and_ignores_the_stored_32x32_masks(small, hw):
    x = torch.rand(1, 4, 3, *hw, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = small(x)
        assert ref.shape == (1, 7, 3, 4 * hw[0], 4 * hw[1])
        saved = {n: b.clone() for n, b in small.named_buffers() if n.endswith("attn_mask")}
        for n in saved:
            small.get_buffer(n).fill_(123.0)
        try:
            assert torch.equal(small(x), ref)
        finally:
            for n, b in saved.items():
                small.get_buffer(n).copy_(b)


def test_sizes_that_are_not_multiples_of_8_are_rejected_by_the_bare_model(small):
    with pytest.raises(ValueError, match="multiples of 8"):
        small(torch.rand(1, 4, 3, 12, 16))


def test_upscale_window_pads_bottom_right_with_zeros_and_crops(small):
    x = torch.rand(1, 3, 3, 5, 11, generator=torch.Generator().manual_seed(2))
    padded = pad_to_multiple(x, 8)
    assert padded.shape[-2:] == (8, 16)
    assert torch.equal(padded[..., :5, :11], x) and padded[..., 5:, :].abs().max() == 0
    out = upscale_window(small, x)
    assert out.shape == (1, 5, 3, 20, 44)
    with torch.inference_mode():
        assert torch.equal(out, small(padded)[..., :20, :44])


def test_frame_count_and_batch_independence(small):
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(1, 2, 3, 8, 8, generator=g), torch.rand(1, 2, 3, 8, 8, generator=g)
    both = upscale_window(small, torch.cat([a, b]))
    assert both.shape == (2, 3, 3, 32, 32)  # N=2 -> 3 outputs
    torch.testing.assert_close(both[1:], upscale_window(small, b), atol=1e-5, rtol=1e-5)


def test_overlapping_windows_reuse_shared_frames_and_skip_known_outputs(small):
    video = torch.rand(1, 7, 3, 8, 16, generator=torch.Generator().manual_seed(4))
    first, second = video[:, 0:4], video[:, 3:7]  # the official stride 3: frame 3 is shared
    ref_first, ref_second = upscale_window(small, first), upscale_window(small, second)

    from stdan_cli.model import FeatureCache

    cache = FeatureCache()
    out_first = upscale_window(small, first, cache=cache)
    out_second = upscale_window(small, second, skip_outputs=1, cache=cache)
    assert cache.encoded == 7  # frame 3 was encoded once
    torch.testing.assert_close(out_first, ref_first, atol=1e-6, rtol=1e-6)
    assert out_second.shape[1] == 6
    torch.testing.assert_close(out_second, ref_second[:, 1:], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("skip", [0, 1, 2])
def test_inputs_only_decodes_only_the_input_times(small, skip):
    """inputs_only returns exactly the even outputs of the full window, and the decoder
    (feature_recon) runs on those frames only."""
    from stdan_cli.model import output_positions

    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 4, 3, 16, 24, generator=g)
    seen = []
    hook = small.feature_recon.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    try:
        full = upscale_window(small, x, skip_outputs=skip)
        only = upscale_window(small, x, skip_outputs=skip, inputs_only=True)
    finally:
        hook.remove()
    keep = output_positions(4, skip, inputs_only=True)
    assert keep == [p for p in range(skip, 7) if p % 2 == 0]
    assert only.shape[1] == len(keep) and seen == [7 - skip, len(keep)]
    torch.testing.assert_close(only, full[:, [p - skip for p in keep]], rtol=0, atol=1e-6)


@pytest.mark.parametrize("keys_per_call", [1, 4])
def test_stdfa_gives_the_same_result_whatever_its_key_slicing(small, monkeypatch, keys_per_call):
    """STDFA takes the T-1 key frames of each query in slices bounded by ``stdfa_bytes``
    (one at a time for large frames); the slices, including an uneven last one, must
    assemble into the same result as all keys at once."""
    b, t, h, w = 1, 7, 16, 24
    feats = torch.rand(b, t, small.config.nf, h, w, generator=torch.Generator().manual_seed(5))
    stdfa = small.stdfa
    with torch.inference_mode():
        whole = stdfa(feats)
        per_pair = b * small.config.embed_dim * 9 * h * w * 4  # bytes of one key frame's candidates
        monkeypatch.setattr(stdfa, "slices", SlicePolicy(stdfa_bytes=keys_per_call * per_pair))
        sliced = stdfa(feats)
    torch.testing.assert_close(sliced, whole, rtol=0, atol=1e-6)


def test_feature_cache_matches_frames_by_index_when_the_caller_gives_them(small):
    from stdan_cli.model import FeatureCache

    video = torch.rand(1, 7, 3, 8, 16, generator=torch.Generator().manual_seed(6))
    cache = FeatureCache()
    out_first = upscale_window(small, video[:, 0:4], cache=cache, frame_indices=[0, 1, 2, 3])
    out_second = upscale_window(small, video[:, 3:7], skip_outputs=1, cache=cache, frame_indices=[3, 4, 5, 6])
    assert cache.encoded == 7  # frame 3 encoded once
    torch.testing.assert_close(out_first, upscale_window(small, video[:, 0:4]), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(out_second, upscale_window(small, video[:, 3:7])[:, 1:], atol=1e-6, rtol=1e-6)

    # A still scene: equal content, different frames. Indices decide; content only without them.
    still = video[:, :1].expand(1, 4, 3, 8, 16)
    by_index, by_content = FeatureCache(), FeatureCache()
    for indices in ([0, 1, 2, 3], [3, 4, 5, 6]):
        upscale_window(small, still, cache=by_index, frame_indices=indices)
        upscale_window(small, still, cache=by_content)
    assert by_index.encoded == 7 and by_content.encoded == 4

    # An index the cache knows, from another video: not reused.
    other = torch.rand(1, 4, 3, 8, 16, generator=torch.Generator().manual_seed(7))
    before = by_index.encoded
    out_other = upscale_window(small, other, cache=by_index, frame_indices=[3, 4, 5, 6])
    assert by_index.encoded == before + 4
    torch.testing.assert_close(out_other, upscale_window(small, other), atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="3 frame indices"):
        upscale_window(small, still, cache=by_index, frame_indices=[0, 1, 2])


def test_pointwise_conv_equals_conv2d():
    from stdan_cli.model.pcd import PointwiseConv

    torch.manual_seed(0)
    conv = PointwiseConv(32, 16)
    x = torch.rand(2, 32, 24, 40)
    assert isinstance(conv, torch.nn.Conv2d) and conv.kernel_size == (1, 1)
    assert torch.allclose(conv(x), torch.nn.functional.conv2d(x, conv.weight, conv.bias), atol=1e-5)


def test_one_and_two_threads_give_the_same_output(small):
    """A Ray worker of one thread and a process of two make the same frames: PyTorch would run a
    plain 1x1 Conv2d natively on one thread and with oneDNN on two (different rounding);
    at 32x32 its input is large enough for oneDNN."""
    from stdan_cli.upscalers import intra_op_threads

    x = torch.rand(1, 2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    outputs = []
    for threads in (1, 2):
        with intra_op_threads(threads), torch.inference_mode():
            outputs.append(small(x))
    assert torch.equal(outputs[0], outputs[1])
