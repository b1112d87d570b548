"""Shared pieces of the weights tests: a 127.0.0.1 HTTP server and small checkpoints.

The server (a thread running ``http.server``, stopped at the end of each test) plays every
remote party: a plain file host with Range support, a host that ignores Range, a host that drops
the connection half-way, an HTML page, Google Drive (confirmation form and quota page) and the
few Hugging Face Hub endpoints ``hf_hub_download`` uses. Nothing else is reached.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import torch

from stdan_cli.model import STDAN, STDANConfig

SMALL_CONFIG = STDANConfig.small()
DRIVE_ID = "TESTFILEID123"
HTML_PAGE = b"<!DOCTYPE html><html><head><title>Sign in - Google Accounts</title></head><body>Sign in</body></html>"
QUOTA_PAGE = (
    b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head>"
    b"<body>Too many users have viewed or downloaded this file recently.</body></html>"
)
REPO_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


_SMALL_SD = None


def small_state_dict() -> dict[str, torch.Tensor]:
    global _SMALL_SD
    if _SMALL_SD is None:
        torch.manual_seed(0)
        _SMALL_SD = STDAN(SMALL_CONFIG).state_dict()
    return {k: v.clone() for k, v in _SMALL_SD.items()}


def small_checkpoint_bytes() -> bytes:
    return _bytes(small_state_dict())


def wrong_shape_bytes() -> bytes:
    sd = small_state_dict()
    sd["conv_last.weight"] = torch.zeros(3, SMALL_CONFIG.nf, 5, 5)  # 3x3 kernel expected
    return _bytes(sd)


def nan_bytes() -> bytes:
    sd = small_state_dict()
    sd["conv_last.bias"][0] = float("nan")
    return _bytes(sd)


class RunsCode:
    """Unpickling this would call exec(): a checkpoint that runs code."""

    marker = ""

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def code_pickle_bytes(marker: Path) -> bytes:
    payload = RunsCode()
    payload.marker = str(marker)
    sd = small_state_dict()
    sd["conv_first.weight"] = payload
    return _bytes(sd)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Route:
    body: bytes
    content_type: str = "application/octet-stream"
    ranges: bool = True  # honour Range requests with 206
    drop_first: int = 0  # this many requests send only half the body, then close the connection
    status: int = 200
    hits: int = 0


@dataclass
class Server:
    url: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str, dict]] = field(default_factory=list)  # (method, path+query, headers)

    def add(self, path: str, body: bytes, **kwargs) -> str:
        self.routes[path] = Route(body, **kwargs)
        return self.url + path

    def range_requests(self, path: str) -> list[str]:
        return [h.get("range") for m, p, h in self.requests if urlsplit(p).path == path and h.get("range")]


def _handler(server: Server):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _send(self, route: Route, head_only: bool = False, extra: dict | None = None):
            body, status, start = route.body, route.status, 0
            match = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
            if match and route.ranges and status == 200:
                start = int(match.group(1))
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            chunk = body[start:]
            self.send_response(status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(chunk)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if head_only:
                return
            route.hits += 1
            if route.hits <= route.drop_first:
                self.wfile.write(chunk[: len(chunk) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(chunk)

        def _drive(self, query: dict):
            """/uc: the confirmation form; /download: the file, only with the form's fields."""
            path = urlsplit(self.path).path
            if path == "/uc" and query.get("id") == DRIVE_ID:
                page = (
                    '<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>'
                    "<p>Google Drive can't scan this file for viruses.</p>"
                    f'<form id="download-form" action="{server.url}/download" method="get">'
                    '<input type="submit" id="uc-download-link" value="Download anyway"/>'
                    f'<input type="hidden" name="id" value="{DRIVE_ID}">'
                    '<input type="hidden" name="export" value="download">'
                    '<input type="hidden" name="confirm" value="t">'
                    '<input type="hidden" name="uuid" value="1234-abcd"></form></body></html>'
                ).encode()
                return self._send(Route(page, "text/html; charset=utf-8"))
            ok = query.get("id") == DRIVE_ID and query.get("confirm") == "t" and query.get("uuid") == "1234-abcd"
            if path == "/download" and ok:
                return self._send(server.routes["/drive-file"])
            self.send_error(404)

        def _hub(self, head_only: bool):
            m = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", urlsplit(self.path).path)
            route = server.routes.get(f"/hub/{m.group(1)}/{m.group(3)}") if m else None
            if route is None:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            extra = {"X-Repo-Commit": REPO_COMMIT, "ETag": f'"{sha256(route.body)}"'}
            self._send(route, head_only=head_only, extra=extra)

        def _dispatch(self, head_only: bool):
            server.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
            split = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(split.query).items()}
            if "/resolve/" in split.path:
                return self._hub(head_only)
            if split.path in ("/uc", "/download") and "/drive-file" in server.routes:
                return self._drive(query)
            route = server.routes.get(split.path)
            if route is None:
                return self.send_error(404)
            self._send(route, head_only=head_only)

        def do_GET(self):
            self._dispatch(False)

        def do_HEAD(self):
            self._dispatch(True)

    return Handler


def write_registry(path: Path, **tiny_fields) -> Path:
    """A registry with 'tiny' (small config, default) and 'official' (official config, no sources)."""
    small = {
        "nf": SMALL_CONFIG.nf,
        "embed_dim": SMALL_CONFIG.embed_dim,
        "num_heads": SMALL_CONFIG.num_heads,
        "window_size": SMALL_CONFIG.window_size,
        "mlp_ratio": SMALL_CONFIG.mlp_ratio,
        "encoder_depths": list(SMALL_CONFIG.encoder_depths),
        "decoder_depths": list(SMALL_CONFIG.decoder_depths),
        "deformable_groups": SMALL_CONFIG.deformable_groups,
        "scale": SMALL_CONFIG.scale,
    }
    tiny = {"filename": "tiny.pth", "description": "small test checkpoint", "config": small,
            "google_drive_id": DRIVE_ID, **tiny_fields}
    official = {"filename": "official.pth", "description": "official-shaped", "config": {}, "num_params": 8292843}
    path.write_text(json.dumps({"default": "tiny", "checkpoints": {"tiny": tiny, "official": official}}))
    return path
