"""Which workers are running. Each long-running worker (the one in `callscope serve`,
`callscope worker`, a Celery worker) writes its row in `workers` every few seconds from a thread
of its own, busy or not, and takes it away when it stops; a row not renewed for GONE_AFTER_S is
a worker that died. `callscope ingest --wait` asks here whether to hand its job to a worker
(whose models are loaded) instead of loading them itself."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import delete, select, update

from callscope.context import Context
from callscope.db import rows_changed
from callscope.db.models import WorkerSeen, utcnow

log = logging.getLogger(__name__)
SAY_EVERY_S = 5.0
GONE_AFTER_S = 3 * SAY_EVERY_S


class Presence:
    """A running worker's row, renewed from a thread until stop()."""

    def __init__(self, ctx: Context, name: str) -> None:
        self.ctx = ctx
        self.name = name
        self.ready = threading.Event()  # set once the worker's models are loaded
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Presence:
        self._thread = threading.Thread(target=self._run, name="callscope-presence", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.say()
            except Exception:  # (a busy database: said again at the next round)
                log.exception("could not say that worker %s runs", self.name)
            self._stop.wait(SAY_EVERY_S)

    def say(self) -> None:
        """Write this worker's row: seen now, ready or not."""
        now, ready = utcnow(), self.ready.is_set()
        with self.ctx.db.session() as session:
            seen = update(WorkerSeen).where(WorkerSeen.name == self.name)
            if not rows_changed(session.execute(seen.values(seen_at=now, ready=ready))):
                session.add(WorkerSeen(name=self.name, started_at=now, seen_at=now, ready=ready))

    def stop(self) -> None:
        """Stop saying so, and take the row away."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=SAY_EVERY_S)
        try:
            with self.ctx.db.session() as session:
                session.execute(delete(WorkerSeen).where(WorkerSeen.name == self.name))
        except Exception:  # (left behind, it is ignored once GONE_AFTER_S old)
            log.exception("could not take away worker %s's row", self.name)

    def mark_ready(self) -> None:
        self.ready.set()
        try:
            self.say()
        except Exception:
            log.exception("could not say that worker %s is ready", self.name)


def ready_workers(ctx: Context) -> list[str]:
    """The workers seen in the last GONE_AFTER_S with their models loaded."""
    since = utcnow() - timedelta(seconds=GONE_AFTER_S)
    with ctx.db.session() as session:
        return list(
            session.scalars(
                select(WorkerSeen.name)
                .where(WorkerSeen.seen_at >= since, WorkerSeen.ready.is_(True))
                .order_by(WorkerSeen.name)
            )
        )
