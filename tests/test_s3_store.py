"""The S3-compatible media store, against an S3 server on loopback (moto's server mode):
ingest, processing, playback and erasure with the recordings in a bucket, not on disk."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator

import boto3
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from callscope.context import Context
from callscope.governance import auth, policy
from callscope.governance.audit import Actor
from callscope.processing import jobs, retention
from callscope.processing.ingest import Ingestor
from callscope.store import S3MediaStore
from callscope.web.app import create_app
from tests.support import DEMO_CALLS, FORMATS, free_port, make_meta, make_settings, settings_env

pytestmark = [pytest.mark.services, pytest.mark.model]

BUCKET = "recordings"


@pytest.fixture
def s3(monkeypatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "callscope-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "callscope-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def objects(endpoint: str) -> set[str]:
    listing = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=BUCKET)
    return {item["Key"] for item in listing.get("Contents", [])}


def test_recordings_live_in_the_bucket(tmp_path, model_dir, s3):
    settings = make_settings(
        tmp_path / "data", model_dir=model_dir, media_url=f"s3://{BUCKET}/calls?endpoint={s3}"
    )
    ctx = Context.open(settings)
    assert isinstance(ctx.store, S3MediaStore)
    call = Ingestor(ctx).ingest_file(FORMATS / "whatstheweatherlike.wav", make_meta(mono=True))
    keys = objects(s3)
    assert len(keys) == 3 and all(k.startswith("calls/") for k in keys)
    assert {k.split("/")[1] for k in keys} == {"originals", "playback"}
    assert not settings.media_dir.exists()  # nothing in the local media folder

    # another machine: an empty cache, the same bucket and database
    shutil.rmtree(settings.media_cache_dir)
    assert jobs.run_job(ctx, call.job, "elsewhere") == "processed"
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
        auth.add_user(session, "boss", "admin", "a long test password")
        token = auth.create_token(session, "boss", "t")
    shutil.rmtree(settings.media_cache_dir)
    with TestClient(create_app(ctx)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        audio = client.get(f"/api/v1/conversations/{call.id}/audio")
        part = client.get(
            f"/api/v1/conversations/{call.id}/audio", headers={"Range": "bytes=10-19"}
        )
    playback = next(k for k in keys if k.endswith(".m4a"))
    stored = boto3.client("s3", endpoint_url=s3).get_object(Bucket=BUCKET, Key=playback)
    assert audio.status_code == 200 and audio.content == stored["Body"].read()
    assert part.status_code == 206 and part.content == audio.content[10:20]

    retention.erase_customer(ctx, Actor.cli(), "CUST-77")
    assert objects(s3) == set()
    ctx.close()


def test_shared_audio_stays_until_its_last_recording_goes(tmp_path, model_dir, s3):
    settings = make_settings(
        tmp_path / "data", model_dir=model_dir, media_url=f"s3://{BUCKET}?endpoint={s3}"
    )
    ctx = Context.open(settings)
    audio = DEMO_CALLS / "synthetic_en_stereo.wav"
    first = make_meta()
    second = make_meta()
    second["customer"] = {"external_id": "CUST-OTHER", "name": "Other"}
    Ingestor(ctx).ingest_file(audio, first)
    Ingestor(ctx).ingest_file(audio, second)
    keys = objects(s3)
    assert len(keys) == 3  # the same audio is stored once
    retention.erase_customer(ctx, Actor.cli(), "CUST-77")
    assert objects(s3) == keys
    retention.erase_customer(ctx, Actor.cli(), "CUST-OTHER")
    assert objects(s3) == set()
    ctx.close()


def test_unknown_media_url_is_a_clear_error(tmp_path):
    env = {**settings_env(make_settings(tmp_path / "data")), "CALLSCOPE_MEDIA_URL": "ftp://x"}
    proc = subprocess.run(
        [sys.executable, "-m", "callscope", "init"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: CALLSCOPE_MEDIA_URL: unsupported media store URL")
