"""What a caller may read of a transcript: with viewing switched off, or transcript downloads
not allowed for the caller's role, no route gives transcript text; metadata and metrics stay."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callscope.context import Context
from callscope.db.models import Conversation, Evaluation, User
from callscope.governance import access, auth, policy
from callscope.governance.audit import Actor
from callscope.processing import retention
from callscope.processing.ingest import Ingestor
from callscope.review import categories, evaluations, refresh
from callscope.web.api import PLAY_RANGE_BYTES
from tests.support import DEMO_CALLS, FORMATS, make_meta, plant_transcript

SECRET = "refund"
SAID = f"please send the {SECRET} to my account today"


@pytest.fixture
def call(ctx: Context) -> int:
    conv = Ingestor(ctx).ingest_file(FORMATS / "whatstheweatherlike.wav", make_meta(mono=True))
    plant_transcript(ctx, conv.id, SAID, sentiment_score=0.1, metrics={"switches": {"count": 0}})
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", False)
    return conv.id


def as_agent(ctx: Context, client: TestClient) -> TestClient:
    with ctx.db.session() as session:
        auth.add_user(session, "ana", "agent", "a long test password", "AG-1")
        token = auth.create_token(session, "ana", "agent token")
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def test_with_viewing_off_the_analysis_has_metadata_and_metrics_but_no_words(api, call):
    doc = api.get(f"/api/v1/conversations/{call}/analysis").json()
    assert doc["transcript"]["segments"] == []
    assert doc["transcript"]["withheld"] == access.VIEWING_OFF
    assert doc["overview"]["queue"] == "Internet support"
    assert doc["metrics"] == {"switches": {"count": 0}}
    assert SECRET not in api.get(f"/api/v1/conversations/{call}/analysis").text


def test_with_viewing_off_a_search_finds_calls_but_shows_no_passage(api, ctx, call):
    listed = api.get("/api/v1/conversations", params={"q": SECRET}).json()
    assert [item["id"] for item in listed["items"]] == [call]
    assert listed["items"][0]["snippet"] is None
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
    listed = api.get("/api/v1/conversations", params={"q": SECRET}).json()
    assert f"<mark>{SECRET}</mark>" in listed["items"][0]["snippet"]  # the baseline


def test_with_viewing_off_swapping_speakers_answers_without_words(api, ctx, call):
    with ctx.db.session() as session:
        session.get_one(Conversation, call).processing_status = "processed"
    res = api.post(f"/api/v1/conversations/{call}/swap-speakers")
    assert res.status_code == 200
    assert res.json()["transcript"]["segments"] == [] and SECRET not in res.text


def test_an_agent_who_may_not_download_transcripts_gets_no_words_from_the_api(client, ctx, call):
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
        policy.set_value(session, "downloads.transcript", "supervisors")
    agent = as_agent(ctx, client)
    doc = agent.get(f"/api/v1/conversations/{call}/analysis").json()
    assert doc["transcript"]["segments"] == []
    assert doc["transcript"]["withheld"] == (
        "downloading transcripts is not allowed for your role (agent)"
    )
    with ctx.db.session() as session:
        policy.set_value(session, "downloads.transcript", "everyone")
    doc = agent.get(f"/api/v1/conversations/{call}/analysis").json()
    assert doc["transcript"]["segments"][0]["text"] == SAID  # the baseline


def test_a_caller_who_may_not_download_audio_gets_it_a_part_at_a_time(client, ctx):
    conv = Ingestor(ctx).ingest_file(DEMO_CALLS / "synthetic_en_stereo.wav", make_meta())
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
        policy.set_value(session, "downloads.audio", "supervisors")
    agent = as_agent(ctx, client)
    url = f"/api/v1/conversations/{conv.id}/audio"
    assert agent.get(url).status_code == 403  # the whole file is a download
    first = agent.get(url, headers={"Range": "bytes=0-"})
    size = int(first.headers["content-range"].split("/")[1])
    assert first.status_code == 206 and size > PLAY_RANGE_BYTES
    assert len(first.content) == PLAY_RANGE_BYTES  # not the whole file
    assert first.headers["content-range"] == f"bytes 0-{PLAY_RANGE_BYTES - 1}/{size}"
    rest = agent.get(url, headers={"Range": f"bytes={size - 100}-"})
    assert rest.status_code == 206 and len(rest.content) == 100
    assert agent.get(url, headers={"Range": "bytes=0-10,20-30"}).status_code == 416
    with ctx.db.session() as session:
        policy.set_value(session, "downloads.audio", "everyone")
    whole = agent.get(url, headers={"Range": "bytes=0-"})
    assert len(whole.content) == size  # the baseline: a caller who may download gets it all


FORM = {
    "name": "Money back",
    "sections": [
        {
            "title": "Care",
            "questions": [
                {
                    "id": "asked",
                    "text": "Asked for the money back",
                    "type": "yes_no",
                    "weight": 1,
                    "auto": {"category": "Money back", "when": "matched"},
                }
            ],
        }
    ],
}


def test_an_evaluations_evidence_follows_the_transcripts_rules(api, ctx, call):
    """Its evidence quotes the line: withheld with the transcript, and gone with a purge."""
    with ctx.db.session() as session:
        session.get_one(Conversation, call).processing_status = "processed"
        categories.add(session, Actor.cli(), "Money back", {"phrases": [SECRET]})
        refresh.changed(session, [call])  # (the category matched on the call)
        form = evaluations.import_form(session, Actor.cli(), FORM)
        boss = session.scalar(select(User).where(User.role == "admin"))
        evaluations.evaluate(session, Actor.cli(), boss, call, form.id, {})
    url = f"/api/v1/conversations/{call}/evaluations"
    [shown] = api.get(url).json()
    assert shown["answers"][0]["automatic"]["evidence"][0]["text"] is None  # viewing is off
    assert SECRET not in api.get(url).text
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
    assert SECRET in api.get(url).text  # the baseline: the words are there to withhold
    with ctx.db.session() as session:
        policy.set_value(session, "retention.mode", "recordings")
        policy.set_value(session, "retention.days", 1)
        session.get_one(Conversation, call).started_at = datetime.now(UTC) - timedelta(days=3)
    assert retention.purge_expired(ctx).recordings == [call]
    [shown] = api.get(url).json()
    evidence = shown["answers"][0]["automatic"]["evidence"]
    assert evidence and evidence[0]["text"] is None and evidence[0]["start_s"] == 0.0
    with ctx.db.session() as session:
        assert SECRET not in json.dumps(session.get_one(Evaluation, shown["id"]).automatic)
