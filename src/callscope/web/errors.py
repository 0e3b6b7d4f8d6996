"""HTTP status codes for callscope's errors, assigned here and nowhere else."""

from __future__ import annotations

import errno

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from callscope import errors
from callscope.db import is_busy, is_full
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


async def error_response(_request: Request, exc: Exception) -> JSONResponse:
    """A callscope error as JSON: `{"detail": message}` with the status of its kind."""
    assert isinstance(exc, errors.CallscopeError)
    return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))


BUSY = "the database is busy with other work (a backup or a long task); try again in a moment"
FULL = "the server's disk is full: nothing was stored; tell the administrator"


async def database_response(_request: Request, exc: Exception) -> JSONResponse:
    """A locked or full database as 503 or 507 with a message; anything else stays a 500."""
    assert isinstance(exc, OperationalError)
    if is_busy(exc):
        return JSONResponse({"detail": BUSY}, status_code=503, headers={"Retry-After": "10"})
    if is_full(exc):
        return JSONResponse({"detail": FULL}, status_code=507)
    raise exc


async def disk_response(_request: Request, exc: Exception) -> JSONResponse:
    """A full disk as 507 with a message; other system errors stay 500s."""
    assert isinstance(exc, OSError)
    if exc.errno == errno.ENOSPC:
        return JSONResponse({"detail": FULL}, status_code=507)
    raise exc
