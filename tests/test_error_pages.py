"""Errors a browser meets are pages in the user's language, with the menu and a way back; the
API keeps answering JSON."""

from __future__ import annotations

import pytest

from callscope.governance import admin, auth
from tests.support import PASSWORD, sign_in


@pytest.fixture
def people(ctx):
    with ctx.db.session() as session:
        auth.add_user(session, "marcus", "agent", PASSWORD, agent_external_id="AG-1")
        auth.add_user(session, "sari", "agent", PASSWORD, agent_external_id="AG-2")
        admin.user_by_name(session, "sari").language = "id"


def test_a_missing_conversation_is_a_page_with_the_menu_and_a_way_back(client, people):
    sign_in(client, "marcus")
    res = client.get("/conversations/999")
    assert res.status_code == 404 and res.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in res.text and "conversation 999 not found" in res.text
    assert (
        'href="/dashboard"' in res.text
        and 'href="/conversations">Back to the conversations' in res.text
    )
    api = client.get("/api/v1/conversations/999/analysis")
    assert api.status_code == 404 and api.json() == {"detail": "conversation 999 not found"}


def test_error_pages_speak_the_users_language(client, people):
    sign_in(client, "sari")
    res = client.get("/conversations/999")
    assert res.status_code == 404 and '<html lang="id">' in res.text
    assert "<h1>Tidak ditemukan</h1>" in res.text and "Kembali ke percakapan" in res.text
    assert "percakapan 999 tidak ditemukan" in res.text  # (the detail too, in her words)
    res = client.get("/conversations?min_minutes=five&max_talk=lots")
    assert res.status_code == 422 and "Porsi bicara agen, sampai, Menit, dari" in res.text
    res = client.get("/admin/users")
    assert res.status_code == 403 and "<h1>Tidak diizinkan</h1>" in res.text
    assert "hanya untuk administrator" in res.text


def test_a_bad_filter_names_the_field_on_a_page_and_in_the_api(client, people):
    sign_in(client, "marcus")
    res = client.get("/conversations?sentiment=furious&agent=x")
    assert res.status_code == 422 and "<h1>Cannot be used</h1>" in res.text
    assert "A value of this page cannot be used:" in res.text and "Agent, Sentiment" in res.text
    assert "pattern" not in res.text  # no validation dump
    api = client.get("/api/v1/conversations?sentiment=furious")
    assert api.status_code == 422 and api.json()["detail"][0]["loc"] == ["query", "sentiment"]


def test_an_unknown_address_is_a_page_and_an_unknown_api_route_json(client):
    res = client.get("/nowhere", headers={"Accept-Language": "id"})
    assert res.status_code == 404 and "<h1>Tidak ditemukan</h1>" in res.text
    assert 'href="/login"' in res.text  # not signed in: the way back is signing in
    api = client.get("/api/v1/nowhere")
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}
    assert client.get("/conversations/1", follow_redirects=False).status_code == 303
