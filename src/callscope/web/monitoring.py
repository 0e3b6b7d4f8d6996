"""What the server tells its operators: a request id and an access-log line for every request,
HTTP counts and latencies, and `GET /metrics` for Prometheus (behind CALLSCOPE_METRICS_TOKEN)."""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callscope import logs, telemetry
from callscope.context import Context

router = APIRouter(include_in_schema=False)
access_log = logging.getLogger("callscope.access")
REQUEST_ID_HEADER = "x-request-id"
# a caller's own request id is kept if it looks like one; anything else is replaced
FAIR_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
bearer = HTTPBearer(auto_error=False)
# the methods counted by name; any other (a made-up one) is counted as "other", so that no
# request can add a series
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class RequestTelemetry:
    """Gives each request an id (the caller's X-Request-ID if it is fair, else a new one),
    binds it to every log line written while answering, returns it in X-Request-ID, counts
    the request by route template and status, and writes one access-log line. The line names
    the route template, never the path or the query (they may hold names and search words)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = given if FAIR_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        with logs.bound(request_id=request_id) as fields:
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                method = scope["method"] if scope["method"] in METHODS else "other"
                route = route_of(scope)
                telemetry.HTTP_REQUESTS.labels(method, route, str(status)).inc()
                telemetry.HTTP_SECONDS.labels(method, route).observe(elapsed)
                access_log.info(
                    "%s %s %s",
                    method,
                    route,
                    status,
                    extra={
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 1),
                        **fields,
                    },
                )


def route_of(scope: Scope) -> str:
    """The template of the route that answered (`/conversations/{conversation_id}`), the
    mount of a static file, or "unmatched" (so that made-up paths make no new series)."""
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return str(route.path)
    root = scope.get("app_root_path") or scope.get("root_path") or ""
    if root and root != scope.get("path"):
        return f"{root}/…"
    return "unmatched"


def _metrics_reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Context:
    ctx: Context = request.app.state.ctx
    token = ctx.settings.metrics_token
    if not token:  # (the metrics may be served on a port of their own instead)
        raise HTTPException(404, "Not Found")
    if credentials is None or not hmac.compare_digest(
        credentials.credentials.encode(), token.encode()
    ):
        raise HTTPException(401, "the metrics token is required", {"WWW-Authenticate": "Bearer"})
    return ctx


@router.get("/metrics")
def metrics(ctx: Annotated[Context, Depends(_metrics_reader)]) -> Response:
    """The Prometheus metrics of every callscope process (see telemetry)."""
    return Response(telemetry.exposition(ctx.db), media_type=telemetry.CONTENT_TYPE)
