"""Resumable HTTP download into a ``.part`` file, with the HTTP client huggingface-hub brings.

huggingface-hub 2.x depends on ``httpx2``, 1.x on ``httpx`` (same API); no other client is used.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from stdan_cli import __version__
from stdan_cli.errors import DownloadError, DownloadInterrupted
from stdan_cli.safe_files import NotRegular, kind_of, open_for_writing
from stdan_cli.weights.store import human_size

try:
    import httpx2 as httpx
except ImportError:  # pragma: no cover - huggingface-hub 1.x brings httpx
    try:
        import httpx  # type: ignore[no-redef]
    except ImportError:  # huggingface-hub 0.x brings requests: resolving weights still works, downloading does not
        httpx = None

MAX_PAGE = 2_000_000  # bytes of an HTML page we read to understand it


@dataclass(frozen=True)
class HtmlPage:
    """A web page received where a file was expected."""

    url: str
    status: int
    text: str


def make_client() -> "httpx.Client":
    if httpx is None:
        raise DownloadError("downloading needs huggingface-hub>=1.0 (it brings the httpx client): pip install -U huggingface-hub")
    return httpx.Client(
        follow_redirects=True,
        timeout=httpx.Timeout(60.0, connect=15.0),
        headers={"User-Agent": f"stdan-cli/{__version__}"},
    )


def _host(url) -> str:
    return urlsplit(str(url)).hostname or str(url)


def _range_start(content_range: str | None) -> int | None:
    m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", content_range or "")
    return int(m.group(1)) if m else None


def stream_to_part(client, url: str, part: Path, *, params=None, progress=None, label: str = "",
                   resume: bool = True) -> HtmlPage | None:
    """GET ``url`` into ``part``, resuming from its current size with a Range request.

    Returns None once the whole body is in ``part``, or the :class:`HtmlPage` received instead
    of a file (``part`` untouched). A server that ignores Range (200) restarts the file from zero;
    ``resume=False`` never asks for a range (for a URL expected to answer with a page).
    Raises :class:`DownloadInterrupted` when the connection drops (``part`` keeps the bytes received)
    and :class:`DownloadError` for other failures.
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    if kind_of(part) not in (None, "file"):
        raise DownloadError(f"{part} is not a regular file (a link, a pipe or a device); remove it")
    for _ in range(2):  # a second pass only after a 416 or a mismatched Content-Range
        offset = part.stat().st_size if resume and part.exists() else 0
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        received = 0
        total = None
        try:
            with client.stream("GET", url, params=params, headers=headers) as r:
                ctype = r.headers.get("content-type", "").lower()
                if r.status_code == 416 and offset:
                    part.unlink()  # our partial file is not a prefix the server recognises
                    continue
                if "text/html" in ctype:
                    body = b""
                    for chunk in r.iter_bytes():
                        body += chunk
                        if len(body) > MAX_PAGE:
                            break
                    return HtmlPage(str(r.url), r.status_code, body.decode(r.encoding or "utf-8", "replace"))
                if r.status_code >= 400:
                    raise DownloadError(f"{_host(r.url)} answered HTTP {r.status_code} {r.reason_phrase} for {r.url}")
                if r.status_code == 206:
                    if _range_start(r.headers.get("content-range")) != offset:
                        part.unlink()
                        continue
                    mode = "ab"
                else:  # 200: the whole file (server ignored or did not get Range)
                    offset, mode = 0, "wb"
                length = r.headers.get("content-length")
                if length and length.isdigit() and not r.headers.get("content-encoding"):
                    total = offset + int(length)
                if progress is not None:
                    progress.start(label or _host(url), total, offset)
                try:
                    f = open_for_writing(part, append=mode == "ab")  # never through a link, never a pipe
                except NotRegular:
                    raise DownloadError(f"{part} is not a regular file (a link, a pipe or a device); remove it") from None
                with f:
                    for chunk in r.iter_bytes():  # no re-chunking: bytes received before a drop are kept
                        f.write(chunk)
                        received += len(chunk)
                        if progress is not None:
                            progress.advance(len(chunk))
                    f.flush()
                    os.fsync(f.fileno())
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            if received or total:
                raise DownloadInterrupted(f"connection to {_host(url)} lost after {human_size(offset + received)}") from None
            raise DownloadError(f"cannot reach {_host(url)} ({type(exc).__name__}: {exc})") from None
        except httpx.TransportError as exc:  # dropped or timed out mid-transfer
            got = offset + received
            of = f" of {human_size(total)}" if total else ""
            raise DownloadInterrupted(f"download from {_host(url)} interrupted after {human_size(got)}{of} ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise DownloadError(f"download from {_host(url)} failed ({type(exc).__name__}: {exc})") from None
        size = part.stat().st_size
        if total is not None and size != total:
            raise DownloadInterrupted(f"download from {_host(url)} stopped at {human_size(size)} of {human_size(total)}")
        return None
    raise DownloadError(f"{_host(url)} does not honour resumed downloads consistently; delete {part} and retry")
