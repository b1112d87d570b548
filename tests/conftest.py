"""Shared test fixtures. Tests never reach the network: downloads go to a server on 127.0.0.1.

Tests marked ``slow`` (Ray clusters, child processes, the full network) are left out by
``python -m pytest -m "not slow"``; CI runs everything (.ci/run)."""

from __future__ import annotations

import os
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from random_state import restored_random_state
from weights_server import Server, _handler, write_registry

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DIR = REPO.parent / "shared" / "reference"


# Fixtures that make every test using them slow, and why (seconds on the project's 2-core machine).
SLOW_FIXTURES = {
    "ray_session": "a Ray cluster: its start-up alone takes about 15 s",
    "ort_engine": "the small network exported to ONNX once per module: about 18 s",
}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES.keys() & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


# Tests and module fixtures seed the global generators freely; each module and each test gets
# them back as they were, so none changes the random state of the tests after it.
@pytest.fixture(autouse=True, scope="module")
def own_random_state_per_module():
    with restored_random_state():
        yield


@pytest.fixture(autouse=True)
def own_random_state():
    with restored_random_state():
        yield


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/reference (official parity fixtures); skips visibly when absent, and fails
    under CI (CI=true), where a missing folder must not pass as skipped parity tests."""
    if not REFERENCE_DIR.is_dir():
        message = f"parity fixtures not found at {REFERENCE_DIR} (the ../shared/reference folder is absent)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true needs them")
        pytest.skip(message)
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def weights(tmp_path_factory) -> Path:
    """A checkpoint of the small configuration (STDANConfig.small()) with seeded random weights."""
    from stdan_cli.model import STDAN, STDANConfig

    path = tmp_path_factory.mktemp("weights") / "small.pth"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch.save(STDAN(STDANConfig.small()).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def small(weights):
    """The small checkpoint as an upscaler on the CPU, one thread during its calls (restored after),
    in float32 on every CPU (``--precision auto`` is bf16 on CPUs with native bfloat16): the tests
    that use it compare frames exactly."""
    from stdan_cli.upscalers import build_upscaler

    return build_upscaler("stdan", weights=weights, device="cpu", precision="fp32", threads=1)


@pytest.fixture(scope="module")
def bicubic():
    """The bicubic upscaler (no weights): where the pipeline, not the network, is under test."""
    from stdan_cli.upscalers import build_upscaler

    return build_upscaler("bicubic")


@pytest.fixture
def http_server():
    """A fresh 127.0.0.1 server per test; add routes with ``server.add(path, body, ...)``."""
    state = Server(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def weights_env(tmp_path, monkeypatch, http_server):
    """STDAN_HOME, STDAN_REGISTRY (a 'tiny' default entry) and Google Drive all pointed at the test."""
    home = tmp_path / "home"
    monkeypatch.setenv("STDAN_HOME", str(home))
    monkeypatch.setenv("STDAN_REGISTRY", str(write_registry(tmp_path / "registry.json")))
    monkeypatch.setenv("STDAN_GDRIVE_URL", http_server.url + "/uc")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # the downloader reads it at call time; only 127.0.0.1 is served
    return home / "weights"


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray cluster for every Ray test (starting one costs about 15 s). Its workers
    inherit this process's environment, PYTHONPATH included, so they import this stdan_cli."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
