"""Distributed processing: Celery workers over a real Redis, one killed mid-job; every call ends
processed exactly once, nothing lost or duplicated (on PostgreSQL in the PostgreSQL run)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from callscope.context import Context
from callscope.db.models import Conversation, Job, Segment
from callscope.processing.ingest import Ingestor
from tests.support import FORMATS, free_port, make_meta, make_settings, settings_env

pytestmark = [pytest.mark.services, pytest.mark.model]

SHORT = FORMATS / "whatstheweatherlike.wav"
CALLS = 20


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"nothing listens on port {port}")


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private Redis server (Debian's redis-server), without persistence."""
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    wait_for_port(port, server)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(10)


def pid_of(worker: str | None) -> int | None:
    """The process id in a job's worker name (celery@host:PID:thread)."""
    match = re.search(r":(\d+):", worker or "")
    return int(match.group(1)) if match else None


def test_killed_celery_worker_loses_nothing(tmp_path, model_dir, redis_url):
    settings = make_settings(
        tmp_path / "data", model_dir=model_dir, broker_url=redis_url, job_stale_after_s=3
    )
    ctx = Context.open(settings)
    env = {
        **settings_env(settings),
        "CALLSCOPE_BROKER_URL": redis_url,
        "CALLSCOPE_JOB_STALE_AFTER_S": "3",
        "CALLSCOPE_ASR_THREADS": "1",
    }
    logs = [open(tmp_path / f"worker{i}.log", "wb") for i in range(2)]  # noqa: SIM115
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "callscope", "worker"], env=env, stdout=log, stderr=log
        )
        for log in logs
    ]
    try:
        conversations = [
            Ingestor(ctx).ingest_file(SHORT, make_meta(mono=True)).id for _ in range(CALLS)
        ]
        victim, victim_job = None, None
        deadline = time.monotonic() + 180
        while victim is None and time.monotonic() < deadline:
            with ctx.db.session() as session:
                for job in session.scalars(select(Job).where(Job.status == "processing")):
                    if job.stage in ("loading model", "transcribing") and pid_of(job.worker):
                        victim, victim_job = pid_of(job.worker), job.id
                        break
            time.sleep(0.02)
        assert victim in [w.pid for w in workers], "no worker was caught mid-job"
        os.kill(victim, signal.SIGKILL)

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with ctx.db.session() as session:
                done = session.scalar(
                    select(func.count()).where(Job.status.in_(("processed", "failed")))
                )
            if done == CALLS:
                break
            time.sleep(0.5)
        # the surviving worker answers `callscope doctor`'s ping
        doctor = subprocess.run(
            [sys.executable, "-m", "callscope", "doctor"], env=env, capture_output=True, text=True
        )
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert re.search(r"^✓ workers +1 answering: celery@", doctor.stdout, re.M), doctor.stdout
        assert re.search(r"^✓ broker +ok$", doctor.stdout, re.M)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
        for log in logs:
            log.close()

    with ctx.db.session() as session:
        jobs = session.scalars(select(Job).order_by(Job.id)).all()
        assert [j.status for j in jobs] == ["processed"] * CALLS, (
            tmp_path / "worker0.log"
        ).read_text()[-3000:]
        assert sorted(j.conversation_id for j in jobs) == sorted(conversations)  # one job each
        retaken = session.get(Job, victim_job)
        assert retaken.attempts == 2 and pid_of(retaken.worker) != victim
        assert sum(j.attempts for j in jobs) == CALLS + 1
        for conv_id in conversations:
            conv = session.get(Conversation, conv_id)
            assert conv.processing_status == "processed"
            positions = session.scalars(
                select(Segment.position).where(Segment.conversation_id == conv_id)
            ).all()
            assert positions and sorted(positions) == list(range(len(positions)))
    ctx.close()
