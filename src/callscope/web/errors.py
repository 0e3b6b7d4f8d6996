"""HTTP status codes for callscope's errors, assigned here and nowhere else."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from callscope import errors
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
