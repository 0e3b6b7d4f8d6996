"""Exports: WebVTT and SRT of a transcript, the analysis JSON, and a CSV of metrics,
from the API, the pages and the CLI."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import srt
import webvtt
from fastapi.testclient import TestClient
from sqlalchemy import select

from callscope.context import Context
from callscope.db.models import AuditEvent
from callscope.governance import auth, policy
from callscope.processing.ingest import Ingestor
from callscope.review import exports
from callscope.web.app import create_app
from tests.support import FORMATS, PASSWORD, callscope, make_meta, plant_transcript, sign_in

DOC = {
    "transcript": {
        "language": "en",
        "segments": [
            {
                "speaker": "agent",
                "agent": "Daniel Reyes",
                "start_s": 0.5,
                "end_s": 2.25,
                "text": "Hello, how can I help?",
                "words": [
                    {"text": "Hello,", "start_s": 0.5, "end_s": 0.9},
                    {"text": "how", "start_s": 1.0, "end_s": 1.2},
                    {"text": "can", "start_s": 1.2, "end_s": 1.4},
                    {"text": "I", "start_s": 1.4, "end_s": 1.5},
                    {"text": "help?", "start_s": 1.5, "end_s": 2.25},
                ],
            },
            {
                "speaker": "customer",
                "agent": None,
                "start_s": 3601.0,
                "end_s": 3603.5,
                "text": "My <card> --> is & lost",
                "words": [
                    {"text": "My", "start_s": 3601.0, "end_s": 3601.3},
                    {"text": "<card>", "start_s": 3601.3, "end_s": 3602.0},
                    {"text": "-->", "start_s": 3602.0, "end_s": 3602.2},
                    {"text": "is", "start_s": 3602.2, "end_s": 3602.5},
                    {"text": "&", "start_s": 3602.5, "end_s": 3602.7},
                    {"text": "lost", "start_s": 3602.7, "end_s": 3603.5},
                ],
            },
        ],
    }
}


def test_webvtt_has_voices_and_word_times():
    text = exports.webvtt_text(DOC)
    cues = list(webvtt.from_string(text))
    assert [(c.start, c.end) for c in cues] == [
        ("00:00:00.500", "00:00:02.250"),
        ("01:00:01.000", "01:00:03.500"),
    ]
    # each word after the first has its start; a word followed by a pause also its end
    assert cues[0].raw_text.startswith(
        "<v.agent Daniel Reyes>Hello,<00:00:00.900> <00:00:01.000>how"
    )
    # markup and the cue arrow in a transcript are escaped, never read as VTT syntax
    assert "&lt;card&gt;" in cues[1].raw_text and "--&gt;" in cues[1].raw_text
    assert "&amp;" in cues[1].raw_text and cues[1].raw_text.startswith("<v.customer Customer>")
    times = re.findall(r"<(\d\d:\d\d:\d\d\.\d{3})>", cues[1].raw_text)
    assert times == ["01:00:01.300", "01:00:02.000", "01:00:02.200", "01:00:02.500", "01:00:02.700"]


def test_srt_names_the_speaker_of_each_line():
    subtitles = list(srt.parse(exports.srt_text(DOC)))
    assert [s.index for s in subtitles] == [1, 2]
    assert subtitles[0].content == "Daniel Reyes: Hello, how can I help?"
    assert subtitles[1].content == "Customer: My <card> --> is & lost"
    assert subtitles[1].start.total_seconds() == 3601.0


@pytest.fixture
def site(ctx: Context):
    conv = Ingestor(ctx).ingest_file(FORMATS / "whatstheweatherlike.wav", make_meta(mono=True))
    plant_transcript(ctx, conv.id, "what is the weather like", agent_talk_pct=42.5)
    other = make_meta(mono=True, queue='=HYPERLINK("http://evil")')
    other["sessions"][0]["agent"] = {"external_id": "AG-2", "name": "Olga"}
    Ingestor(ctx).ingest_file(FORMATS / "whatstheweatherlike.wav", other)
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
        auth.add_user(session, "boss", "admin", PASSWORD)
        auth.add_user(session, "marcus", "agent", PASSWORD, agent_external_id="AG-1")
    with TestClient(create_app(ctx)) as client:
        yield {"ctx": ctx, "client": client, "id": conv.id}


def test_conversation_exports_over_the_api(site):
    client, conv = site["client"], site["id"]
    sign_in(client, "marcus")
    vtt = client.get(f"/api/v1/conversations/{conv}/export.vtt")
    assert vtt.status_code == 200 and vtt.headers["content-type"].startswith("text/vtt")
    assert "attachment" in vtt.headers["content-disposition"]
    assert "<v.customer Customer>what is the weather like" in vtt.text
    assert client.get(f"/api/v1/conversations/{conv}/export.srt").text.startswith("1\n")
    document = client.get(f"/api/v1/conversations/{conv}/export.json").json()
    assert document["id"] == conv and document["transcript"]["segments"]
    assert client.get(f"/api/v1/conversations/{conv}/export.exe").status_code == 422
    with site["ctx"].db.session() as session:
        policy.set_value(session, "downloads.transcript", "administrators")
        formats = [
            e.details["format"]
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action == "conversation.export")
            )
        ]
    assert formats == ["vtt", "srt", "json"]
    res = client.get(f"/api/v1/conversations/{conv}/export.vtt")
    assert res.status_code == 403 and "not allowed for your role" in res.json()["detail"]


def test_metrics_csv_follows_filters_and_scope(site):
    client = site["client"]
    sign_in(client, "boss")
    rows = list(csv.DictReader(io.StringIO(client.get("/api/v1/conversations/export.csv").text)))
    assert len(rows) == 2 and list(rows[0]) == exports.CSV_COLUMNS
    assert {r["agent"] for r in rows} == {"AG-1", "AG-2"}
    # a cell that a spreadsheet would run as a formula is made text
    assert {r["queue"] for r in rows} == {"Internet support", '\'=HYPERLINK("http://evil")'}
    page_csv = client.get("/conversations/export.csv", params={"min_talk": "40"}).text
    assert [r["agent_talk_pct"] for r in csv.DictReader(io.StringIO(page_csv))] == ["42.5"]
    with TestClient(client.app) as agent:
        sign_in(agent, "marcus")
        mine = list(csv.DictReader(io.StringIO(agent.get("/conversations/export.csv").text)))
        assert [r["agent"] for r in mine] == ["AG-1"]
        listing = agent.get("/conversations").text
        assert 'href="/conversations/export.csv?' in listing


def test_exports_from_the_command_line(site, tmp_path):
    ctx, conv = site["ctx"], site["id"]
    res = callscope(ctx, "export", str(conv), "--format", "vtt")
    assert res.returncode == 0 and res.stdout.startswith("WEBVTT")
    out = tmp_path / "doc.json"
    assert callscope(ctx, "export", str(conv), "-o", str(out)).returncode == 0
    assert json.loads(out.read_text())["id"] == conv
    rows = list(csv.DictReader(io.StringIO(callscope(ctx, "export", "--format", "csv").stdout)))
    assert len(rows) == 2
    res = callscope(ctx, "export", "--format", "srt")
    assert res.returncode == 2 and "exactly one conversation" in res.stderr
