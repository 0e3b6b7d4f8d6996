"""Hostile input: script in metadata and transcripts renders inert, odd ids and SQL in filters
get a clear refusal, and fuzzed requests never make the server fail."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callscope.context import Context
from callscope.db.models import Conversation
from callscope.governance import auth, policy
from callscope.processing.ingest import Ingestor
from callscope.web.app import create_app
from tests.support import (
    FORMATS,
    PASSWORD,
    PAYLOAD,
    hostile_meta,
    make_meta,
    make_settings,
    plant_transcript,
    routes,
    sign_in,
    tone,
    write_wav,
)

SHORT = FORMATS / "whatstheweatherlike.wav"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, model_dir) -> Iterator[dict]:
    ctx = Context.open(make_settings(tmp_path_factory.mktemp("xss"), model_dir=model_dir))
    conv = Ingestor(ctx).ingest_file(SHORT, hostile_meta())
    plant_transcript(ctx, conv.id, "</script><script>window.pwned=1</script>" + PAYLOAD)
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
        auth.add_user(session, "boss", "admin", PASSWORD)
        contact_id = session.get(Conversation, conv.id).contact_id
        token = auth.create_token(session, "boss", "fuzz")
    app = create_app(ctx)
    yield {"ctx": ctx, "app": app, "id": conv.id, "contact": contact_id, "token": token}
    ctx.close()


def test_script_in_metadata_and_transcript_is_inert_on_every_page(hostile):
    with TestClient(hostile["app"]) as client:
        sign_in(client, "boss")
        client.get(f"/conversations/{hostile['id']}")  # an audit entry for the audit page
        pages = [
            "/conversations",
            f"/conversations/{hostile['id']}",
            f"/contacts/{hostile['contact']}",
            "/dashboard",
            "/admin/audit",
            f"/api/v1/conversations/{hostile['id']}/transcript.html",
        ]
        for path in pages:
            body = client.get(path).text
            assert "<script>window.pwned" not in body, path
            assert "<img src=x" not in body, path
        page = client.get(f"/conversations/{hostile['id']}").text
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page  # shown, as text
        # the transcript JSON inside the page cannot close its <script> element
        data = re.search(r'id="transcript-data">(.*?)</script>', page, re.S).group(1)
        assert "<" not in data
        assert json.loads(data)[0]["text"].startswith("</script><script>")
        download = client.get(f"/api/v1/conversations/{hostile['id']}/transcript.html").text
        assert "<script" not in download.lower() and "&lt;/script&gt;" in download


@pytest.mark.parametrize(
    "path",
    [
        "/conversations/abc",
        "/conversations/1.5",
        "/conversations/99999999999999999999999",
        "/conversations/..%2F..%2Fetc%2Fpasswd",
        "/contacts/%00",
        "/api/v1/conversations/-1/analysis",
        "/api/v1/jobs/1e9",
    ],
)
def test_path_like_and_non_numeric_ids_are_refused(hostile, path):
    with TestClient(hostile["app"], raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {hostile['token']}"
        sign_in(client, "boss")
        res = client.get(path)
        assert res.status_code in (404, 422), res.text


@pytest.mark.parametrize(
    "query",
    [
        "agent=1' OR '1'='1",
        "queue=1;DROP TABLE conversations",
        "sentiment=positive' --",
        "sort=started_at;DELETE FROM users",
        "start=2026-01-01' OR 1=1 --",
        "page=0",
    ],
)
def test_sql_in_list_filters_is_refused(hostile, query):
    with TestClient(hostile["app"]) as client:
        sign_in(client, "boss")
        assert client.get(f"/conversations?{query}").status_code == 422
        assert "1 conversation" in client.get("/conversations").text


def test_sql_in_audit_filters_matches_nothing(hostile):
    with TestClient(hostile["app"]) as client:
        sign_in(client, "boss")
        page = client.get("/admin/audit", params={"actor": "' OR 1=1 --", "object_id": "1 OR 1=1"})
        assert page.status_code == 200 and "0 entries" in page.text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = list(make_meta().keys()) + ["customer", "regarding", "consent"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    changes=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=3),
    raw=st.one_of(st.none(), st.binary(max_size=60)),
)
def test_fuzzed_ingest_metadata_is_accepted_or_refused_never_a_server_error(hostile, changes, raw):
    meta = raw if raw is not None else json.dumps({**make_meta(mono=True), **changes}, default=str)
    with (
        TestClient(hostile["app"], raise_server_exceptions=False) as client,
        open(SHORT, "rb") as f,
    ):
        res = client.post(
            "/api/v1/conversations",
            headers={"Authorization": f"Bearer {hostile['token']}"},
            files={"metadata": (None, meta, "application/json"), "audio": ("a.wav", f)},
        )
        assert res.status_code in (200, 202, 409, 422), res.text
        if res.status_code == 422:
            assert isinstance(res.json()["detail"], str | list) and res.json()["detail"]
        assert client.get("/healthz").status_code == 200


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    route=st.integers(min_value=0, max_value=1000),
    param=st.text(max_size=40),
    value=st.text(max_size=40),
)
def test_fuzzed_query_strings_on_every_page_never_fail_the_server(hostile, route, param, value):
    gets = [t for m, t in routes(hostile["app"]) if m == "GET"]
    template = gets[route % len(gets)]
    path = re.sub(r"\{[^}]+\}", str(hostile["id"]), template)
    names = [
        "agent",
        "queue",
        "sentiment",
        "start",
        "end",
        "sort",
        "page",
        "limit",
        "offset",
        "actor",
        "action",
        "object_id",
        "download",
        "next",
        param,
    ]
    with TestClient(hostile["app"], raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {hostile['token']}"
        sign_in(client, "boss")
        res = client.get(path, params={names[route % len(names)]: value, param: value})
        assert res.status_code < 500, f"{path} {param}={value!r}: {res.status_code}"


def test_audio_claiming_an_absurd_duration_is_refused(api, tmp_path, assert_nothing_stored):
    path = write_wav(tmp_path / "claims.wav", [tone(1.0)])
    data = bytearray(path.read_bytes())
    data[4:8] = (0xFFFFFFF0).to_bytes(4, "little")  # RIFF size
    data[40:44] = (0xFFFFFFC0).to_bytes(4, "little")  # data size: 37 hours at 16 kHz
    path.write_bytes(bytes(data))
    with open(path, "rb") as f:
        res = api.post(
            "/api/v1/conversations",
            files={
                "metadata": (None, json.dumps(make_meta(mono=True)), "application/json"),
                "audio": ("claims.wav", f, "audio/wav"),
            },
        )
    assert res.status_code == 422
    assert re.search(r"truncated|claims a duration", res.json()["detail"]), res.text
    assert_nothing_stored()
