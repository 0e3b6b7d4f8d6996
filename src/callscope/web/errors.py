"""HTTP status codes for callscope's errors, assigned here and nowhere else, and how an error
is answered: JSON for the API, a page in the user's language for a browser."""

from __future__ import annotations

import errno
import math
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import (
    http_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from callscope import errors, telemetry
from callscope.db import is_busy, is_full
from callscope.i18n import N_
from callscope.web import security, ui
from callscope.web.upload import MalformedBody

# the first kind an error is decides its status: the specific kinds come before the general
STATUS: tuple[tuple[type[errors.CallscopeError], int], ...] = (
    (MalformedBody, 400),
    (errors.TooLarge, 413),
    (errors.NotFound, 404),
    (errors.NotAllowed, 403),
    (errors.Conflict, 409),
    (errors.Unavailable, 503),
    (errors.Refused, 422),
)


def status_of(exc: errors.CallscopeError) -> int:
    """The HTTP status that answers EXC."""
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 500)


TITLES = {
    400: N_("Bad request"),
    401: N_("Sign in first"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Not possible here"),
    409: N_("Not possible now"),
    413: N_("Too large"),
    422: N_("Cannot be used"),
    429: N_("Too many attempts"),
    503: N_("Busy"),
    507: N_("The server's disk is full"),
}
EXPLANATIONS = {
    403: N_("Your role may not do this. Ask an administrator if you need to."),
    404: N_("What you asked for does not exist, or you may not see it."),
    503: N_("Try again in a moment."),
}


def for_api(request: Request) -> bool:
    """Whether REQUEST is answered in JSON (the API, the health check, the metrics) rather
    than a page: an API address opened in a browser (a download link, say), which asks for
    HTML, gets a page."""
    path = request.url.path
    if path in ("/healthz", "/metrics"):
        return True
    return path.startswith("/api/") and "text/html" not in request.headers.get("accept", "")


def error_page(
    request: Request,
    status: int,
    detail: Any,
    headers: Mapping[str, str] | None = None,
    explanation: str | None = None,
) -> Response:
    """An HTML error page in the user's language (their choice, else the browser's), with
    the menu when they are signed in and a way back; DETAIL as `ui.in_language` says it."""
    context = {
        "status": status,
        "title": TITLES.get(status, N_("Something went wrong")),
        "explanation": explanation or EXPLANATIONS.get(status),
    }
    try:
        with request.app.state.ctx.db.session() as session:
            user = security.session_user(request, session)
            page = ui.render(request, "error.html", user, status, detail=detail, **context)
    except OperationalError:  # (the database is what failed: a page without the user's menu)
        page = ui.render(request, "error.html", None, status, detail=detail, **context)
    page.headers.update(headers or {})
    return page


def answer(
    request: Request,
    status: int,
    detail: str,
    headers: Mapping[str, str] | None = None,
    said: Any = None,
) -> Response:
    """`{"detail": message}` with STATUS for the API, an error page for a browser (saying
    SAID, a message `ui.kept`, where given)."""
    if for_api(request):
        return JSONResponse({"detail": detail}, status_code=status, headers=dict(headers or {}))
    return error_page(request, status, detail if said is None else said, headers)


async def error_response(request: Request, exc: Exception) -> Response:
    """A callscope error, with the status of its kind."""
    assert isinstance(exc, errors.CallscopeError)
    if request.method == "POST" and request.url.path in security.UPLOAD_PATHS:
        telemetry.refused(exc)
    return answer(request, status_of(exc), str(exc), said=ui.kept(exc))


async def http_response(request: Request, exc: Exception) -> Response:
    """An HTTP error raised by a route or the router (no such page, method not allowed)."""
    assert isinstance(exc, HTTPException)
    if for_api(request):
        return await http_exception_handler(request, exc)
    return error_page(request, exc.status_code, str(exc.detail), exc.headers)


async def validation_response(request: Request, exc: Exception) -> Response:
    """A request whose path, query or form does not fit: the API keeps FastAPI's list of
    problems; a page names the fields."""
    assert isinstance(exc, RequestValidationError)
    if for_api(request):  # (the input is echoed: NaN or Infinity written as text, not as JSON)
        problems = _finite(jsonable_encoder(exc.errors()))
        return JSONResponse({"detail": problems}, status_code=422)
    fields = sorted({str(e["loc"][-1]) for e in exc.errors() if e.get("loc")})
    return error_page(
        request,
        422,
        [FIELD_LABELS.get(field, field) for field in fields],
        explanation=N_("A value of this page cannot be used:"),
    )


# the fields of the pages' forms and addresses by the labels the pages give them
FIELD_LABELS = {
    "q": N_("Search transcripts"),
    "agent": N_("Agent"),
    "queue": N_("Queue"),
    "sentiment": N_("Sentiment"),
    "category": N_("Category"),
    "start": N_("From"),
    "end": N_("To"),
    "min_minutes": N_("Minutes, from"),
    "max_minutes": N_("Minutes, to"),
    "min_talk": N_("Agent talk share, from"),
    "max_talk": N_("Agent talk share, to"),
    "sort": N_("Sort"),
    "page": N_("Page"),
    "form": N_("Form"),
    "from": N_("From"),
    "to": N_("To"),
}


def _finite(value: Any) -> Any:
    """VALUE with every NaN or infinite number as its text ("nan", "inf")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


BUSY = "the database is busy with other work (a backup or a long task); try again in a moment"
FULL = "the server's disk is full: nothing was stored; tell the administrator"


async def database_response(request: Request, exc: Exception) -> Response:
    """A locked or full database as 503 or 507 with a message; anything else stays a 500."""
    assert isinstance(exc, OperationalError)
    telemetry.STORAGE_ERRORS.labels("database").inc()
    if is_busy(exc):
        return answer(request, 503, BUSY, {"Retry-After": "10"})
    if is_full(exc):
        return answer(request, 507, FULL)
    raise exc


async def disk_response(request: Request, exc: Exception) -> Response:
    """A full disk as 507 with a message; other system errors stay 500s."""
    assert isinstance(exc, OSError)
    telemetry.STORAGE_ERRORS.labels("disk").inc()
    if exc.errno == errno.ENOSPC:
        return answer(request, 507, FULL)
    raise exc
