"""Input at the edges: deep nesting, times at the ends of the calendar, huge numbers and cues
that end before they start each get a 4xx naming the problem, never a server error."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from callscope.governance import auth, policy
from tests.support import FORMATS, PASSWORD, callscope, make_meta, sign_in

SHORT = FORMATS / "whatstheweatherlike.wav"
NESTED = "[" * 100_000 + "]" * 100_000


def ingest(api: TestClient, metadata: str) -> dict:
    with open(SHORT, "rb") as audio:
        res = api.post(
            "/api/v1/conversations",
            files={"metadata": (None, metadata, "application/json"), "audio": ("a.wav", audio)},
        )
    assert res.status_code == 422, res.text
    return res.json()


def import_transcript(api: TestClient, transcript: str, name: str) -> dict:
    res = api.post(
        "/api/v1/conversations/import",
        files={
            "metadata": (None, json.dumps(make_meta(mono=True)), "application/json"),
            "transcript": (name, transcript, "text/plain"),
        },
    )
    assert res.status_code == 422, res.text
    return res.json()


def test_deeply_nested_metadata_is_refused(api, assert_nothing_stored):
    assert ingest(api, NESTED)["detail"] == "metadata is not valid JSON: it is nested too deeply"
    assert_nothing_stored()


def test_deeply_nested_transcript_is_refused(api, assert_nothing_stored):
    detail = import_transcript(api, NESTED, "t.json")["detail"]
    assert detail == "transcript is not valid JSON: it is nested too deeply"
    assert_nothing_stored()


@pytest.mark.parametrize(
    "field,value",
    [
        ("started_at", "9999-12-31T23:59:59Z"),
        ("started_at", "0001-01-01T00:00:00+14:00"),
    ],
)
def test_times_at_the_ends_of_the_calendar_are_refused(api, field, value, assert_nothing_stored):
    meta = make_meta(mono=True)
    meta[field] = value
    meta["sessions"][0] = {**meta["sessions"][0], "started_at": value, "ended_at": None}
    detail = ingest(api, json.dumps(meta))["detail"]
    assert f"metadata.{field}: must be a time between 1970 and 2200" in detail
    assert_nothing_stored()


def test_a_channel_number_thousands_of_digits_long_is_refused(api, assert_nothing_stored):
    meta = make_meta(mono=True)
    meta["recording"]["channels"] = {"9" * 5000: "agent"}
    detail = ingest(api, json.dumps(meta))["detail"]
    assert "is not a channel number" in detail and len(detail) < 300
    assert_nothing_stored()


def test_a_webvtt_time_of_a_hundred_million_hours_is_refused(api, assert_nothing_stored):
    vtt = "WEBVTT\n\n99999999:00:00.000 --> 99999999:00:01.000\n<v.agent Ana>hello there\n"
    detail = import_transcript(api, vtt, "t.vtt")["detail"]
    assert detail.startswith("WebVTT cue 1 ends at 99999999:00:01.000, past the longest call")
    assert_nothing_stored()


def test_a_webvtt_cue_that_ends_before_it_starts_is_refused(api, assert_nothing_stored):
    vtt = "WEBVTT\n\n00:00:05.000 --> 00:00:03.000\n<v.agent Ana>hello there\n"
    detail = import_transcript(api, vtt, "t.vtt")["detail"]
    assert detail == "WebVTT cue 1 ends (00:00:03.000) before it starts (00:00:05.000)"
    assert_nothing_stored()


def test_the_last_day_of_the_calendar_is_a_valid_filter(api, client, ctx):
    listed = api.get("/api/v1/conversations", params={"end": "9999-12-31"})
    assert listed.status_code == 200 and listed.json()["total"] == 0
    assert (
        api.get("/api/v1/conversations/export.csv", params={"end": "9999-12-31"}).status_code == 200
    )
    with ctx.db.session() as session:
        auth.add_user(session, "boss", "admin", PASSWORD)
    sign_in(client, "boss")
    for path in ("/conversations", "/admin/audit", "/conversations/export.csv"):
        assert client.get(path, params={"end": "9999-12-31"}).status_code == 200, path


def test_a_transcript_with_a_number_thousands_of_digits_long_is_refused(api, assert_nothing_stored):
    transcript = '{"segments": [{"speaker": "agent", "start_s": ' + "9" * 5000 + "}]}"
    detail = import_transcript(api, transcript, "t.json")["detail"]
    assert detail == "transcript is not valid JSON: a number in it is too long to read"
    assert_nothing_stored()


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_metadata_with_a_number_json_does_not_have_is_refused(api, constant, assert_nothing_stored):
    meta = '{"n": ' + constant + ", " + json.dumps(make_meta(mono=True))[1:]
    detail = ingest(api, meta)["detail"]
    assert detail == f"metadata is not valid JSON: {constant} is not a number JSON allows"
    assert_nothing_stored()


@pytest.mark.parametrize("at", [b"NaN", b"Infinity", b"1e999"])
def test_a_comment_at_no_moment_of_the_call_is_refused(ctx, api, at):
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
    res = api.post(
        "/api/v1/conversations/import",
        files={
            "metadata": (None, json.dumps(make_meta(mono=True)), "application/json"),
            "transcript": ("t.vtt", "WEBVTT\n\n00:00.000 --> 00:02.000\n<v.agent Ana>hello\n"),
        },
    )
    url = f"/api/v1/conversations/{res.json()['id']}/comments"
    body = b'{"at_s": ' + at + b', "text": "here"}'
    refused = api.post(url, content=body, headers={"content-type": "application/json"})
    assert refused.status_code == 422 and "at_s" in refused.text  # (NaN echoed as text)
    assert api.get(f"{url.removesuffix('/comments')}/analysis").json()["comments"] == []


def test_a_form_file_nested_too_deeply_or_with_a_huge_number_is_refused(ctx, tmp_path):
    for name, text, problem in [
        ("nested.json", NESTED, "it is nested too deeply"),
        ("digits.json", '{"name": ' + "9" * 5000 + "}", "a number in it is too long to read"),
        ("nan.json", '{"name": NaN}', "NaN is not a number JSON allows"),
    ]:
        path = tmp_path / name
        path.write_text(text)
        done = callscope(ctx, "forms", "import", str(path))
        assert done.returncode == 1 and problem in done.stderr
        assert "Traceback" not in done.stderr
