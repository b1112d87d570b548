"""Checkpoint reading, recognition and refusal, on the small configuration (fast)."""

from __future__ import annotations

import pickle

import pytest
import torch

from stdan_cli.errors import CheckpointError
from stdan_cli.model import (
    STDAN,
    LoadedModel,
    STDANConfig,
    describe_checkpoint,
    infer_config,
    load_model,
    looks_like_html,
    read_state_dict,
)


@pytest.fixture(scope="module")
def small_sd():
    torch.manual_seed(0)
    return STDAN(STDANConfig.small()).state_dict()


@pytest.fixture(scope="module")
def frames():
    return torch.rand(1, 4, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def _run(loaded, frames):
    with torch.inference_mode():
        return loaded.model(frames)


def test_config_is_read_from_shapes(small_sd):
    assert infer_config(small_sd) == STDANConfig.small()
    with torch.device("meta"):
        official = STDAN().state_dict()
    assert infer_config(official) == STDANConfig()


def test_descriptor(small_sd):
    d = describe_checkpoint(small_sd)
    assert (d.architecture, d.config, d.scale, d.size_multiple) == ("STDAN", STDANConfig.small(), 4, 8)
    assert d.num_params == sum(p.numel() for p in STDAN(STDANConfig.small()).parameters())


def test_load_model_returns_the_model_beside_its_descriptor(small_sd):
    loaded = load_model(small_sd)
    assert isinstance(loaded, LoadedModel) and isinstance(loaded.model, STDAN)
    assert not loaded.model.training
    assert loaded.descriptor == describe_checkpoint(small_sd)
    assert not hasattr(loaded.model, "descriptor")  # nothing bolted onto the module


def test_load_variants_give_the_same_model(small_sd, frames, tmp_path):
    ref = _run(load_model(small_sd), frames)
    path = tmp_path / "plain.pth"
    torch.save(small_sd, path)
    assert torch.equal(_run(load_model(path), frames), ref)
    assert torch.equal(_run(load_model(str(path)), frames), ref)
    for wrapped in ({"params": small_sd}, {"state_dict": small_sd}, {f"module.{k}": v for k, v in small_sd.items()}):
        torch.save(wrapped, path)
        assert torch.equal(_run(load_model(path), frames), ref)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_copies_are_upcast(small_sd, frames, dtype, tmp_path):
    half = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in small_sd.items()}
    path = tmp_path / "half.pth"
    torch.save(half, path)
    loaded = load_model(path)
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    upcast = {k: (v.float() if v.is_floating_point() else v) for k, v in half.items()}
    assert torch.equal(_run(loaded, frames), _run(load_model(upcast), frames))


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickle_that_runs_code_is_refused(small_sd, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": small_sd, "payload": _RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match="could run code"):
        load_model(path)
    assert not marker.exists()


def test_not_a_checkpoint(tmp_path):
    html = tmp_path / "page.pth"
    html.write_text("<!DOCTYPE html><html><body>Google Drive - quota exceeded</body></html>")
    with pytest.raises(CheckpointError, match="HTML page"):
        read_state_dict(html)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_state_dict(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CheckpointError):
        read_state_dict(junk)


def test_html_detection_has_one_definition_shared_with_weights_verification(tmp_path):
    from stdan_cli.weights import verify

    assert looks_like_html(b"  \n<!DOCTYPE html><html>") and looks_like_html(b"\x00" * 10 + b"<body>")
    assert not looks_like_html(b"PK\x03\x04 a zip") and not looks_like_html(b"")
    page = tmp_path / "page.pth"
    page.write_bytes(b"\n<head><title>quota</title></head>")  # no <html> tag: still a page
    with pytest.raises(CheckpointError, match="HTML page"):
        read_state_dict(page)
    with pytest.raises(CheckpointError, match="HTML web page"):
        verify.verify_checkpoint(page)


def test_truncated_file(small_sd, tmp_path):
    path = tmp_path / "full.pth"
    torch.save(small_sd, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model(path)


def test_mismatches_are_named(small_sd):
    sd = dict(small_sd)
    del sd["fusion_f_b.bias"]
    sd["extra.weight"] = torch.zeros(1)
    sd["conv_last.weight"] = torch.zeros(3, 16, 5, 5)
    with pytest.raises(CheckpointError) as err:
        load_model(sd)
    msg = str(err.value)
    assert "missing 1 keys (fusion_f_b.bias)" in msg
    assert "unexpected 1 keys (extra.weight)" in msg
    assert "conv_last.weight (3, 16, 5, 5) != (3, 16, 3, 3)" in msg
    with pytest.raises(CheckpointError, match="not an STDAN checkpoint"):
        load_model({"weight": torch.zeros(3)})


def test_non_finite_values_are_refused(small_sd):
    sd = dict(small_sd)
    sd["conv_last.bias"] = torch.tensor([0.0, float("nan"), 0.0])
    with pytest.raises(CheckpointError, match="non-finite"):
        load_model(sd)
