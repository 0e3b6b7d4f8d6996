"""Security headers: pages, audio and API answers are not cached, framed or sniffed, and the
pages may load nothing from elsewhere; the data on disk is the owner's alone."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from fastapi.testclient import TestClient

import callscope.web
from tests.support import FORMATS, make_meta


def test_pages_carry_a_content_security_policy_and_are_not_stored(client: TestClient):
    res = client.get("/login")
    assert res.status_code == 200
    policy = res.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert res.headers["x-content-type-options"] == "nosniff"
    assert res.headers["referrer-policy"] == "same-origin"
    assert res.headers["cache-control"] == "no-store"


def test_api_answers_and_errors_are_not_stored(api: TestClient):
    for path in ("/api/v1/conversations", "/api/v1/conversations/42/analysis"):
        res = api.get(path)
        assert res.headers["cache-control"] == "no-store", path
        assert res.headers["x-content-type-options"] == "nosniff", path


def test_static_files_may_be_cached_but_not_sniffed(client: TestClient):
    res = client.get("/static/conversation.js")
    assert res.status_code == 200
    assert "no-store" not in res.headers.get("cache-control", "")
    assert res.headers["x-content-type-options"] == "nosniff"


def test_the_data_folder_and_what_is_written_in_it_are_the_owners_alone(ctx, api, tmp_path):
    with open(FORMATS / "whatstheweatherlike.wav", "rb") as audio:
        files = {
            "metadata": (None, json.dumps(make_meta(mono=True)), "application/json"),
            "audio": ("a.wav", audio, "audio/wav"),
        }
        assert api.post("/api/v1/conversations", files=files).status_code == 202
    assert stat.S_IMODE(ctx.settings.data_dir.stat().st_mode) == 0o700
    written = [p for p in ctx.settings.data_dir.rglob("*") if p.is_file()]
    suffixes = {p.suffix for p in written}
    assert ".m4a" in suffixes and "secret.key" in {p.name for p in written}
    assert ".db" in suffixes or ctx.settings.database_url.startswith("postgresql")  # (SQLite's)
    loose = [str(p) for p in written if stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert loose == []


def test_the_templates_have_no_inline_script_the_policy_would_block():
    templates = Path(callscope.web.__file__).parent / "templates"
    inline = [
        f"{page.name}: {found.group(0)}"
        for page in templates.glob("*.html")
        for found in re.finditer(
            r"""\son[a-z]+\s*=|<script(?![^>]*(\bsrc=|type="application/json"))[^>]*>|javascript:""",
            page.read_text(encoding="utf-8"),
        )
    ]
    assert inline == []


def test_api_explorer_is_served_from_this_server_under_the_same_policy(client: TestClient):
    res = client.get("/api/docs")
    assert res.status_code == 200
    assert "default-src 'self'" in res.headers["content-security-policy"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', res.text)
    assert sources and all(s.startswith("/static/") for s in sources), sources
    for source in sources:
        assert client.get(source).status_code == 200, source
