"""Processing jobs in the database, and the worker that runs them.

queued → processing (progress %) → processed | failed (with the reason). A job whose worker
stops sending heartbeats is taken up again, up to its attempt cap.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from callscope import errors, logs, telemetry
from callscope.context import Context
from callscope.db import is_busy, rows_changed
from callscope.db.models import Conversation, Job, Recording, utcnow
from callscope.processing import pipeline, webhooks
from callscope.review import refresh
from callscope.vocabulary import FINISHED, Status

log = logging.getLogger(__name__)


Progress = Callable[[float, str | None], None]


class JobError(errors.Conflict):
    """A job operation that cannot be done; the message says why."""


class UnknownJob(JobError, errors.NotFound):
    """No job with that id."""


def worker_name(kind: str = "worker") -> str:
    """A name that tells which process holds a job."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _stale_before(ctx: Context) -> datetime:
    """Heartbeats older than this mark a job as abandoned."""
    return utcnow() - timedelta(seconds=ctx.settings.job_stale_after_s)


def claimable(ctx: Context, stale_only: bool = False) -> ColumnElement[bool]:
    """The condition on Job of jobs a worker may take now: queued, or processing without a
    recent heartbeat (its worker stopped), with attempts left. STALE_ONLY: only the latter."""
    abandoned = and_(Job.status == Status.PROCESSING, Job.heartbeat_at < _stale_before(ctx))
    return and_(
        Job.attempts < Job.max_attempts,
        abandoned if stale_only else or_(Job.status == Status.QUEUED, abandoned),
    )


def _claim(ctx: Context, job_id: int, worker: str) -> bool:
    """Atomically take JOB_ID for WORKER if it is queued or abandoned."""
    now = utcnow()
    with ctx.db.session() as session:
        taken = rows_changed(
            session.execute(
                update(Job)
                .where(Job.id == job_id, claimable(ctx))
                .values(
                    status=Status.PROCESSING,
                    worker=worker,
                    attempts=Job.attempts + 1,
                    heartbeat_at=now,
                    started_at=now,
                    error=None,
                    progress=0.0,
                    stage="starting",
                )
                .execution_options(synchronize_session=False)
            )
        )
        if taken:
            conv_id = session.scalar(select(Job.conversation_id).where(Job.id == job_id))
            session.execute(
                update(Conversation)
                .where(Conversation.id == conv_id)
                .values(processing_status=Status.PROCESSING)
            )
            if conv_id is not None:  # (a processed call processed again leaves the count)
                refresh.counted(session, [conv_id])
    return bool(taken)


def fail_exhausted(ctx: Context) -> int:
    """Mark abandoned jobs that used up their attempts as failed; returns how many."""
    stale = _stale_before(ctx)
    with ctx.db.session() as session:
        jobs = session.scalars(
            select(Job).where(
                Job.status == Status.PROCESSING,
                Job.heartbeat_at < stale,
                Job.attempts >= Job.max_attempts,
            )
        ).all()
        for job in jobs:
            _finish(
                session,
                job,
                Status.FAILED,
                f"abandoned {job.attempts} times by workers that stopped (crash or restart)",
            )
    return len(jobs)


def _finish(session: Session, job: Job, status: str, error: str | None = None) -> None:
    job.status = status
    job.error = error
    job.finished_at = utcnow()
    if status == Status.PROCESSED:
        job.progress = 100.0
        job.stage = "done"
    conv = session.get(Conversation, job.conversation_id)
    if conv is not None:
        conv.processing_status = status
        refresh.counted(session, [conv.id])
        if status in FINISHED:
            webhooks.enqueue(session, conv, status, error)


class JobLost(errors.Conflict):
    """A worker found that its job was taken over (it had stopped past the stale time)."""


def holding(job_id: int, worker: str) -> ColumnElement[bool]:
    """The condition on Job that WORKER still holds JOB_ID (another may have taken it over)."""
    return and_(Job.id == job_id, Job.worker == worker, Job.status == Status.PROCESSING)


def run_job(
    ctx: Context, job_id: int, worker: str = "worker", progress: Progress | None = None
) -> str | None:
    """Claim and run one job; returns its final status, or None if another worker has it.

    Every write of the job is conditional on still holding it: a worker that was paused past
    the stale time, while another took its job over, writes no results and sends no events.
    A database that stays locked (a backup, a long purge) puts the job back in the queue."""
    if not _claim(ctx, job_id, worker):
        return None
    held = holding(job_id, worker)
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(ctx.settings.job_stale_after_s / 6):
            with ctx.db.session() as session:
                session.execute(update(Job).where(held).values(heartbeat_at=utcnow()))

    def report(percent: float, stage: str | None = None) -> None:
        with ctx.db.session() as session:
            session.execute(
                update(Job)
                .where(held)
                .values(progress=round(percent, 1), stage=stage, heartbeat_at=utcnow())
            )
        if progress:
            progress(percent, stage)

    def keep(session: Session) -> None:
        # (a write first: on PostgreSQL the row stays locked, on SQLite the database, until
        # the results are committed with it)
        if not rows_changed(session.execute(update(Job).where(held).values(heartbeat_at=utcnow()))):
            raise JobLost(f"job {job_id} was taken over by another worker")

    beat = threading.Thread(target=heartbeat, name=f"heartbeat-{job_id}", daemon=True)
    beat.start()
    with ctx.db.session() as session:
        claimed = session.get_one(Job, job_id)
        conv_id, kind = claimed.conversation_id, claimed.kind
        if claimed.attempts == 1 and claimed.started_at:
            waited = (claimed.started_at - claimed.created_at).total_seconds()
            telemetry.QUEUE_WAIT.labels(kind).observe(max(waited, 0.0))
    with logs.bound(job_id=job_id, conversation_id=conv_id):
        error: str | None = None
        started = time.monotonic()
        try:
            pipeline.process(ctx, conv_id, report, keep)
        except JobLost:
            log.warning("job %s was taken over by another worker; its results are not kept", job_id)
            return None
        except Exception as exc:  # any failure is recorded on the job with its reason
            if isinstance(exc, OperationalError):
                telemetry.STORAGE_ERRORS.labels("database").inc()
                if is_busy(exc):  # … but a lock held too long puts it back in the queue
                    log.warning("job %s waits: the database is locked (%s)", job_id, exc)
                    try:
                        _release(ctx, job_id, held)
                    except OperationalError:  # still locked: taken up again once stale
                        log.warning("job %s stays claimed until it is found stale", job_id)
                    return Status.QUEUED
            log.exception("job %s failed", job_id)
            error = str(exc) or type(exc).__name__
        finally:
            stop.set()
            beat.join()
        status = Status.PROCESSED if error is None else Status.FAILED
        with ctx.db.session() as session:
            job = session.scalar(select(Job).where(held))
            if job is None:
                return None  # (taken over meanwhile: the other worker finishes it)
            _finish(session, job, status, error)
            audio_s = session.scalar(
                select(Recording.duration_s).where(Recording.conversation_id == conv_id)
            )
        took = time.monotonic() - started
        telemetry.JOB_SECONDS.labels(kind, status).observe(took)
        log.info("job %s %s in %.1f s (%.1f s of audio)", job_id, status, took, audio_s or 0.0)
        if status == Status.PROCESSED and audio_s:
            telemetry.AUDIO_SECONDS.labels(kind).inc(audio_s)
    if progress and status == Status.PROCESSED:
        progress(100.0, "done")
    return status


def _release(ctx: Context, job_id: int, held: ColumnElement[bool]) -> None:
    """Put a held job back in the queue, its attempt not counted."""
    with ctx.db.session() as session:
        if rows_changed(
            session.execute(
                update(Job)
                .where(held)
                .values(status=Status.QUEUED, attempts=Job.attempts - 1, stage="waiting")
            )
        ):
            conv_id = session.scalar(select(Job.conversation_id).where(Job.id == job_id))
            session.execute(
                update(Conversation)
                .where(Conversation.id == conv_id)
                .values(processing_status=Status.QUEUED)
            )
    ctx.queue.announce(job_id)


def requeue_interrupted(session: Session) -> int:
    """Queue again every job marked as running, its attempt not counted: for a restored
    backup, where no worker holds them any more. Returns how many."""
    interrupted = select(Job.conversation_id).where(Job.status == Status.PROCESSING)
    session.execute(
        update(Conversation)
        .where(Conversation.id.in_(interrupted))
        .values(processing_status=Status.QUEUED)
    )
    return rows_changed(
        session.execute(
            update(Job)
            .where(Job.status == Status.PROCESSING)
            .values(status=Status.QUEUED, attempts=Job.attempts - 1, stage="waiting")
        )
    )


def next_job(ctx: Context) -> int | None:
    """The oldest job a worker may take now."""
    with ctx.db.session() as session:
        return session.scalar(select(Job.id).where(claimable(ctx)).order_by(Job.id).limit(1))


def run_pending(
    ctx: Context, worker: str = "worker", should_stop: Callable[[], bool] = lambda: False
) -> int:
    """Run jobs until none is waiting (or SHOULD_STOP says so); returns how many it ran."""
    ran = 0
    fail_exhausted(ctx)
    while not should_stop() and (job_id := next_job(ctx)) is not None:
        if run_job(ctx, job_id, worker) is not None:
            ran += 1
    return ran


def retry(ctx: Context, job_id: int) -> None:
    """Queue a failed job again, with a fresh set of attempts."""
    with ctx.db.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise UnknownJob(f"no job {job_id}")
        if job.status != Status.FAILED:
            raise JobError(f"job {job_id} is {job.status}; only a failed job can be retried")
        job.status, job.attempts, job.progress, job.stage = Status.QUEUED, 0, 0.0, None
        job.error = None
        job.finished_at = None
        session.get_one(Conversation, job.conversation_id).processing_status = Status.QUEUED
    ctx.queue.announce(job_id)
