"""Importing existing transcripts: our JSON and WebVTT, with or without audio; the
WebVTT export read back; a vendor's format through the converter in docs/examples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from callscope.context import Context
from callscope.db.models import Conversation, Job
from callscope.governance import auth, policy
from callscope.measures import sentiment
from callscope.processing import jobs, transcripts
from callscope.processing.ingest import Ingestor
from callscope.review import exports
from callscope.review.document import document
from callscope.web.app import create_app
from tests.support import DATA, DEMO_CALLS, callscope, make_meta, make_settings, sign_in

ROOT = Path(__file__).resolve().parent.parent
EN = DEMO_CALLS / "synthetic_en_stereo.wav"
CONVERTER = ROOT / "docs" / "examples" / "convert_conversation_items.py"
VENDOR = DATA / "text" / "Json_input_customer_support.json"


@pytest.fixture(scope="module")
def world(tmp_path_factory, model_dir):
    """A processed stereo call, its exports, and an API client with an admin token."""
    ctx = Context.open(make_settings(tmp_path_factory.mktemp("import"), model_dir=model_dir))
    result = Ingestor(ctx).ingest_file(EN, make_meta())
    assert jobs.run_job(ctx, result.job, "test") == "processed"
    with ctx.db.session() as session:
        original = document(session, session.get(Conversation, result.id))
        policy.set_value(session, "recordings.enabled", True)
        auth.add_user(session, "root", "admin", "a long test password")
        token = auth.create_token(session, "root", "t")
    with TestClient(create_app(ctx)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield {"ctx": ctx, "doc": original, "client": client}
    ctx.close()


def words_of(doc: dict) -> list[tuple]:
    return [
        (seg["speaker"], w["text"], w["start_s"], w["end_s"])
        for seg in doc["transcript"]["segments"]
        for w in seg["words"]
    ]


def imported(world, transcript: str | bytes, name: str, audio: Path | None = None, **meta):
    files = {
        "metadata": (None, json.dumps(make_meta(**meta)), "application/json"),
        "transcript": (name, transcript, "text/plain"),
    }
    if audio is not None:
        files["audio"] = (audio.name, audio.read_bytes(), "audio/wav")
    return world["client"].post("/api/v1/conversations/import", files=files)


def analysis_of(world, conversation_id: int) -> dict:
    res = world["client"].get(f"/api/v1/conversations/{conversation_id}/analysis")
    assert res.status_code == 200
    return res.json()


def test_our_webvtt_export_imports_to_the_same_words_and_times(world):
    original = world["doc"]
    vtt = exports.webvtt_text(original)
    res = imported(world, vtt, "call.vtt")
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["status"] == "processed" and body["job"] is None
    again = analysis_of(world, body["id"])
    assert words_of(again) == words_of(original)
    assert [
        (s["speaker"], s["start_s"], s["end_s"], s["text"]) for s in again["transcript"]["segments"]
    ] == [
        (s["speaker"], s["start_s"], s["end_s"], s["text"])
        for s in original["transcript"]["segments"]
    ]
    same = {k: v for k, v in original["metrics"].items() if k != "speaker_source"}
    assert {k: v for k, v in again["metrics"].items() if k != "speaker_source"} == same
    assert again["metrics"]["speaker_source"] == "transcript"
    assert again["sentiment"] == original["sentiment"]
    assert again["recording"] is None
    with world["ctx"].db.session() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Job).where(Job.conversation_id == body["id"])
            )
            == 0
        )


def test_our_json_export_imports_with_its_audio_for_playback(world):
    export = json.dumps(world["doc"])  # the analysis document, as export.json gives it
    res = imported(world, export, "call.json", audio=EN)
    assert res.status_code == 201, res.text
    again = analysis_of(world, res.json()["id"])
    assert words_of(again) == words_of(world["doc"])
    assert again["recording"]["speaker_source"] == "transcript"
    audio = world["client"].get(
        f"/api/v1/conversations/{again['id']}/audio", headers={"Range": "bytes=0-99"}
    )
    assert audio.status_code == 206 and audio.headers["content-type"] == "audio/mp4"
    found = world["client"].get("/api/v1/conversations", params={"q": "wireless speaker"})
    assert again["id"] in [c["id"] for c in found.json()["items"]]


def test_webvtt_from_elsewhere_names_voices_and_has_no_word_times(world):
    vtt = (
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:04.000\n<v Marcus Lee>Thank you for calling, how can I help?\n\n"
        "00:00:05.000 --> 00:00:07.000\n<v Helen Brooks>My internet &amp; phone are down.\n\n"
    )
    res = imported(world, vtt, "other.vtt")
    assert res.status_code == 201, res.text
    doc = analysis_of(world, res.json()["id"])
    segs = doc["transcript"]["segments"]
    assert [(s["speaker"], s["text"]) for s in segs] == [
        ("agent", "Thank you for calling, how can I help?"),
        ("customer", "My internet & phone are down."),
    ]
    assert segs[0]["words"][0]["start_s"] == 1.0 and segs[0]["words"][-1]["end_s"] == 4.0
    assert doc["metrics"]["talk_time_s"] == {"agent": 3.0, "customer": 2.0}


def test_a_vendor_conversation_converts_and_imports(world, tmp_path):
    converted = subprocess.run(
        [sys.executable, str(CONVERTER), str(VENDOR)], capture_output=True, text=True, check=True
    ).stdout
    res = imported(world, converted, "vendor.json")
    assert res.status_code == 201, res.text
    doc = analysis_of(world, res.json()["id"])
    segs = doc["transcript"]["segments"]
    assert segs[0]["speaker"] == "agent" and "How may I help you?" in segs[0]["text"]
    assert segs[1]["speaker"] == "customer" and "Smart Brew 300" in segs[1]["text"]
    assert doc["metrics"]["switches"]["count"] >= 10
    assert doc["sentiment"]["overall"]["label"] in ("positive", "neutral", "negative")

    path = tmp_path / "vendor.json"
    path.write_text(converted)
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(make_meta()))
    cli = callscope(world["ctx"], "import", str(path), "--meta", str(meta), "--json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["status"] == "processed"


# --- what each bad input gets: 4xx naming the problem, nothing stored -------------------------

BAD = [
    ("call.json", "{not json", "transcript is not valid JSON"),
    (
        "call.json",
        json.dumps({"segments": []}),
        "transcript.segments: List should have at least 1 item",
    ),
    (
        "call.json",
        json.dumps({"segments": [{"speaker": "bob", "start_s": 0, "end_s": 1, "text": "hi"}]}),
        "transcript.segments[0].speaker: Input should be 'agent' or 'customer'",
    ),
    (
        "call.json",
        json.dumps({"segments": [{"speaker": "agent", "start_s": 5, "end_s": 1, "text": "hi"}]}),
        "ends (1.0) before it starts (5.0)",
    ),
    ("call.vtt", "not a vtt file", "transcript is not valid WebVTT"),
    ("call.vtt", "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhello\n", "has no voice (<v Name>)"),
    (
        "call.vtt",
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v Speaker 1>hello\n",
        "the voice 'Speaker 1' is neither agent nor customer",
    ),
    ("call.txt", "hello", "transcript format must be json or vtt"),
]


@pytest.mark.parametrize("name,content,message", BAD)
def test_bad_transcripts_are_refused_with_the_reason(
    ctx, client, admin_token, assert_nothing_stored, name, content, message
):
    client.headers["Authorization"] = f"Bearer {admin_token}"
    res = client.post(
        "/api/v1/conversations/import",
        files={
            "metadata": (None, json.dumps(make_meta()), "application/json"),
            "transcript": (name, content, "text/plain"),
        },
    )
    assert res.status_code == 422 and message in res.json()["detail"], res.text
    assert_nothing_stored()


def test_transcript_longer_than_its_audio_and_missing_language_are_refused(
    ctx, client, admin_token, assert_nothing_stored
):
    client.headers["Authorization"] = f"Bearer {admin_token}"
    long = json.dumps(
        {"segments": [{"speaker": "agent", "start_s": 0, "end_s": 600, "text": "hi"}]}
    )
    with open(DATA / "formats" / "whatstheweatherlike.wav", "rb") as audio:
        res = client.post(
            "/api/v1/conversations/import",
            files={
                "metadata": (None, json.dumps(make_meta()), "application/json"),
                "transcript": ("t.json", long, "application/json"),
                "audio": ("a.wav", audio, "audio/wav"),
            },
        )
    assert res.status_code == 422
    assert res.json()["detail"].startswith("transcript runs to 600.0 s but the audio lasts")
    meta = make_meta()
    del meta["recording"]["language"]
    res = client.post(
        "/api/v1/conversations/import",
        files={
            "metadata": (None, json.dumps(meta), "application/json"),
            "transcript": ("t.json", long, "application/json"),
        },
    )
    assert res.status_code == 422 and "language (en or id) is required" in res.json()["detail"]
    no_part = client.post(
        "/api/v1/conversations/import",
        files={"metadata": (None, json.dumps(make_meta()), "application/json")},
    )
    assert no_part.status_code == 400
    assert no_part.json()["detail"] == "multipart part 'transcript' is missing"
    assert_nothing_stored()


def test_an_external_id_that_exists_is_a_conflict(ctx, client, admin_token):
    client.headers["Authorization"] = f"Bearer {admin_token}"
    vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v.agent A>hello there\n"
    meta = json.dumps(make_meta())
    files = {
        "metadata": (None, meta, "application/json"),
        "transcript": ("t.vtt", vtt, "text/vtt"),
    }
    assert client.post("/api/v1/conversations/import", files=files).status_code == 201
    again = client.post("/api/v1/conversations/import", files=files)
    assert again.status_code == 409 and "already exists" in again.json()["detail"]


def test_word_times_in_a_cue_are_read_as_starts_and_ends():
    parsed = transcripts.parse_vtt(
        "WEBVTT\n\n00:00:01.000 --> 00:00:05.000\n"
        "<v.customer C>one<00:00:01.400> <00:00:02.000>two <00:00:03.000>three\n"
    )
    assert [(w.text, w.start, w.end) for w in parsed.words] == [
        ("one", 1.0, 1.4),
        ("two", 2.0, 3.0),
        ("three", 3.0, 5.0),
    ]


def test_imported_segments_stay_lines_with_their_own_sentiment_unless_uncertain(world):
    """Each imported JSON segment is one line scored on its own (so labelled lines can be
    checked through import and export); a line whose words were recognised with little
    confidence is uncertain: no sentiment, and not in the averages."""

    def words(text: str, start: float, confidence: float) -> list[dict]:
        return [
            {
                "text": w,
                "start_s": start + i * 0.3,
                "end_s": start + i * 0.3 + 0.25,
                "confidence": confidence,
            }
            for i, w in enumerate(text.split())
        ]

    lines = [
        ("agent", "How can I help you today?", 0.0, 0.9),
        ("customer", "The technician never showed up.", 2.0, 0.9),
        ("customer", "Thanks, that is wonderful news.", 4.2, 0.9),  # 0.2 s later: its own line
        ("customer", "Great lovely perfect excellent.", 7.0, 0.3),  # guessed words: uncertain
    ]
    transcript = {
        "language": "en",
        "segments": [
            {
                "speaker": who,
                "start_s": start,
                "end_s": start + 1.8,
                "text": text,
                "words": words(text, start, confidence),
            }
            for who, text, start, confidence in lines
        ],
    }
    res = imported(world, json.dumps(transcript), "labelled.json")
    assert res.status_code == 201, res.text
    doc = analysis_of(world, res.json()["id"])
    got = [(s["text"], s["sentiment"]["label"]) for s in doc["transcript"]["segments"]]
    assert got == [
        ("How can I help you today?", "neutral"),
        ("The technician never showed up.", "negative"),
        ("Thanks, that is wonderful news.", "positive"),
        ("Great lovely perfect excellent.", None),
    ]
    assert doc["transcript"]["segments"][3]["sentiment"]["uncertain"] is True
    # the customer's average: their one segment of docs/metrics.md (the two lines, under 1 s
    # apart), without the uncertain line, which would raise it
    customer = doc["sentiment"]["customer"]["score"]
    confident = sentiment.score(f"{lines[1][1]} {lines[2][1]}", "en", "customer")
    assert customer == pytest.approx(confident, abs=0.01)
    assert sentiment.score(lines[3][1], "en", "customer") > confident


def test_a_call_heard_with_little_confidence_says_so_on_its_summary_and_evaluation(world):
    """Where automation picks from the transcript (summary, categories, automatic answers), a
    call whose words were recognised with little confidence says so at the top of the tab."""

    def call(confidence: float) -> int:
        text = "My internet has been down since yesterday and nobody called me back"
        words = [
            {"text": w, "start_s": i * 0.4, "end_s": i * 0.4 + 0.3, "confidence": confidence}
            for i, w in enumerate(text.split())
        ]
        segment = {"speaker": "customer", "start_s": 0.0, "end_s": 5.0, "text": text}
        transcript = {"language": "en", "segments": [{**segment, "words": words}]}
        res = imported(world, json.dumps(transcript), "t.json")
        assert res.status_code == 201, res.text
        return res.json()["id"]

    unsure, sure = call(0.3), call(0.95)
    with TestClient(create_app(world["ctx"])) as pages:
        sign_in(pages, "root")
        page = pages.get(f"/conversations/{unsure}").text
        assert 'id="unsure-summary"' in page and 'id="unsure-evaluation"' in page
        assert "The transcript is uncertain (30 % confidence)" in page
        assert "unsure: 30 % confidence" in page.split('id="reason"')[1]  # (on the item too)
        assert "unsure-" not in pages.get(f"/conversations/{sure}").text
