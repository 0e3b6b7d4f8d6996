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

from typing import TYPE_CHECKING, Protocol

from callscope.config import Settings

if TYPE_CHECKING:
    from celery import Celery

TASK = "callscope.process_job"
QUEUE = "callscope"


class JobQueue(Protocol):
    def announce(self, job_id: int) -> None:
        """Tell the workers that a job is waiting."""

    def check(self) -> None:
        """Raise if jobs cannot be announced now (the broker does not answer)."""


class DatabaseQueue:
    """Workers poll the database: nothing to announce."""

    def announce(self, job_id: int) -> None:
        pass

    def check(self) -> None:
        pass


class CeleryQueue:
    """Jobs are announced as Celery tasks on the broker."""

    def __init__(self, settings: Settings) -> None:
        self.app = celery_app(settings)

    def announce(self, job_id: int) -> None:
        self.app.send_task(TASK, args=[job_id], queue=QUEUE)

    def check(self) -> None:
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)

    def workers(self, timeout_s: float = 2.0) -> list[str]:
        """The names of the Celery workers that answer a ping within TIMEOUT_S."""
        return sorted(name for reply in self.app.control.ping(timeout=timeout_s) for name in reply)


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
