"""Search across conversations: words and phrases in transcripts, snippets, filters, and
scoping, on SQLite's FTS5 and PostgreSQL's full-text search alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from callscope.context import Context
from callscope.db.models import User
from callscope.governance import auth, policy
from callscope.processing import jobs, retention
from callscope.processing.ingest import Ingestor
from callscope.review import search
from callscope.web import pages
from callscope.web.app import create_app
from tests.support import FORMATS, PASSWORD, make_meta, make_settings, plant_transcript, sign_in

SHORT = FORMATS / "whatstheweatherlike.wav"
CALLS = {
    # external id: (agent, queue, minutes, agent talk %, transcript)
    "S-1": (
        "AG-1",
        "Billing",
        3,
        40.0,
        "I want a refund for the damaged speaker, it arrived broken.",
    ),
    "S-2": ("AG-1", "Billing", 12, 70.0, "Can I get a REFUND? The parcel never arrived."),
    "S-3": ("AG-2", "Support", 5, 55.0, "Saya mau pengembalian dana karena barangnya rusak."),
    "S-4": ("AG-2", "Support", 8, 60.0, "My card number is <b>secret</b> and the refund is late."),
}


def meta_for(external_id: str, agent: str, queue: str, minutes: int) -> dict:
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC) + timedelta(days=int(external_id[-1]))
    meta = make_meta(mono=True, external_id=external_id, queue=queue)
    meta["started_at"] = start.isoformat()
    meta["sessions"] = [
        {
            "agent": {"external_id": agent, "name": f"Agent {agent}"},
            "started_at": start.isoformat(),
            "ended_at": (start + timedelta(minutes=minutes)).isoformat(),
        }
    ]
    return meta


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, model_dir) -> Iterator[dict]:
    ctx = Context.open(make_settings(tmp_path_factory.mktemp("search"), model_dir=model_dir))
    ids = {}
    for external_id, (agent, queue, minutes, talk, transcript) in CALLS.items():
        conv = Ingestor(ctx).ingest_file(SHORT, meta_for(external_id, agent, queue, minutes))
        plant_transcript(ctx, conv.id, transcript, agent_talk_pct=talk)
        ids[external_id] = conv.id
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)  # (passages need viewing on)
        auth.add_user(session, "boss", "admin", PASSWORD)
        auth.add_user(session, "ag1", "agent", PASSWORD, agent_external_id="AG-1")
    yield {"ctx": ctx, "ids": ids}
    ctx.close()


def found(corpus, q: str | None = None, username: str = "boss", **filters) -> list[str]:
    with corpus["ctx"].db.session() as session:
        user = session.query(User).filter_by(username=username).one()
        results = search.find(session, user, search.Filters(q=q, **filters), limit=50)
        assert results.total == len(results.hits)
        return sorted(hit.conversation.external_id for hit in results.hits)


@pytest.mark.parametrize(
    "q,expected",
    [
        ("refund", ["S-1", "S-2", "S-4"]),
        ("Refund ARRIVED", ["S-1", "S-2"]),  # every word, any case
        ('"never arrived"', ["S-2"]),  # a phrase, in order
        ('"arrived never"', []),
        ("pengembalian rusak", ["S-3"]),  # Indonesian, as spoken
        ("refund, arrived!", ["S-1", "S-2"]),  # punctuation is not syntax
        ('refund OR NEAR(x) * "', []),  # FTS syntax is plain words: "or", "near x" are absent
        ("'; DROP TABLE conversations; --", []),
        ("arriv", []),  # whole words: no match inside a word ...
        ("car", []),  # ... "card" is not "car"
        ("arriv*", ["S-1", "S-2"]),  # unless the word ends with * (a prefix)
        ('"never arr*"', ["S-2"]),  # the last word of a phrase too
        ("pengembali* DANA", ["S-3"]),
        ("", ["S-1", "S-2", "S-3", "S-4"]),  # no words: no search
    ],
)
def test_words_and_phrases_are_found(corpus, q, expected):
    assert found(corpus, q) == expected


def test_search_combines_with_filters(corpus):
    assert found(corpus, "refund", queue_name="Billing") == ["S-1", "S-2"]
    assert found(corpus, "refund", agent_external_id="AG-2") == ["S-4"]
    assert found(corpus, "refund", min_duration_s=5 * 60) == ["S-2", "S-4"]
    assert found(corpus, "refund", max_duration_s=5 * 60) == ["S-1"]
    assert found(corpus, "refund", min_agent_talk_pct=50, max_agent_talk_pct=65) == ["S-4"]
    assert found(corpus, None, min_agent_talk_pct=55) == ["S-2", "S-3", "S-4"]


def test_search_stays_within_what_the_user_may_see(corpus):
    assert found(corpus, "refund", username="ag1") == ["S-1", "S-2"]
    assert found(corpus, "pengembalian", username="ag1") == []


def test_snippets_mark_matches_and_escape_the_transcript(corpus):
    with corpus["ctx"].db.session() as session:
        boss = session.query(User).filter_by(username="boss").one()
        hits = search.find(session, boss, search.Filters(q="secret refund"), limit=5).hits
    assert len(hits) == 1
    snippet = hits[0].snippet
    assert "<mark>refund</mark>" in snippet and "<mark>secret</mark>" in snippet
    assert "&lt;b&gt;" in snippet and "<b>" not in snippet


def test_search_from_the_page_and_the_api(corpus):
    with TestClient(create_app(corpus["ctx"])) as client:
        sign_in(client, "ag1")
        page = client.get("/conversations", params={"q": "refund", "min_minutes": "5"}).text
        assert "1 conversation" in page and "<mark>REFUND</mark>" in page
        listing = client.get("/api/v1/conversations", params={"q": "refund arrived"}).json()
        assert listing["total"] == 2
        assert all("<mark>" in item["snippet"] for item in listing["items"])
        assert (
            client.get("/api/v1/conversations", params={"min_agent_talk_pct": 101}).status_code
            == 422
        )
        assert client.get("/conversations", params={"min_minutes": "five"}).status_code == 422


@pytest.mark.model
def test_processing_indexes_and_retention_removes(tmp_path, model_dir):
    ctx = Context.open(make_settings(tmp_path / "data", model_dir=model_dir))
    old = datetime.now(UTC) - timedelta(days=40)
    meta = make_meta(mono=True, started_at=old.isoformat())
    meta["sessions"][0].update(
        started_at=old.isoformat(), ended_at=(old + timedelta(minutes=1)).isoformat()
    )
    conv = Ingestor(ctx).ingest_file(SHORT, meta)
    assert jobs.run_job(ctx, conv.job, "test") == "processed"
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)  # (words are searched while on)
        boss = auth.add_user(session, "boss", "admin", PASSWORD)
        assert search.find(session, boss, search.Filters(q="weather"), limit=5).total == 1
        policy.set_value(session, "retention.days", 30)
    assert retention.purge_expired(ctx).recordings == [conv.id]
    with ctx.db.session() as session:
        boss = session.query(User).filter_by(username="boss").one()
        assert search.find(session, boss, search.Filters(q="weather"), limit=5).total == 0
    ctx.close()


def test_a_text_search_counts_up_to_the_cap(corpus, monkeypatch):
    monkeypatch.setattr(search, "COUNT_CAP", 2)
    monkeypatch.setattr(pages, "PAGE_SIZE", 2)
    with corpus["ctx"].db.session() as session:
        boss = session.query(User).filter_by(username="boss").one()
        results = search.find(session, boss, search.Filters(q="refund"), limit=1)
        assert (results.total, results.total_is_exact, len(results.hits)) == (3, False, 1)
        exact = search.find(session, boss, search.Filters(q="arrived"), limit=1)
        assert (exact.total, exact.total_is_exact) == (2, True)
    with TestClient(create_app(corpus["ctx"])) as client:
        sign_in(client, "boss")
        page = client.get("/conversations", params={"q": "refund"}).text
        assert "More than 2 conversations" in page and 'rel="next"' in page
        assert "Page 1 of" not in page
        assert (
            client.get("/api/v1/conversations", params={"q": "refund"}).json()["total_is_exact"]
            is False
        )


@pytest.mark.parametrize(
    "body,found,expected",
    [
        ("One two three.", ["two"], "One <mark>two</mark> three."),
        ("Le café est fermé", ["cafe"], "Le <mark>café</mark> est fermé"),
        (
            " ".join(f"w{i}" for i in range(40)) + " refund now",
            ["refund"],
            "…" + " ".join(f"w{i}" for i in range(35, 40)) + " <mark>refund</mark> now",
        ),
        ("a <script> b", ["script"], "a &lt;<mark>script</mark>&gt; b"),
        ("", ["x"], ""),
        ("Refunds are refunded", ["refund*"], "<mark>Refunds</mark> are <mark>refunded</mark>"),
        ("A card, some care", ["car"], "A card, some care"),
        ("it never arrived", ["never arr*"], "it <mark>never</mark> <mark>arrived</mark>"),
    ],
)
def test_snippet_marks_words_around_the_first_match(body, found, expected):
    assert search.snippet(body, found) == expected
