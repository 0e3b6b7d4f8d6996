"""The HTTP API, through a real app over a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from fastapi.testclient import TestClient

from callscope.config import Settings
from callscope.context import Context
from callscope.governance import auth, policy
from callscope.processing.worker import RetentionSchedule
from callscope.store import tmp_prefix
from callscope.web.app import create_app
from tests.support import (
    DEMO_CALLS,
    FORMATS,
    admin_api,
    make_meta,
    make_settings,
    row_counts,
    stored_files,
    tone,
    write_wav,
)

STEREO = DEMO_CALLS / "synthetic_en_stereo.wav"


def post(client: TestClient, path: Path, meta, **kw):
    with open(path, "rb") as audio:
        return client.post(
            "/api/v1/conversations",
            files={
                "metadata": (
                    None,
                    json.dumps(meta) if not isinstance(meta, bytes) else meta,
                    "application/json",
                ),
                "audio": (path.name, audio, "audio/wav"),
            },
            **kw,
        )


def test_ingest_returns_202_with_id_and_job(api: TestClient):
    meta = make_meta()
    res = post(api, STEREO, meta)
    assert res.status_code == 202, res.text
    body = res.json()
    assert body["external_id"] == meta["external_id"] and body["status"] == "queued"
    job = api.get(f"/api/v1/jobs/{body['job']}").json()
    assert job["status"] == "queued" and job["conversation_id"] == body["id"]


def test_same_call_again_is_200_and_other_audio_is_409(api: TestClient):
    meta = make_meta()
    first = post(api, STEREO, meta).json()
    again = post(api, STEREO, meta)
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    clash = post(api, DEMO_CALLS / "synthetic_id_stereo.wav", meta)
    assert clash.status_code == 409
    assert "already exists with different audio" in clash.json()["detail"]


def test_ingest_needs_a_valid_token(client: TestClient, assert_nothing_stored):
    assert post(client, STEREO, make_meta()).status_code == 401
    res = post(client, STEREO, make_meta(), headers={"Authorization": "Bearer cs_wrong"})
    assert res.status_code == 401
    assert_nothing_stored()


def test_only_an_administrators_ingest_token_may_ingest(ctx: Context, client: TestClient):
    with ctx.db.session() as session:
        auth.add_user(session, "ana", "agent", "long enough pw", agent_external_id="AG-1")
        auth.add_user(session, "ops", "admin", "long enough pw")
        agent_token = auth.create_token(session, "ana", "mine")
        read_only = auth.create_token(session, "ops", "dashboards", "read")
        with pytest.raises(auth.UserError, match="only an administrator's token may ingest"):
            auth.create_token(session, "ana", "sneaky", "ingest")
    before = row_counts(ctx)
    # an agent's token would write other people's customers and agents, and learn of calls it
    # may not see from the answer (409, 200): it is refused before anything is read
    for token in (agent_token, read_only):
        headers = {"Authorization": f"Bearer {token}"}
        res = post(client, STEREO, make_meta(), headers=headers)
        assert res.status_code == 403 and "ingest scope" in res.json()["detail"]
        imported = client.post(
            "/api/v1/conversations/import",
            headers=headers,
            files={"metadata": (None, "{}", "application/json"), "transcript": ("t.vtt", "x")},
        )
        assert imported.status_code == 403
    assert row_counts(ctx) == before
    with ctx.db.session() as session:
        ingest = auth.create_token(session, "ops", "crm")  # an administrator's: ingest
    res = post(client, STEREO, make_meta(), headers={"Authorization": f"Bearer {ingest}"})
    assert res.status_code == 202


def test_revoked_token_and_disabled_user_are_refused(ctx: Context, client: TestClient):
    from callscope.db.models import ApiToken, User, utcnow

    with ctx.db.session() as session:
        auth.add_user(session, "ops", "admin", "long enough pw")
        token = auth.create_token(session, "ops", "ci")
    assert (
        client.get(
            "/api/v1/conversations", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 200
    )
    with ctx.db.session() as session:
        session.query(ApiToken).update({"revoked_at": utcnow()})
    assert (
        client.get(
            "/api/v1/conversations", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 401
    )
    with ctx.db.session() as session:
        session.query(ApiToken).update({"revoked_at": None})
        session.query(User).update({"disabled": True})
    assert (
        client.get(
            "/api/v1/conversations", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 401
    )


@pytest.mark.parametrize(
    "path,meta,status,detail",
    [
        (
            FORMATS / "ingestion-client_missing_wav_header.wav",
            make_meta(mono=True),
            422,
            "no RIFF header",
        ),
        (
            FORMATS / "whatstheweatherlike.wav",
            make_meta(),
            422,
            "names channel 1 but the audio has only 1 channel",
        ),
        (STEREO, b"{oops", 422, "metadata is not valid JSON"),
        (
            STEREO,
            make_meta(sessions=[]),
            422,
            "metadata.sessions: List should have at least 1 item",
        ),
    ],
)
def test_bad_input_gets_named_error_and_nothing_stored(
    api, path, meta, status, detail, assert_nothing_stored
):
    res = post(api, path, meta)
    assert res.status_code == status
    assert detail in res.json()["detail"]
    assert_nothing_stored()


def test_missing_parts_and_malformed_bodies_are_400(api: TestClient, assert_nothing_stored):
    res = api.post("/api/v1/conversations", files={"metadata": (None, "{}")})
    assert res.status_code == 400 and res.json()["detail"] == "multipart part 'audio' is missing"
    with open(STEREO, "rb") as audio:
        res = api.post("/api/v1/conversations", files={"audio": ("a.wav", audio)})
    assert res.status_code == 400 and "'metadata' is missing" in res.json()["detail"]
    res = api.post("/api/v1/conversations", json={"metadata": {}})
    assert res.status_code == 400 and "must be multipart/form-data" in res.json()["detail"]
    res = api.post(
        "/api/v1/conversations",
        content=b"--xyz\r\ngarbage",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert res.status_code == 400
    res = api.post(
        "/api/v1/conversations",
        content=b"whatever",
        headers={"Content-Type": "multipart/form-data"},
    )
    assert res.status_code == 400 and "no boundary" in res.json()["detail"]
    assert_nothing_stored()


@pytest.fixture
def small_api(tmp_path: Path):
    ctx = Context.open(make_settings(tmp_path / "small", max_upload_mb=1))
    with ctx.db.session() as session:
        auth.add_user(session, "root", "admin", "long enough pw")
        token = auth.create_token(session, "root", "t")
    with TestClient(create_app(ctx)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield ctx, client
    ctx.close()


def test_upload_over_the_cap_is_413_by_content_length(small_api):
    ctx, client = small_api
    res = post(client, STEREO, make_meta())
    assert res.status_code == 413 and "upload limit of 1 MiB" in res.json()["detail"]
    assert stored_files(ctx) == []


def test_upload_over_the_cap_is_stopped_while_streaming(small_api):
    ctx, client = small_api
    boundary = "callscope-test"
    chunks_sent = []

    def body():
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'
            f"{json.dumps(make_meta())}\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="audio"; filename="big.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        for _ in range(64):  # 64 × 256 KiB = 16 MiB, never all in memory at once
            chunks_sent.append(1)
            yield b"\0" * (256 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    res = client.post(
        "/api/v1/conversations",
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert res.status_code == 413
    assert stored_files(ctx) == []


def test_analysis_document_has_the_spec_shape(api: TestClient):
    meta = make_meta()
    conv = post(api, STEREO, meta).json()
    doc = api.get(f"/api/v1/conversations/{conv['id']}/analysis").json()
    assert set(doc) >= {
        "id",
        "external_id",
        "status",
        "overview",
        "sessions",
        "recording",
        "transcript",
        "sentiment",
        "metrics",
    }
    assert set(doc["overview"]) >= {
        "primary_agent",
        "customer",
        "channel",
        "status",
        "status_reason",
        "queue",
        "workstream",
        "started_at",
        "ended_at",
        "duration_s",
        "skills",
        "regarding",
        "modified_on",
        "consent",
    }
    assert doc["overview"]["consent"] == {
        "status": "granted",
        "method": "ivr_announcement",
        "at": "2026-11-20T14:00:00Z",
    }
    assert doc["overview"]["duration_s"] == 300
    assert doc["sessions"][0]["agent"]["name"] == "Marcus Lee"
    assert doc["sessions"][0]["duration_s"] == 300
    assert doc["recording"]["channels"] == 2
    assert doc["recording"]["speaker_source"] == "channels"
    assert doc["recording"]["duration_s"] == pytest.approx(163.09, abs=0.01)


def test_unknown_or_malformed_ids_are_404_or_422(api: TestClient):
    assert api.get("/api/v1/conversations/999/analysis").status_code == 404
    assert api.get("/api/v1/conversations/abc/analysis").status_code == 422
    assert api.get("/api/v1/conversations/..%2F..%2Fetc/analysis").status_code in (404, 422)
    assert api.get("/api/v1/jobs/999").status_code == 404


def test_audio_is_403_while_recordings_are_switched_off(api: TestClient, ctx: Context):
    conv = post(api, STEREO, make_meta()).json()
    res = api.get(f"/api/v1/conversations/{conv['id']}/audio")
    assert res.status_code == 403 and "switched off" in res.json()["detail"]


def test_audio_is_mp4_aac_with_range_support(api: TestClient, ctx: Context, tmp_path: Path):
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
    conv = post(api, STEREO, make_meta()).json()
    url = f"/api/v1/conversations/{conv['id']}/audio"
    full = api.get(url)
    assert full.status_code == 200 and full.headers["content-type"] == "audio/mp4"
    assert full.headers["accept-ranges"] == "bytes"
    part = api.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == full.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(full.content)}"
    saved = tmp_path / "call.mp4"
    saved.write_bytes(full.content)
    with av.open(str(saved)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac" and stream.codec_context.channels == 2
        assert container.duration / av.time_base == pytest.approx(163.09, abs=0.1)


def test_agent_token_sees_only_own_calls(api: TestClient, ctx: Context):
    mine = post(api, STEREO, make_meta()).json()
    other_meta = make_meta()
    other_meta["sessions"][0]["agent"] = {"external_id": "AG-2", "name": "Other Agent"}
    other = post(api, STEREO, other_meta).json()
    with ctx.db.session() as session:
        auth.add_user(session, "marcus", "agent", "long enough pw", agent_external_id="AG-1")
        token = auth.create_token(session, "marcus", "own")
    headers = {"Authorization": f"Bearer {token}"}
    listing = api.get("/api/v1/conversations", headers=headers).json()
    assert [c["id"] for c in listing["items"]] == [mine["id"]] and listing["total"] == 1
    assert (
        api.get(f"/api/v1/conversations/{other['id']}/analysis", headers=headers).status_code == 404
    )
    assert api.get(f"/api/v1/jobs/{other['job']}", headers=headers).status_code == 404
    assert (
        api.get(f"/api/v1/conversations/{mine['id']}/analysis", headers=headers).status_code == 200
    )


def test_openapi_documents_the_api(client: TestClient):
    spec = client.get("/api/openapi.json").json()
    assert {
        "/api/v1/conversations",
        "/api/v1/conversations/{conversation_id}/analysis",
        "/api/v1/conversations/{conversation_id}/audio",
        "/api/v1/jobs/{job_id}",
    } <= set(spec["paths"])
    assert client.get("/api/docs").status_code == 200


def test_an_upload_that_crashed_the_decoder_is_refused_and_the_server_lives_on(
    api, tmp_path, assert_nothing_stored
):
    eight = write_wav(tmp_path / "eight.wav", [tone(0.25, level=0.3)] * 8, rate=8000)
    res = post(api, eight, make_meta(mono=True))
    assert res.status_code == 422
    assert res.json()["detail"] == "audio has 8 channels; at most 6 are accepted"
    assert_nothing_stored()
    assert api.get("/healthz").json() == {"status": "ok"}


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 3 MiB file system (tmpfs, mounted as root, as the test command runs)."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_answers_507_and_leaves_nothing_behind(small_disk: Path, model_dir):
    # the database and everything on a disk that fills up while the upload is spooled
    ctx = Context.open(Settings(data_dir=small_disk / "data", model_dir=model_dir))
    try:
        with admin_api(ctx) as client:
            res = post(client, STEREO, make_meta())  # 10 MB into 3 MiB
            assert res.status_code == 507
            assert res.json()["detail"].startswith("the server's disk is full")
            assert list(ctx.settings.tmp_dir.iterdir()) == []
            assert client.get("/api/v1/conversations").json()["total"] == 0
    finally:
        ctx.close()


def test_files_left_by_a_crashed_upload_are_removed_at_start(ctx: Context):
    tmp = ctx.settings.tmp_dir
    tmp.mkdir(parents=True, exist_ok=True)
    stale, fresh = tmp / "upload-crashed.wav", tmp / "upload-in-progress.wav"
    stale.write_bytes(b"x" * 1000)
    fresh.write_bytes(b"y" * 1000)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (two_days_ago, two_days_ago))
    Context.open(ctx.settings).close()  # another process starting
    assert not stale.exists() and fresh.exists()


def test_what_a_dead_process_left_is_removed_at_once_and_by_the_running_worker(ctx: Context):
    """A file or folder whose name says a process of this host made it goes as soon as that
    process is gone, at a start or at the worker's hourly round; work in progress of a live
    process, and another host's (which this one cannot tell), wait for their day."""
    tmp = ctx.settings.tmp_dir
    tmp.mkdir(parents=True, exist_ok=True)
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    gone = tmp_prefix("upload").replace(f"~{os.getpid()}~", f"~{ended.stdout.strip()}~")
    dead_file, dead_dir = tmp / f"{gone}a.wav", tmp / f"{gone}redaction"
    live = tmp / f"{tmp_prefix('upload')}b.wav"
    elsewhere = tmp / "upload~another-host~1~c.wav"
    for path in (dead_file, live, elsewhere):
        path.write_bytes(b"x" * 100)
    dead_dir.mkdir()
    (dead_dir / "r.m4a").write_bytes(b"y")
    Context.open(ctx.settings).close()  # another process starting
    assert not dead_file.exists() and not dead_dir.exists()
    assert live.exists() and elsewhere.exists()
    dead_file.write_bytes(b"x")  # left again while the worker runs
    RetentionSchedule().tick(ctx)
    assert not dead_file.exists() and live.exists()
