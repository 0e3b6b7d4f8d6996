"""Is this process alive, and is it ready to serve: `/healthz` and `/readyz`."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from callscope.context import Context
from callscope.ops import checks

router = APIRouter(include_in_schema=False)
DEGRADES = ("sentence_meaning",)  # parts whose failure leaves the process ready
log = logging.getLogger(__name__)


@router.get("/healthz")
def health() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz")
def ready(request: Request) -> JSONResponse:
    """Every part this process needs works: 200 and "ok" per part, else 503 naming what fails."""
    ctx: Context = request.app.state.ctx
    with_worker = request.app.state.with_worker
    parts: dict[str, Callable[[], str]] = {
        "database": lambda: _ok(checks.database(ctx)),
        "media_store": lambda: _ok(checks.media_store(ctx)),
        "broker": lambda: checks.broker(ctx),
        "speech_model": lambda: checks.speech_model_loaded(ctx, with_worker),
        "sentence_meaning": lambda: _ok(checks.sentence_meaning(ctx)),
    }
    found: dict[str, str] = {}
    for name, check in parts.items():
        try:
            found[name] = check()
        except checks.Failed as exc:
            # (without sentence meaning, calls are still processed: sentiment by the rules)
            state = "degraded" if name in DEGRADES else "failing"
            found[name] = f"{state}: {exc}" + (f": {exc.fix}" if exc.fix else "")
        except Exception as exc:  # whatever fails, the answer names the part
            # (the details, which may name paths and hosts, go to the log, not to the caller)
            log.warning("readiness check %s failed", name, exc_info=exc)
            found[name] = f"failing: {type(exc).__name__} (details in the server log)"
    ok = not any(value.startswith("failing") for value in found.values())
    return JSONResponse(
        {"status": "ready" if ok else "not ready", "checks": found},
        status_code=200 if ok else 503,
    )


def _ok(_found: str) -> str:
    """A part found working is "ok" to anyone asking (the details are for `callscope doctor`)."""
    return "ok"
