"""Is this process alive, and is it ready to serve: `/healthz` and `/readyz`."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from callscope.context import Context
from callscope.db import schema_revisions
from callscope.speech import asr

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)
PROBE_KEY = "health/readyz-probe"


@router.get("/healthz")
def health() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz")
def ready(request: Request) -> JSONResponse:
    """Every part this process needs works: 200 and "ok" per part, else 503 naming what fails."""
    ctx: Context = request.app.state.ctx
    checks: dict[str, Callable[[], str]] = {
        "database": lambda: _database(ctx),
        "media_store": lambda: _media_store(ctx),
        "broker": lambda: _broker(ctx),
        "speech_model": lambda: _speech_model(ctx, request.app.state.with_worker),
    }
    found: dict[str, str] = {}
    for name, check in checks.items():
        try:
            found[name] = check()
        except NotReady as exc:
            found[name] = f"failing: {exc}"
        except Exception as exc:  # whatever fails, the answer names the part
            # (the details, which may name paths and hosts, go to the log, not to the caller)
            log.warning("readiness check %s failed", name, exc_info=exc)
            found[name] = f"failing: {type(exc).__name__} (details in the server log)"
    ok = not any(value.startswith("failing") for value in found.values())
    return JSONResponse(
        {"status": "ready" if ok else "not ready", "checks": found},
        status_code=200 if ok else 503,
    )


class NotReady(Exception):
    """A part is not ready; the message says why and may be shown to anyone."""


def _database(ctx: Context) -> str:
    with ctx.db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    current, head = schema_revisions(ctx.db.engine)
    if current != head:
        raise NotReady(
            f"the schema is at revision {current}, this version needs {head}: run `callscope init`"
        )
    return "ok"


def _media_store(ctx: Context) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe"
        probe.write_bytes(b"ready")
        ctx.store.put_file(PROBE_KEY, probe)
    if not ctx.store.exists(PROBE_KEY):
        raise NotReady("a file written to the media store is not there")
    ctx.store.delete(PROBE_KEY)
    return "ok"


def _broker(ctx: Context) -> str:
    if not ctx.settings.broker_url:
        return "not used (workers poll the database)"
    ctx.queue.check()
    return "ok"


def _speech_model(ctx: Context, with_worker: bool) -> str:
    if not with_worker:
        return "not used here (no worker in this process)"
    name = ctx.settings.asr_model
    if not asr.model_ready(name, ctx.settings.model_cache_dir):
        raise NotReady(f"speech model {name!r} is not assembled yet (the worker is loading it)")
    return "ok"
