"""Google Drive: the download URL and its "can't scan this file for viruses" confirmation page.

``GET <base>?export=download&id=ID`` returns either the file or an HTML page. The current page
holds a ``<form action=...>`` with hidden inputs (id, export, confirm, uuid) to submit as a GET;
older pages have a link with ``confirm=`` or set a ``download_warning*`` cookie. Any other page
(quota exceeded, no access) is an error. ``$STDAN_GDRIVE_URL`` overrides the base URL (tests).
"""

from __future__ import annotations

import html
import os
import re
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

GDRIVE_URL_ENV = "STDAN_GDRIVE_URL"
DEFAULT_GDRIVE_URL = "https://drive.google.com/uc"


def gdrive_base_url(override: str | None = None) -> str:
    return override or os.environ.get(GDRIVE_URL_ENV) or DEFAULT_GDRIVE_URL


def first_request(file_id: str, base: str | None = None) -> tuple[str, dict]:
    return gdrive_base_url(base), {"export": "download", "id": file_id}


class _PageParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []  # {"action": str, "method": str, "inputs": {name: value}}
        self.links: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get").lower(), "inputs": {}})
        elif tag == "input" and self.forms and a.get("name"):
            if a.get("type", "text").lower() not in ("submit", "button", "checkbox", "radio"):
                self.forms[-1]["inputs"][a["name"]] = a.get("value", "")
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def _parse(text: str) -> _PageParser:
    parser = _PageParser()
    try:
        parser.feed(text)
    except Exception:  # a broken page is simply a page we do not understand
        pass
    return parser


def confirmation_request(page_text: str, page_url: str, file_id: str, cookies=None) -> tuple[str, dict] | None:
    """The (url, params) that fetch the file after a confirmation page, or None if it is not one."""
    parser = _parse(page_text)
    for form in parser.forms:
        inputs = form["inputs"]
        if "confirm" in inputs or "uuid" in inputs or ("id" in inputs and "export" in inputs):
            action = urljoin(page_url, html.unescape(form["action"])) if form["action"] else page_url
            return action, dict(inputs)
    for href in parser.links:
        href = html.unescape(href)
        query = dict(parse_qsl(urlsplit(href).query))
        if "confirm" in query:
            return urljoin(page_url, href.split("?")[0]), {**query, "id": query.get("id", file_id)}
    for name, value in (cookies or {}).items():
        if name.startswith("download_warning"):
            return page_url.split("?")[0], {"export": "download", "id": file_id, "confirm": value}
    return None


def page_summary(page_text: str) -> str:
    """A short description of a page (its title, else its first words) for error messages."""
    title = " ".join(_parse(page_text).title.split())
    if title:
        return title[:100]
    words = " ".join(re.sub(r"<[^>]+>", " ", page_text).split())
    return words[:100] or "empty page"
