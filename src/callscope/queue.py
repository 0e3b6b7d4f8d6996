"""How workers learn of new jobs.

Job state always lives in the database: a job is taken by a conditional UPDATE (one worker wins)
and kept alive by heartbeats, whoever runs it. What differs is how a worker hears of a job:

- without a broker, workers poll the database (the embedded worker of `callscope serve`, or
  `callscope worker` processes beside it);
- with `CALLSCOPE_BROKER_URL=redis://…`, each job is announced as a Celery task and
  `callscope worker` is a Celery worker. Tasks are acknowledged late, so a worker killed mid-job
  leaves its task to be delivered again; the database claim makes a second delivery of a job
  that is done, or in another worker's hands, a no-op.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select

if TYPE_CHECKING:
    from celery import Celery

    from callscope.config import Settings
    from callscope.context import Context

log = logging.getLogger(__name__)
TASK = "callscope.process_job"
QUEUE = "callscope"


class JobQueue(Protocol):
    def announce(self, job_id: int) -> None:
        """Tell the workers that a job is waiting."""


class DatabaseQueue:
    """Workers poll the database: nothing to announce."""

    def announce(self, job_id: int) -> None:
        pass


class CeleryQueue:
    """Jobs are announced as Celery tasks on the broker."""

    def __init__(self, settings: Settings) -> None:
        self.app = celery_app(settings)

    def announce(self, job_id: int) -> None:
        self.app.send_task(TASK, args=[job_id], queue=QUEUE)


def open_queue(settings: Settings) -> JobQueue:
    return CeleryQueue(settings) if settings.broker_url else DatabaseQueue()


def celery_app(settings: Settings) -> Celery:
    """The Celery application over the configured broker (Redis)."""
    from celery import Celery

    app = Celery("callscope", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,  # acknowledged when done: a killed worker's task is redelivered
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a worker holds one job at a time
        task_default_queue=QUEUE,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout_s},
        worker_hijack_root_logger=False,
        task_ignore_result=True,
    )
    return app


def run_celery_worker(ctx: Context) -> None:
    """Be a Celery worker: run announced jobs one at a time in this process, and announce
    again jobs whose worker stopped (no heartbeat for `job_stale_after_s`)."""
    from callscope import jobs

    app = ctx.queue.app  # type: ignore[attr-defined]
    name = jobs.worker_name("celery")

    @app.task(name=TASK)
    def process_job(job_id: int) -> str | None:
        return jobs.run_job(ctx, job_id, name)

    stop = threading.Event()
    sweeper = threading.Thread(
        target=_sweep, args=(ctx, stop), name="callscope-sweeper", daemon=True
    )
    sweeper.start()
    try:
        # the solo pool runs the job in this process: killing the worker stops the job with it
        app.worker_main(["worker", "--pool=solo", "--loglevel=INFO", f"--hostname={name}"])
    finally:
        stop.set()


def _sweep(ctx: Context, stop: threading.Event) -> None:
    """At start, announce every waiting job (the broker may have lost them); then, every
    `job_stale_after_s`, announce jobs abandoned by a stopped worker. Retention is applied
    here too, once an hour."""
    from callscope import jobs
    from callscope.db.models import Job

    schedule = jobs.RetentionSchedule()
    first = True
    while not stop.is_set():
        schedule.tick(ctx)
        jobs.deliver_webhooks(ctx)  # retries that came due
        try:
            jobs.fail_exhausted(ctx)
            with ctx.db.session() as session:
                waiting = session.scalars(
                    select(Job.id).where(jobs.claimable(ctx, stale_only=not first))
                ).all()
            for job_id in waiting:
                ctx.queue.announce(job_id)
            first = False
        except Exception:  # noqa: BLE001 - the sweeper outlives a failed round (broker down)
            log.exception("announcing abandoned jobs failed")
        stop.wait(ctx.settings.job_stale_after_s)
