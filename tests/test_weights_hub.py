"""Hugging Face Hub source, through ``huggingface_hub.hf_hub_download``.

The 127.0.0.1 server mimics the two Hub requests ``hf_hub_download`` makes (HEAD then GET on
``/{repo}/resolve/{revision}/{file}``, with X-Repo-Commit and ETag). The HF cache is a temporary
directory. Offline mode (HF_HUB_OFFLINE) is then exercised with that pre-populated cache and the
server stopped: a cached file works, a missing one fails fast.
"""

from __future__ import annotations

import pytest
from weights_server import small_checkpoint_bytes

from stdan_cli.errors import StdanError
from stdan_cli.weights import download_weights

FAST = dict(quiet=True, retry_wait=0)


@pytest.fixture
def hub_online(monkeypatch):
    """huggingface_hub read HF_HUB_OFFLINE=1 (conftest) at import; let it talk to 127.0.0.1 here."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)


def test_hub_download_through_hf_hub_download(weights_env, http_server, hub_online, tmp_path):
    data = small_checkpoint_bytes()
    http_server.add("/hub/someone/stdan-tiny/tiny.pth", data)
    result = download_weights(repo_id="someone/stdan-tiny", hf_endpoint=http_server.url,
                              hf_cache_dir=tmp_path / "hf", **FAST)
    assert result.source == "hf://someone/stdan-tiny/tiny.pth"
    assert (weights_env / "tiny.pth").read_bytes() == data
    methods = [(m, p.split("?")[0]) for m, p, _ in http_server.requests]
    assert ("GET", "/someone/stdan-tiny/resolve/main/tiny.pth") in methods
    assert list((tmp_path / "hf").glob("models--someone--stdan-tiny/snapshots/*/tiny.pth"))


def test_hub_registry_entry_and_revision(weights_env, http_server, hub_online, tmp_path, monkeypatch):
    """A registry entry naming a Hub repo is tried first; --filename/--revision reach the URL."""
    from weights_server import write_registry

    data = small_checkpoint_bytes()
    http_server.add("/hub/org/repo/sub/w.pth", data)
    registry = write_registry(tmp_path / "r.json", hf_repo_id="org/repo", hf_filename="sub/w.pth", hf_revision="v1")
    monkeypatch.setenv("STDAN_REGISTRY", str(registry))
    download_weights(hf_endpoint=http_server.url, hf_cache_dir=tmp_path / "hf", **FAST)
    assert (weights_env / "tiny.pth").read_bytes() == data
    assert any(p.startswith("/org/repo/resolve/v1/sub/w.pth") for _, p, _ in http_server.requests)
    assert not any(p.startswith(("/uc", "/download")) for _, p, _ in http_server.requests)  # Drive not needed


def test_hub_missing_file_is_one_line(weights_env, http_server, hub_online, tmp_path):
    with pytest.raises(StdanError) as info:
        download_weights(repo_id="someone/none", hf_endpoint=http_server.url, hf_cache_dir=tmp_path / "hf", **FAST)
    assert "hf://someone/none/tiny.pth" in str(info.value) and "\n" not in str(info.value)
    assert not (weights_env / "tiny.pth").exists()


def test_hub_offline_uses_the_hf_cache(weights_env, http_server, hub_online, tmp_path, monkeypatch):
    from huggingface_hub import constants

    data = small_checkpoint_bytes()
    http_server.add("/hub/someone/stdan-tiny/tiny.pth", data)
    hf_cache = tmp_path / "hf"
    download_weights(repo_id="someone/stdan-tiny", hf_endpoint=http_server.url, hf_cache_dir=hf_cache, **FAST)
    (weights_env / "tiny.pth").unlink()  # only the HF cache has it now
    count = len(http_server.requests)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    download_weights(repo_id="someone/stdan-tiny", hf_endpoint=http_server.url, hf_cache_dir=hf_cache, **FAST)
    assert (weights_env / "tiny.pth").read_bytes() == data
    assert len(http_server.requests) == count  # no request while offline
    with pytest.raises(StdanError, match="not in the Hugging Face cache.*HF_HUB_OFFLINE"):
        download_weights(repo_id="someone/other", hf_endpoint=http_server.url, hf_cache_dir=hf_cache, force=True, **FAST)
    assert len(http_server.requests) == count
