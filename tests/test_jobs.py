"""Jobs: states, failures with reasons, retry, and work resumed after a worker dies."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from callscope import cli
from callscope.config import Settings
from callscope.context import Context
from callscope.db.models import Conversation, Job, Segment, WebhookDelivery, WorkerSeen, utcnow
from callscope.governance import policy
from callscope.processing import jobs, presence
from callscope.processing.ingest import Ingestor
from callscope.processing.presence import Presence
from callscope.store import blob_key
from callscope.web.app import create_app
from tests.support import DEMO_CALLS, FORMATS, admin_api, make_meta, make_settings, settings_env

SHORT = FORMATS / "whatstheweatherlike.wav"


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    """`callscope worker` in a process of its own, with ENV's settings."""
    return subprocess.Popen(
        [sys.executable, "-m", "callscope", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def job_row(ctx: Context, job_id: int) -> Job:
    with ctx.db.session() as session:
        return session.get(Job, job_id)


@pytest.mark.model
def test_job_goes_from_queued_to_processed(ctx: Context):
    result = Ingestor(ctx).ingest_file(SHORT, make_meta(mono=True))
    seen = []
    assert jobs.run_job(ctx, result.job, "t", progress=lambda p, s: seen.append((p, s))) == (
        "processed"
    )
    job = job_row(ctx, result.job)
    assert (job.status, job.progress, job.attempts, job.error) == ("processed", 100.0, 1, None)
    stages = [s for _p, s in seen]
    assert stages[0] == "decoding" and "transcribing" in stages and stages[-1] == "done"
    assert [p for p, _s in seen] == sorted(p for p, _s in seen)
    with ctx.db.session() as session:
        assert session.get(Conversation, result.id).processing_status == "processed"


@pytest.mark.model
def test_a_job_runs_once_even_when_two_workers_ask(ctx: Context):
    result = Ingestor(ctx).ingest_file(SHORT, make_meta(mono=True))
    assert jobs.run_job(ctx, result.job, "first") == "processed"
    assert jobs.run_job(ctx, result.job, "second") is None
    assert job_row(ctx, result.job).attempts == 1


@pytest.mark.model
def test_failure_is_recorded_with_its_reason_and_can_be_retried(ctx: Context, tmp_path):
    result = Ingestor(ctx).ingest_file(SHORT, make_meta(mono=True))
    with ctx.db.session() as session:
        sha = session.get(Conversation, result.id).recording.sha256
    original = ctx.store.local_path(blob_key(sha))
    hidden = original.rename(tmp_path / "hidden")
    assert jobs.run_job(ctx, result.job, "t") == "failed"
    job = job_row(ctx, result.job)
    assert job.status == "failed"
    assert job.error == "the original recording is missing from the media store"
    with ctx.db.session() as session:
        assert session.get(Conversation, result.id).processing_status == "failed"
    jobs.retry(ctx, result.job)
    with pytest.raises(jobs.JobError, match="is queued; only a failed job can be retried"):
        jobs.retry(ctx, result.job)
    hidden.rename(original)
    assert job_row(ctx, result.job).status == "queued"
    assert jobs.run_pending(ctx) == 1
    assert job_row(ctx, result.job).status == "processed"


def test_retry_of_unknown_job(ctx: Context):
    with pytest.raises(jobs.JobError, match="no job 42"):
        jobs.retry(ctx, 42)


@pytest.mark.model
def test_abandoned_job_is_taken_up_again(ctx: Context):
    result = Ingestor(ctx).ingest_file(SHORT, make_meta(mono=True))
    with ctx.db.session() as session:
        session.execute(
            update(Job)
            .where(Job.id == result.job)
            .values(
                status="processing",
                attempts=1,
                worker="dead",
                heartbeat_at=utcnow() - timedelta(minutes=5),
            )
        )
    assert jobs.run_pending(ctx) == 1
    job = job_row(ctx, result.job)
    assert (job.status, job.attempts) == ("processed", 2)


def test_job_abandoned_too_often_fails_with_the_reason(ctx: Context):
    result = Ingestor(ctx).ingest_file(SHORT, make_meta(mono=True))
    with ctx.db.session() as session:
        session.execute(
            update(Job)
            .where(Job.id == result.job)
            .values(status="processing", attempts=3, heartbeat_at=utcnow() - timedelta(minutes=5))
        )
    assert jobs.run_pending(ctx) == 0
    job = job_row(ctx, result.job)
    assert job.status == "failed" and "abandoned 3 times" in job.error


def test_a_live_job_is_not_taken_from_its_worker(ctx: Context):
    result = Ingestor(ctx).ingest_file(SHORT, make_meta(mono=True))
    with ctx.db.session() as session:
        session.execute(
            update(Job)
            .where(Job.id == result.job)
            .values(status="processing", attempts=1, heartbeat_at=utcnow())
        )
    assert jobs.run_pending(ctx) == 0
    assert job_row(ctx, result.job).status == "processing"


@pytest.mark.model
def test_worker_killed_mid_job_loses_nothing(tmp_path, model_dir):
    settings = make_settings(tmp_path / "data", model_dir=model_dir, job_stale_after_s=3)
    ctx = Context.open(settings)
    result = Ingestor(ctx).ingest_file(DEMO_CALLS / "synthetic_en_stereo.wav", make_meta())
    env = {**settings_env(settings), "CALLSCOPE_JOB_STALE_AFTER_S": "3"}
    worker = start_worker(env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = job_row(ctx, result.job)
            if job.status == "processing" and job.stage == "transcribing":
                break
            time.sleep(0.2)
        else:
            pytest.fail("the worker never started transcribing")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert job_row(ctx, result.job).status == "processing"
    time.sleep(3.5)
    assert jobs.run_pending(ctx, "survivor") == 1
    job = job_row(ctx, result.job)
    assert (job.status, job.attempts, job.worker) == ("processed", 2, "survivor")
    with ctx.db.session() as session:
        segments = session.get(Conversation, result.id).segments
        assert len(segments) > 10
        assert len({(s.start_s, s.speaker) for s in segments}) == len(segments)
    ctx.close()


@pytest.mark.model
def test_cli_ingest_wait_shows_progress_and_ends_processed(tmp_path, model_dir):
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(make_meta(mono=True)))
    env = settings_env(make_settings(tmp_path / "data", model_dir=model_dir))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "callscope",
            "ingest",
            str(SHORT),
            "--meta",
            str(meta),
            "--wait",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    ingested = json.loads(proc.stdout)
    assert ingested["status"] == "processed"
    assert "transcribing" in proc.stderr and "100% done" in proc.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "callscope", "show", str(ingested["id"]), "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    doc = json.loads(shown.stdout)
    assert doc["status"] == "processed" and doc["metrics"] is not None
    assert "weather" in doc["transcript"]["segments"][0]["text"].lower()


def cli_ingest(env: dict[str, str], folder: Path) -> dict:
    meta = folder / "meta.json"
    meta.write_text(json.dumps(make_meta(mono=True)))  # (a new call each time)
    proc = subprocess.run(
        [sys.executable, "-m", "callscope", "ingest", str(SHORT), "--meta", str(meta)]
        + ["--wait", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return {**json.loads(proc.stdout), "stderr": proc.stderr}


@pytest.mark.model
def test_cli_ingest_wait_hands_its_job_to_a_running_worker(tmp_path, model_dir):
    settings = make_settings(tmp_path / "data", model_dir=model_dir)
    ctx = Context.open(settings)
    env = settings_env(settings)
    worker = start_worker(env)
    try:
        deadline = time.monotonic() + 120
        while not presence.ready_workers(ctx):  # (its models loaded)
            assert time.monotonic() < deadline, "the worker never said it was ready"
            assert worker.poll() is None, "the worker stopped"
            time.sleep(0.2)
        [name] = presence.ready_workers(ctx)
        assert name.startswith("worker@") and f":{worker.pid}:" in name
        ingested = cli_ingest(env, tmp_path)
        assert ingested["status"] == "processed" and "100% done" in ingested["stderr"]
        assert job_row(ctx, ingested["job"]).worker == name  # the worker ran it, not the command
        worker.send_signal(signal.SIGTERM)  # (as a service manager stops it: its row goes too)
        worker.wait(30)
        assert presence.ready_workers(ctx) == []
        with ctx.db.session() as session:
            assert session.scalar(select(func.count()).select_from(WorkerSeen)) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    # a worker that died without a word (its row left, no longer renewed) is not waited for
    with ctx.db.session() as session:
        gone = utcnow() - timedelta(seconds=presence.GONE_AFTER_S + 1)
        session.add(WorkerSeen(name="worker@dead:1:1", seen_at=gone, ready=True))
    assert presence.ready_workers(ctx) == []
    ingested = cli_ingest(env, tmp_path)
    assert ingested["status"] == "processed"
    assert job_row(ctx, ingested["job"]).worker.startswith("cli@")
    ctx.close()


@pytest.mark.model
def test_a_job_no_worker_takes_is_run_by_the_waiting_command(ctx: Context, monkeypatch):
    """A worker says it is ready but does not take the job (busy with a long call): after the
    handover time the command processes it itself."""
    result = Ingestor(ctx).ingest_file(SHORT, make_meta(mono=True))
    busy = Presence(ctx, "worker@busy:1:1")
    busy.mark_ready()
    monkeypatch.setattr(cli, "HANDOVER_S", 0.5)
    taken_over_at = []
    real_run_job = jobs.run_job

    def run_job(*args, **kwargs):
        taken_over_at.append(job_row(ctx, result.job).status)
        return real_run_job(*args, **kwargs)

    monkeypatch.setattr(jobs, "run_job", run_job)
    assert cli.wait_for_job(ctx, result.job, poll_s=0.05) == "processed"
    assert taken_over_at == ["queued"]  # (after waiting for the worker, not before)
    assert job_row(ctx, result.job).worker.startswith("cli@")
    busy.stop()
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(WorkerSeen)) == 0


@pytest.mark.model
def test_embedded_worker_in_the_web_app_processes_ingested_calls(ctx: Context, admin_token):

    result = Ingestor(ctx).ingest_file(SHORT, make_meta(mono=True))
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)  # (to read the words back)
    headers = {"Authorization": f"Bearer {admin_token}"}
    with TestClient(create_app(ctx, with_worker=True)) as client:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = client.get(f"/api/v1/jobs/{result.job}", headers=headers).json()
            if job["status"] in ("processed", "failed"):
                break
            time.sleep(0.2)
        assert job["status"] == "processed" and job["progress"] == 100
        doc = client.get(f"/api/v1/conversations/{result.id}/analysis", headers=headers).json()
    assert doc["status"] == "processed"
    assert "weather" in " ".join(s["text"] for s in doc["transcript"]["segments"]).lower()


@pytest.mark.model
def test_a_worker_that_lost_its_job_keeps_no_results_and_sends_no_event(ctx: Context):
    """A worker paused past the stale time while another took its job over: when it resumes
    and finishes, nothing of its work is written and no second event goes out."""
    result = Ingestor(ctx).ingest_file(SHORT, make_meta(mono=True))

    def taken_over(percent: float, stage: str | None) -> None:
        if stage == "transcribing":  # meanwhile, another worker took the job
            with ctx.db.session() as session:
                session.execute(
                    update(Job).where(Job.id == result.job).values(worker="other", attempts=2)
                )

    assert jobs.run_job(ctx, result.job, "paused", progress=taken_over) is None
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Segment)) == 0
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
        job = session.get_one(Job, result.job)
    assert (job.worker, job.status) == ("other", "processing")  # left to its new holder


def test_a_locked_database_answers_503_with_a_message(tmp_path, model_dir):
    settings = Settings(data_dir=tmp_path / "data", database_lock_timeout_s=0.5)
    ctx = Context.open(settings)  # (SQLite: its lock is what a backup or VACUUM holds)
    try:
        with admin_api(ctx) as client:
            blocker = sqlite3.connect(settings.data_dir / "callscope.db")
            blocker.execute("BEGIN EXCLUSIVE")
            try:  # (a token's first use is written down)
                res = client.get("/api/v1/conversations")
            finally:
                blocker.rollback()
                blocker.close()
            assert res.status_code == 503 and res.headers["retry-after"] == "10"
            assert "the database is busy" in res.json()["detail"]
            assert client.get("/api/v1/conversations").status_code == 200  # and it recovers
    finally:
        ctx.close()


@pytest.mark.model
def test_a_workers_warm_up_loads_every_model_a_job_can_need(settings):
    """A starting worker loads the speech model, the voice activity detector and the speaker
    encoder (a mono call needs it), so that its first call waits for none of them."""
    script = (
        "import sys\n"
        "from callscope.config import get_settings\n"
        "from callscope.processing import pipeline\n"
        "from callscope.speech import asr, diarization\n"
        "pipeline.warm_up(get_settings())\n"
        "print(bool(asr._cache), diarization._encoder is not None,\n"
        "      *[m for m in ('onnxruntime', 'librosa') if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["True", "True", "onnxruntime", "librosa"]
