"""Google Drive page parsing: the current form, the older confirm link and cookie, and other pages."""

from __future__ import annotations

from stdan_cli.weights.gdrive import confirmation_request, first_request, page_summary

FORM_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>
<form id="download-form" action="https://drive.usercontent.google.com/download" method="get">
<input type="submit" id="uc-download-link" class="goog-inline-block jfk-button" value="Download anyway"/>
<input type="hidden" name="id" value="ABC"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="u-1"></form></body></html>"""

OLD_LINK_PAGE = """<html><head><title>Google Drive - Virus scan warning</title></head><body>
<a id="uc-download-link" href="/uc?export=download&amp;confirm=Xy_z&amp;id=ABC">Download anyway</a></body></html>"""


def test_form_page():
    url, params = confirmation_request(FORM_PAGE, "https://drive.google.com/uc?export=download&id=ABC", "ABC")
    assert url == "https://drive.usercontent.google.com/download"
    assert params == {"id": "ABC", "export": "download", "confirm": "t", "uuid": "u-1"}


def test_old_confirm_link():
    url, params = confirmation_request(OLD_LINK_PAGE, "https://drive.google.com/uc?export=download&id=ABC", "ABC")
    assert url == "https://drive.google.com/uc" and params["confirm"] == "Xy_z" and params["id"] == "ABC"


def test_old_cookie():
    page = "<html><head><title>Google Drive</title></head><body>warning</body></html>"
    url, params = confirmation_request(page, "https://drive.google.com/uc?export=download&id=ABC", "ABC",
                                       {"download_warning_123": "TOKEN"})
    assert url == "https://drive.google.com/uc" and params == {"export": "download", "id": "ABC", "confirm": "TOKEN"}


def test_other_pages_are_not_confirmations():
    quota = "<html><head><title>Google Drive - Quota exceeded</title></head><body>Too many users</body></html>"
    assert confirmation_request(quota, "https://drive.google.com/uc", "ABC") is None
    assert page_summary(quota) == "Google Drive - Quota exceeded"
    assert page_summary("<html><body><p>Sorry,   the file\nis gone</p></body></html>") == "Sorry, the file is gone"
    assert confirmation_request("not < html > at all <form", "https://x/uc", "ABC") is None


def test_base_url_override(monkeypatch):
    monkeypatch.delenv("STDAN_GDRIVE_URL", raising=False)
    assert first_request("ABC") == ("https://drive.google.com/uc", {"export": "download", "id": "ABC"})
    monkeypatch.setenv("STDAN_GDRIVE_URL", "http://127.0.0.1:9/uc")
    assert first_request("ABC")[0] == "http://127.0.0.1:9/uc"
