"""Downloading: Google Drive confirmation, plain URLs, resume, and rejection of bad files.

Every case runs against the 127.0.0.1 server of weights_server; the final file must exist
only when it was verified, and a rejected download leaves neither it nor a ``.part`` behind.
"""

from __future__ import annotations

import pytest
from weights_server import (
    HTML_PAGE,
    QUOTA_PAGE,
    code_pickle_bytes,
    nan_bytes,
    sha256,
    small_checkpoint_bytes,
    wrong_shape_bytes,
)

from stdan_cli.errors import StdanError, WeightsNotFound
from stdan_cli.weights import download_weights
from stdan_cli.weights.store import read_sidecar

FAST = dict(quiet=True, retry_wait=0)


def assert_installed(cache, data: bytes):
    target = cache / "tiny.pth"
    assert target.read_bytes() == data
    assert read_sidecar(target) == sha256(data)
    assert not (cache / "tiny.pth.part").exists()


def assert_nothing_installed(cache):
    assert not (cache / "tiny.pth").exists()
    assert not (cache / "tiny.pth.part").exists()


def test_google_drive_confirmation_flow(weights_env, http_server):
    """/uc answers with the virus-scan form; its action URL with the hidden fields yields the file."""
    data = small_checkpoint_bytes()
    http_server.add("/drive-file", data)
    result = download_weights(**FAST)
    assert not result.already_present and result.path == weights_env / "tiny.pth"
    assert_installed(weights_env, data)
    paths = [p.split("?")[0] for _, p, _ in http_server.requests]
    assert paths == ["/uc", "/download"]
    assert "confirm=t" in http_server.requests[1][1] and "uuid=1234-abcd" in http_server.requests[1][1]


def test_rerun_is_a_no_op(weights_env, http_server):
    data = small_checkpoint_bytes()
    http_server.add("/drive-file", data)
    download_weights(**FAST)
    count = len(http_server.requests)
    again = download_weights(**FAST)
    assert again.already_present and len(http_server.requests) == count
    forced = download_weights(force=True, **FAST)  # --force fetches again
    assert not forced.already_present and len(http_server.requests) > count


def test_corrupted_cached_file_is_downloaded_again(weights_env, http_server):
    """A cached file whose sha256 no longer matches its sidecar is not 'present'."""
    data = small_checkpoint_bytes()
    http_server.add("/drive-file", data)
    download_weights(**FAST)
    (weights_env / "tiny.pth").write_bytes(data[:1000])
    result = download_weights(**FAST)
    assert not result.already_present
    assert_installed(weights_env, data)


def test_drive_quota_page_is_rejected(weights_env, http_server, monkeypatch):
    http_server.add("/quota", QUOTA_PAGE, content_type="text/html; charset=utf-8", status=403)
    monkeypatch.setenv("STDAN_GDRIVE_URL", http_server.url + "/quota")
    with pytest.raises(StdanError) as info:
        download_weights(**FAST)
    message = str(info.value)
    assert "web page instead of the file" in message and "Quota exceeded" in message
    assert "--from-file" in message and "\n" not in message
    assert_nothing_installed(weights_env)


def test_url_download(weights_env, http_server):
    data = small_checkpoint_bytes()
    url = http_server.add("/tiny.pth", data)
    result = download_weights(url=url, **FAST)
    assert result.source == url
    assert_installed(weights_env, data)


def test_html_page_instead_of_file(weights_env, http_server):
    url = http_server.add("/login", HTML_PAGE, content_type="text/html")
    with pytest.raises(StdanError, match="HTML web page.*Sign in - Google Accounts"):
        download_weights(url=url, **FAST)
    assert_nothing_installed(weights_env)


def test_html_page_with_a_binary_content_type(weights_env, http_server):
    """A page served as application/octet-stream is caught by verification, not by the header."""
    url = http_server.add("/page.pth", HTML_PAGE)
    with pytest.raises(StdanError, match="is an HTML web page"):
        download_weights(url=url, **FAST)
    assert_nothing_installed(weights_env)


def test_dropped_connection_resumes_within_one_run(weights_env, http_server):
    data = small_checkpoint_bytes()
    url = http_server.add("/tiny.pth", data, drop_first=1)
    download_weights(url=url, **FAST)
    assert http_server.range_requests("/tiny.pth") == [f"bytes={len(data) // 2}-"]
    assert_installed(weights_env, data)


def test_dropped_connection_resumes_on_the_next_run(weights_env, http_server):
    data = small_checkpoint_bytes()
    url = http_server.add("/tiny.pth", data, drop_first=2)
    with pytest.raises(StdanError, match="interrupted.*run the same command again to resume"):
        download_weights(url=url, attempts=2, **FAST)
    part = weights_env / "tiny.pth.part"
    assert part.is_file() and 0 < part.stat().st_size < len(data)
    assert not (weights_env / "tiny.pth").exists()
    download_weights(url=url, **FAST)
    half = len(data) // 2
    assert http_server.range_requests("/tiny.pth") == [f"bytes={half}-", f"bytes={half + (len(data) - half) // 2}-"]
    assert_installed(weights_env, data)


def test_server_ignoring_range_restarts_cleanly(weights_env, http_server):
    data = small_checkpoint_bytes()
    url = http_server.add("/tiny.pth", data, ranges=False)
    weights_env.mkdir(parents=True)
    (weights_env / "tiny.pth.part").write_bytes(b"stale bytes from an earlier, different download")
    download_weights(url=url, **FAST)
    assert http_server.range_requests("/tiny.pth")  # it asked to resume, got 200, started over
    assert_installed(weights_env, data)


def test_drive_download_resumes(weights_env, http_server):
    """Resume works through the Drive confirmation flow too."""
    data = small_checkpoint_bytes()
    http_server.add("/drive-file", data, drop_first=1)
    download_weights(**FAST)
    assert http_server.range_requests("/download") == [f"bytes={len(data) // 2}-"]
    assert http_server.range_requests("/uc") == []  # the page request never asks for a range
    assert_installed(weights_env, data)


def test_truncated_file_is_rejected(weights_env, http_server):
    """A server that sends half a checkpoint as if it were all of it."""
    data = small_checkpoint_bytes()
    url = http_server.add("/half.pth", data[: len(data) // 2])
    with pytest.raises(StdanError, match="truncated or corrupt"):
        download_weights(url=url, **FAST)
    assert_nothing_installed(weights_env)


def test_wrong_shape_is_rejected(weights_env, http_server):
    url = http_server.add("/wrong.pth", wrong_shape_bytes())
    with pytest.raises(StdanError, match=r"mis-shaped 1 \(conv_last.weight"):
        download_weights(url=url, **FAST)
    assert_nothing_installed(weights_env)


def test_non_finite_values_are_rejected(weights_env, http_server):
    url = http_server.add("/nan.pth", nan_bytes())
    with pytest.raises(StdanError, match="non-finite"):
        download_weights(url=url, **FAST)
    assert_nothing_installed(weights_env)


def test_pickle_that_runs_code_is_refused(weights_env, http_server, tmp_path):
    marker = tmp_path / "pwned"
    url = http_server.add("/evil.pth", code_pickle_bytes(marker))
    with pytest.raises(StdanError, match="could run code"):
        download_weights(url=url, **FAST)
    assert not marker.exists()
    assert_nothing_installed(weights_env)


def test_small_model_is_not_the_official_checkpoint(weights_env, http_server):
    """A valid STDAN file of another configuration is refused for the official entry."""
    url = http_server.add("/tiny.pth", small_checkpoint_bytes())
    with pytest.raises(StdanError, match="is an STDAN checkpoint but not 'official': nf=16"):
        download_weights("official", url=url, **FAST)
    assert not (weights_env / "official.pth").exists()


def test_registry_sha256_is_enforced(weights_env, http_server, monkeypatch, tmp_path):
    from weights_server import write_registry

    data = small_checkpoint_bytes()
    url = http_server.add("/tiny.pth", data)
    monkeypatch.setenv("STDAN_REGISTRY", str(write_registry(tmp_path / "r2.json", sha256="0" * 64)))
    with pytest.raises(StdanError, match="has sha256 .* must have 0000"):
        download_weights(url=url, **FAST)
    assert_nothing_installed(weights_env)
    monkeypatch.setenv("STDAN_REGISTRY", str(write_registry(tmp_path / "r3.json", sha256=sha256(data))))
    download_weights(url=url, **FAST)
    assert_installed(weights_env, data)


def test_unreachable_server_fails_fast(weights_env, http_server):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StdanError, match="cannot reach 127.0.0.1"):
        download_weights(url=f"http://127.0.0.1:{port}/x.pth", **FAST)
    assert_nothing_installed(weights_env)


def test_offline_fails_fast_without_requests(weights_env, http_server, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFound, match="offline.*HF_HUB_OFFLINE.*--from-file"):
        download_weights(**FAST)
    assert http_server.requests == []


def test_from_file_import(weights_env, tmp_path):
    data = small_checkpoint_bytes()
    source = tmp_path / "by-hand.pth"
    source.write_bytes(data)
    result = download_weights(from_file=source, **FAST)
    assert result.source == str(source) and source.exists()
    assert_installed(weights_env, data)


def test_from_file_bad_file_leaves_nothing(weights_env, tmp_path):
    source = tmp_path / "wrong.pth"
    source.write_bytes(wrong_shape_bytes())
    with pytest.raises(StdanError, match="mis-shaped"):
        download_weights(from_file=source, **FAST)
    assert_nothing_installed(weights_env)


def test_dir_option(weights_env, http_server, tmp_path):
    data = small_checkpoint_bytes()
    url = http_server.add("/tiny.pth", data)
    download_weights(url=url, directory=tmp_path / "elsewhere", **FAST)
    assert_installed(tmp_path / "elsewhere", data)
    assert not weights_env.exists()


def test_processes_starting_together_download_once_and_share_the_file(weights_env, http_server):
    """Array tasks started at once with an empty cache used to append to the same .part file.
    The cache lock makes the others wait and then reuse the verified file."""
    import threading

    data = small_checkpoint_bytes()
    http_server.add("/drive-file", data)
    results, errors = [], []

    def fetch():
        try:
            results.append(download_weights(**FAST))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 3
    assert sorted(r.already_present for r in results) == [False, True, True]
    assert_installed(weights_env, data)
    assert [p.split("?")[0] for _, p, _ in http_server.requests].count("/download") == 1


def test_server_serves_ranges(http_server):
    """The test server itself: a Range request gets 206 and the tail of the body."""
    import urllib.request

    url = http_server.add("/f", b"0123456789")
    request = urllib.request.Request(url, headers={"Range": "bytes=4-"})
    with urllib.request.urlopen(request) as r:
        assert r.status == 206 and r.read() == b"456789"
