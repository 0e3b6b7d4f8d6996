"""What a caller may read of a transcript: with viewing switched off, or transcript downloads
not allowed for the caller's role, no route gives transcript text; metadata and metrics stay."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from callscope.context import Context
from callscope.db.models import Comment, Conversation, Evaluation, LiveCall, LiveLine, Queue, User
from callscope.governance import access, auth, policy
from callscope.governance.audit import Actor
from callscope.processing import retention
from callscope.processing.ingest import Ingestor
from callscope.review import categories, evaluations, refresh, search
from callscope.web.api import PLAY_RANGE_BYTES
from callscope.web.app import create_app
from tests.support import (
    DEMO_CALLS,
    FORMATS,
    PASSWORD,
    callscope,
    fill_path,
    make_meta,
    plant_transcript,
    routes,
    sign_in,
)

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


def test_with_viewing_off_no_search_tells_which_calls_hold_a_word(api, ctx, call):
    """Which calls hold a word would tell what was said: the API, the list page and the CSV
    export refuse a search by words (403, or a notice on the page); other filters still work."""
    res = api.get("/api/v1/conversations", params={"q": SECRET})
    assert res.status_code == 403 and res.json()["detail"] == search.SEARCH_OFF
    assert [i["id"] for i in api.get("/api/v1/conversations").json()["items"]] == [call]
    assert api.get("/api/v1/conversations/export.csv", params={"q": SECRET}).status_code == 403
    with ctx.db.session() as session:
        auth.add_user(session, "sue", "supervisor", PASSWORD)
        session.scalar(select(User).where(User.username == "sue")).queues = session.scalars(
            select(Queue)
        ).all()
    with TestClient(api.app) as browser:
        sign_in(browser, "sue")
        page = browser.get("/conversations", params={"q": SECRET}).text
        assert "cannot be searched for “refund”" in page and f"/conversations/{call}" not in page
        assert 'name="q"' not in browser.get("/conversations").text  # no field to search
        assert f"/conversations/{call}" in browser.get("/conversations").text
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
    listed = api.get("/api/v1/conversations", params={"q": SECRET}).json()
    assert f"<mark>{SECRET}</mark>" in listed["items"][0]["snippet"]  # the baseline


def test_with_viewing_off_comments_are_neither_shown_nor_added(api, ctx, call):
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
    url = f"/api/v1/conversations/{call}/comments"
    assert api.post(url, json={"at_s": 1.0, "text": f"said {SECRET}"}).status_code == 201
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", False)
    res = api.post(url, json={"at_s": 1.0, "text": "another"})
    assert res.status_code == 403 and access.VIEWING_OFF in res.json()["detail"]
    assert api.post(f"{url}/1/resolve").status_code == 403
    analysis = api.get(f"/api/v1/conversations/{call}/analysis")
    assert analysis.json()["comments"] == [] and SECRET not in analysis.text
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Comment)) == 1  # none added


def test_a_coachs_comment_is_resolved_by_its_author_or_a_supervisor_not_the_agent(ctx):
    call = Ingestor(ctx).ingest_file(FORMATS / "whatstheweatherlike.wav", make_meta(mono=True)).id
    plant_transcript(ctx, call, SAID)
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
        auth.add_user(session, "ana", "agent", PASSWORD, "AG-1")
        auth.add_user(session, "boss", "admin", PASSWORD)
    app = create_app(ctx)
    with TestClient(app) as coach, TestClient(app) as agent:
        csrf = sign_in(coach, "boss")
        agent_csrf = sign_in(agent, "ana")
        page = f"/conversations/{call}"
        for client, token, text in ((coach, csrf, "Greet first"), (agent, agent_csrf, "Noted")):
            client.post(f"{page}/comments", data={"csrf_token": token, "text": text, "at_s": 0})
        with ctx.db.session() as session:
            ids = dict(session.execute(select(Comment.text, Comment.id)).all())

        def resolve(client: TestClient, token: str, comment: int) -> tuple[bool, str]:
            res = client.post(f"{page}/comments/{comment}/resolve", data={"csrf_token": token})
            with ctx.db.session() as session:
                return session.get_one(Comment, comment).resolved, res.text

        shown = agent.get(page).text
        assert f"comments/{ids['Noted']}/resolve" in shown  # their own thread
        assert f"comments/{ids['Greet first']}/resolve" not in shown
        resolved, answer = resolve(agent, agent_csrf, ids["Greet first"])
        assert not resolved and "only its author or a supervisor" in answer
        assert resolve(agent, agent_csrf, ids["Noted"])[0]
        assert resolve(coach, csrf, ids["Greet first"])[0]  # its author


def test_a_refused_download_link_opened_in_a_browser_answers_a_page(api, call):
    url = f"/api/v1/conversations/{call}/transcript.html"
    in_browser = api.get(url, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert in_browser.status_code == 403
    assert in_browser.headers["content-type"].startswith("text/html")
    assert "Not allowed" in in_browser.text and access.VIEWING_OFF in in_browser.text
    by_program = api.get(url)
    assert by_program.status_code == 403 and by_program.json()["detail"] == access.VIEWING_OFF


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


def walk(ctx: Context, call: int) -> dict[str, str]:
    """What every GET route answers an administrator (signed in, and with a token), with each
    path filled with the call and the objects around it, a word search for the secret on the
    list pages, and what each command that prints calls prints: {what was asked: answer}."""
    with ctx.db.session() as session:
        conv = session.get_one(Conversation, call)
        boss = session.scalar(select(User).where(User.username == "walker"))
        if boss is None:
            boss = auth.add_user(session, "walker", "admin", PASSWORD)
        token = auth.create_token(session, "walker", "walk")
        fill = {
            "conversation_id": call,
            "job_id": 1,
            "contact_id": conv.contact_id,
            "user_id": boss.id,
            "token_id": 1,
            "fmt": "vtt",
            "webhook_id": 1,
            "category_id": 1,
            "comment_id": 1,
            "evaluation_id": session.scalar(select(func.max(Evaluation.id))) or 1,
            "live_id": session.scalar(select(func.max(LiveCall.id))) or 1,
        }
    answers = {}
    app = create_app(ctx)
    for how in ("session", "token"):
        with TestClient(app) as client:
            if how == "session":
                sign_in(client, "walker")
            else:
                client.headers["Authorization"] = f"Bearer {token}"
            for method, template in routes(app):
                if method != "GET" or (how == "token" and not template.startswith("/api/")):
                    continue
                path = fill_path(template, fill)
                searched = "?q=" + SECRET if template in SEARCHED else ""
                answers[f"{how} {path}{searched}"] = client.get(path + searched).text
    for args in COMMANDS:
        done = callscope(ctx, *(str(call) if a == "{call}" else a for a in args))
        answers[" ".join(args)] = done.stdout + done.stderr
    return answers


QUOTED = ("charged twice", "second payment")  # (not the phrase "second pay*", nor the query)
SEARCHED = {"/conversations", "/api/v1/conversations", "/conversations.csv", "/api/v1/search"}
COMMANDS = [
    ("export", "{call}"),
    ("export", "{call}", "--format", "vtt"),
    ("export", "{call}", "--format", "srt"),
    ("export", "--format", "csv"),
    ("audit",),
    ("categories", "list"),
]


def quotes(answer: str) -> bool:
    return any(words in answer for words in QUOTED)


def test_no_route_or_command_gives_a_withheld_or_purged_transcript_word(ctx):
    """Words of a call's transcript, quoted by its summary, a category's matches and an
    evaluation's evidence: every GET route (as an administrator, who may see all; the lists
    searched for another word of the line) and every command that prints calls, with viewing
    off and after a purge."""
    lines = [
        ("agent", "Thank you for calling, how can I help you today?"),
        ("customer", f"I was charged twice, I want a {SECRET} of the second payment."),
        ("agent", f"I am sorry about that. I have issued the {SECRET}, it arrives in three days."),
        ("customer", "Thank you so much, that is all."),
    ]
    doc = {
        "language": "en",
        "transcript": {
            "segments": [
                {"speaker": who, "start_s": 4.0 * i, "end_s": 4.0 * i + 3.5, "text": text}
                for i, (who, text) in enumerate(lines)
            ]
        },
    }
    with ctx.db.session() as session:
        categories.add(session, Actor.cli(), "Money back", {"phrases": ["second pay*"]})
        form = evaluations.import_form(session, Actor.cli(), FORM)
    meta = Ingestor(ctx).check_metadata(make_meta())
    call = Ingestor(ctx).import_transcript(json.dumps(doc).encode(), "json", meta).id
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", False)
        boss = auth.add_user(session, "walker", "admin", PASSWORD)
        evaluations.evaluate(session, Actor.cli(), boss, call, form.id, {})
        # the call as it was heard live, ended an instant ago (its page still shows it)
        live_call = LiveCall(
            protocol="generic",
            stream_id="walked",
            external_id="LIVE-W",
            metadata_json={},
            channels=2,
            sample_rate=8000,
            channel_map={},
            status="ended",
            ended_at=datetime.now(UTC),
            received_s=16.0,
            incomplete=False,
            alerts=0,
            revision=1,
            conversation_id=call,
        )
        session.add(live_call)
        session.flush()
        session.add(LiveLine(live_call_id=live_call.id, channel=1, utterance=0,
                             speaker="customer", start_s=4.0, end_s=7.5, text=lines[1][1],
                             final=True, revision=1))  # fmt: skip
    withheld = walk(ctx, call)
    assert len(withheld) > 60
    assert [asked for asked, said in withheld.items() if quotes(said)] == []
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
    shown = walk(ctx, call)  # (the baseline: the same walk finds the word where it may)
    assert {
        "token /api/v1/conversations/1/evaluations",
        "export {call}",
        f"token /api/v1/live/{live_call.id}",
    } <= {asked for asked, said in shown.items() if quotes(said)}
    with ctx.db.session() as session:
        policy.set_value(session, "retention.mode", "recordings")
        policy.set_value(session, "retention.days", 1)
        session.get_one(Conversation, call).started_at = datetime.now(UTC) - timedelta(days=3)
    assert retention.purge_expired(ctx).recordings == [call]
    purged = walk(ctx, call)
    assert [asked for asked, said in purged.items() if quotes(said)] == []
