"""Security headers: pages, audio and API answers are not cached, framed or sniffed, and the
pages may load nothing from elsewhere."""

from __future__ import annotations

from fastapi.testclient import TestClient


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
