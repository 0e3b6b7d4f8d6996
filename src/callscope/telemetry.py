"""What callscope counts for monitoring, in the Prometheus text format (docs/deployment.md).

Counters and histograms live in the process that counts them. With several processes (a web
server, `callscope worker`s, Celery workers) set PROMETHEUS_MULTIPROC_DIR to one empty folder
for all of them before they start: each writes its values there and `/metrics` adds them up.
The jobs waiting, running and failed are read from the database when scraped, so they are right
whichever process runs the jobs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from callscope.db import Database
from callscope.db.models import Job, utcnow
from callscope.vocabulary import Status

CONTENT_TYPE = CONTENT_TYPE_LATEST
# processing takes seconds to hours; a request milliseconds to a minute (an upload)
LONG = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
SHORT = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

JOB_SECONDS = Histogram(
    "callscope_job_processing_seconds",
    "Time a worker spent on a job, by kind and outcome.",
    ["kind", "outcome"],
    buckets=LONG,
)
AUDIO_SECONDS = Counter(
    "callscope_job_audio_seconds",
    "Seconds of audio in the jobs processed (divide processing seconds by it: real-time factor).",
    ["kind"],
)
QUEUE_WAIT = Histogram(
    "callscope_job_queue_wait_seconds",
    "Time from a job being queued to a worker taking it.",
    ["kind"],
    buckets=LONG,
)
INGEST_REFUSALS = Counter(
    "callscope_ingest_refusals", "Recordings and transcripts refused, by reason.", ["reason"]
)
HTTP_REQUESTS = Counter(
    "callscope_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "callscope_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=SHORT,
)
WEBHOOK_DELIVERIES = Counter(
    "callscope_webhook_deliveries",
    "Webhook delivery attempts, by outcome (delivered, retrying, failed).",
    ["outcome"],
)
SEARCH_SECONDS = Histogram(
    "callscope_search_duration_seconds", "Time to find a page of conversations.", buckets=SHORT
)
STORAGE_ERRORS = Counter(
    "callscope_storage_errors",
    "Errors of the database or the media store met while answering or processing.",
    ["part"],
)


def refused(why: BaseException | str) -> None:
    """Count an ingest refusal, by its reason: the error's class name in snake case
    (`upload_too_large`), or WHY as given."""
    label = why if isinstance(why, str) else re.sub(r"(?<!^)(?=[A-Z])", "_", type(why).__name__)
    INGEST_REFUSALS.labels(label.lower()).inc()


class JobsCollector(Collector):
    """The jobs in the database by kind and state, and the age of the oldest waiting one."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "callscope_jobs", "Jobs by kind and state.", labels=["kind", "state"]
        )
        oldest = GaugeMetricFamily(
            "callscope_job_oldest_queued_seconds",
            "How long the oldest queued job has waited (0 when none waits).",
        )
        with self.db.session() as session:
            counts = {
                (kind, status): n
                for kind, status, n in session.execute(
                    select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status)
                )
            }
            first = session.scalar(
                select(func.min(Job.created_at)).where(Job.status == Status.QUEUED)
            )
        for kind in sorted({kind for kind, _s in counts} | {"process"}):
            for state in (Status.QUEUED, Status.PROCESSING, Status.PROCESSED, Status.FAILED):
                jobs.add_metric([kind, state.value], counts.get((kind, state.value), 0))
        waited = (utcnow() - first) if first else timedelta(0)
        oldest.add_metric([], max(waited.total_seconds(), 0.0))
        yield jobs
        yield oldest


def multiprocess_dir() -> str | None:
    """The folder processes share their values in, if set."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def registry(db: Database) -> CollectorRegistry:
    """Everything to expose: this process's values (or all processes' in multiprocess mode)
    and the jobs read from DB."""
    found = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(found)
    else:
        found.register(_Process())
    found.register(JobsCollector(db))
    return found


class _Process(Collector):
    """This process's own values (the default registry), as one collector of another registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def exposition(db: Database) -> bytes:
    """The metrics as Prometheus scrapes them."""
    return generate_latest(registry(db))


def serve_port(db: Database, port: int, host: str) -> None:
    """Expose the metrics on a port of their own, in a background thread."""
    start_http_server(port, addr=host, registry=registry(db))
