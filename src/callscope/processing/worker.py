"""The long-running workers: the polling worker (embedded in `callscope serve`, or
`callscope worker` without a broker) and the Celery worker with its sweeper. Each also applies
retention once an hour and sends the webhook deliveries that are due; see `jobqueue` for how a
worker hears of a job."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import select

from callscope.context import Context
from callscope.db.models import Job
from callscope.jobqueue import TASK
from callscope.processing import jobs, pipeline, retention, webhooks
from callscope.processing.presence import Presence
from callscope.review import categories
from callscope.store import clean_spool

log = logging.getLogger(__name__)
RETENTION_EVERY_S = 3600.0
SEND_EVERY_S = 1.0  # how often due webhook deliveries are looked for


class RetentionSchedule:
    """Applies the retention setting when a worker starts and then once an hour."""

    def __init__(self) -> None:
        self.due = 0.0

    def tick(self, ctx: Context) -> None:
        if time.monotonic() < self.due:
            return
        self.due = time.monotonic() + RETENTION_EVERY_S
        clean_spool(ctx.settings.tmp_dir)  # (what processes that died left there)
        try:
            removed = retention.purge_expired(ctx)
        except Exception:  # retention is retried at the next hour
            log.exception("retention run failed")
            return
        if removed.conversations or removed.recordings:
            log.info(
                "retention removed %d conversations, %d recordings, %d files",
                len(removed.conversations),
                len(removed.recordings),
                removed.files,
            )


def send_webhooks(ctx: Context, stop: threading.Event) -> None:
    """Until STOP, send the webhook deliveries that come due: in a thread of its own, so that a
    slow receiver never holds up processing."""
    while not stop.is_set():
        try:
            webhooks.deliver_due(ctx)
        except Exception:  # the sender outlives a failed round (database busy)
            log.exception("webhook deliveries failed")
        stop.wait(SEND_EVERY_S)


def start_sender(ctx: Context, stop: threading.Event) -> threading.Thread:
    sender = threading.Thread(
        target=send_webhooks, args=(ctx, stop), name="callscope-webhooks", daemon=True
    )
    sender.start()
    return sender


class Worker:
    """Runs queued jobs until stopped (in a background thread with start()), and sends webhook
    events in another."""

    def __init__(
        self, ctx: Context, poll_s: float = 0.5, name: str | None = None, warm_up: bool = False
    ) -> None:
        self.ctx = ctx
        self.poll_s = poll_s
        self.warm_up = warm_up
        self.name = name or jobs.worker_name()
        self.retention = RetentionSchedule()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_forever(self) -> None:
        """Process jobs (and send events) until stop() is called."""
        sender = start_sender(self.ctx, self._stop)
        presence = Presence(self.ctx, self.name).start()
        try:
            if self.warm_up:
                warm_up(self.ctx)
            presence.mark_ready()
            self._process()
        finally:
            self._stop.set()
            presence.stop()
            sender.join(timeout=webhooks.TIMEOUT_S + 1)

    def _process(self) -> None:
        while not self._stop.is_set():
            self.retention.tick(self.ctx)
            try:
                ran = jobs.run_pending(self.ctx, self.name, self._stop.is_set)
                # between jobs: a batch of stored calls for a category added or changed
                ran += categories.apply_next(self.ctx.db)
            except Exception:  # the worker outlives one bad poll (e.g. DB busy)
                log.exception("worker poll failed")
                ran = 0
            if not ran:
                self._stop.wait(self.poll_s)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.run_forever, name="callscope-worker", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)


def warm_up(ctx: Context) -> None:
    """Load the models before the first job; a failure is logged (the job will report it)."""
    started = time.monotonic()
    try:
        pipeline.warm_up(ctx.settings)
    except Exception:
        log.exception("loading the models failed")
    else:
        log.info("models loaded in %.1f s", time.monotonic() - started)


def run_celery_worker(ctx: Context) -> None:
    """Be a Celery worker: run announced jobs one at a time in this process, and announce
    again jobs whose worker stopped (no heartbeat for `job_stale_after_s`)."""
    app = ctx.queue.app  # type: ignore[attr-defined]
    name = jobs.worker_name("celery")

    @app.task(name=TASK)
    def process_job(job_id: int) -> str | None:
        return jobs.run_job(ctx, job_id, name)

    stop = threading.Event()
    start_sender(ctx, stop)
    sweeper = threading.Thread(
        target=sweep, args=(ctx, stop), name="callscope-sweeper", daemon=True
    )
    sweeper.start()
    presence = Presence(ctx, name).start()
    warm_up(ctx)
    presence.mark_ready()
    try:
        # the solo pool runs the job in this process: killing the worker stops the job with it
        app.worker_main(["worker", "--pool=solo", "--loglevel=INFO", f"--hostname={name}"])
    finally:
        stop.set()
        presence.stop()


def sweep(ctx: Context, stop: threading.Event) -> None:
    """At start, announce every waiting job (the broker may have lost them); then, every
    `job_stale_after_s`, announce jobs abandoned by a stopped worker, and apply categories
    added or changed to the stored calls. Retention is applied here too, once an hour."""
    schedule = RetentionSchedule()
    first = True
    while not stop.is_set():
        schedule.tick(ctx)
        try:
            jobs.fail_exhausted(ctx)
            with ctx.db.session() as session:
                waiting = session.scalars(
                    select(Job.id).where(jobs.claimable(ctx, stale_only=not first))
                ).all()
            for job_id in waiting:
                ctx.queue.announce(job_id)
            first = False
            while not stop.is_set() and categories.apply_next(ctx.db):
                pass  # (categories added or changed, applied to the stored calls)
        except Exception:  # the sweeper outlives a failed round (broker down)
            log.exception("announcing abandoned jobs failed")
        stop.wait(ctx.settings.job_stale_after_s)
