"""resolve_weights (what upscale/eval call), the cache location, the registry, and packaging."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from weights_server import small_checkpoint_bytes, write_registry

from stdan_cli.errors import CheckpointError, WeightsNotFound
from stdan_cli.weights import (
    default_weights_name,
    download_weights,
    get_entry,
    list_entries,
    resolve_weights,
    verify_checkpoint,
)
from stdan_cli.weights.store import user_cache_dir, weights_dir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_network(monkeypatch):
    """resolve_weights must not open any connection."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("resolve_weights touched the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STDAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STDAN_REGISTRY", str(write_registry(tmp_path / "registry.json")))
    return tmp_path / "home" / "weights"


def test_missing_default_names_both_remedies(cache, no_network):
    with pytest.raises(WeightsNotFound) as info:
        resolve_weights(None)
    message = str(info.value)
    assert f"looked for 'tiny' in {cache}" in message
    assert "`stdan download-weights`" in message and "--weights PATH" in message and "\n" not in message


def test_missing_named_entry_names_the_command_with_the_name(cache, no_network):
    with pytest.raises(WeightsNotFound, match=r"run `stdan download-weights official` or pass --weights PATH"):
        resolve_weights("official")


def test_default_and_name_find_the_cached_file(cache, tmp_path, no_network):
    source = tmp_path / "hand.pth"
    source.write_bytes(small_checkpoint_bytes())
    download_weights(from_file=source, quiet=True)
    assert resolve_weights(None) == cache / "tiny.pth"
    assert resolve_weights("tiny") == cache / "tiny.pth"


def test_paths(cache, tmp_path, no_network):
    existing = tmp_path / "mine.pth"
    existing.write_bytes(b"anything: the loader verifies it")
    assert resolve_weights(str(existing)) == existing
    assert resolve_weights(existing) == existing
    with pytest.raises(WeightsNotFound, match="absent.pth does not exist"):
        resolve_weights(str(tmp_path / "absent.pth"))
    with pytest.raises(WeightsNotFound, match="absent.pth does not exist"):
        resolve_weights(tmp_path / "absent.pth")
    with pytest.raises(WeightsNotFound, match="unknown weights 'nosuch'"):
        resolve_weights("nosuch")
    with pytest.raises(WeightsNotFound, match="is a directory"):
        resolve_weights(str(tmp_path))


def test_offline_present_works_missing_fails(cache, tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFound, match="stdan download-weights"):
        resolve_weights(None)
    source = tmp_path / "hand.pth"
    source.write_bytes(small_checkpoint_bytes())
    download_weights(from_file=source, quiet=True)  # --from-file works offline
    assert resolve_weights(None).is_file()


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.delenv("STDAN_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert weights_dir() == tmp_path / "xdg" / "stdan" / "weights"
    assert weights_dir() == user_cache_dir() / "weights"
    monkeypatch.setenv("STDAN_HOME", str(tmp_path / "h"))
    assert weights_dir() == tmp_path / "h" / "weights"
    assert weights_dir(tmp_path / "d") == tmp_path / "d"


def test_official_registry_entry(monkeypatch):
    monkeypatch.delenv("STDAN_REGISTRY", raising=False)
    from stdan_cli.model import STDANConfig

    assert default_weights_name() == "stdan-vimeo"
    entry = get_entry()
    assert entry.filename == "STDAN_20220306.pth"
    assert entry.google_drive_id == "1aIbbQYTL2H4F_Uxt2YDY8lxFhfwRPHG4"
    assert entry.num_params == 8_292_843 and entry.scale == 4 and entry.time_scale == 2
    assert entry.architecture == "STDAN" and entry.architecture_config() == STDANConfig()
    assert entry.paper and "littlewhitesea/STDAN" in entry.licence and entry.homepage
    assert [e.name for e in list_entries()][0] == "stdan-vimeo"


def test_official_shaped_fixture_is_not_taken_for_the_official_entry(reference_dir, monkeypatch):
    """The float16 official-shaped random state_dict has the official architecture (8,292,843
    parameters) but not the official file's size and dtype: refused as stdan-vimeo, naming both."""
    monkeypatch.delenv("STDAN_REGISTRY", raising=False)
    with pytest.raises(CheckpointError, match=r"not 'stdan-vimeo': 21\.6 MB \(expected about 41\.4 MB\); float16"):
        verify_checkpoint(reference_dir / "parity_weights_fp16.pt", get_entry("stdan-vimeo"))
