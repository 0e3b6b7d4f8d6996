"""The FastAPI application."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware

from callscope import __version__, errors
from callscope.context import Context
from callscope.processing.live import Hub
from callscope.processing.worker import Worker
from callscope.review import meaning
from callscope.web import admin, api, health, live, monitoring, pages, quality, security, sso, ui
from callscope.web.errors import (
    database_response,
    disk_response,
    error_response,
    http_response,
    validation_response,
)
from callscope.web.security import BodyLimit, SecurityHeaders

# Swagger UI's files, from the swagger-ui-py package (found without importing it)
log = logging.getLogger(__name__)
SWAGGER_UI = Path(find_spec("swagger_ui").origin or "").parent / "static"  # type: ignore[union-attr]


def _warm_meaning(ctx: Context) -> None:
    try:
        meaning.warm(ctx.db)
    except Exception:  # (the first search reads them instead)
        log.exception("reading the lines' meanings failed")


def create_app(ctx: Context, *, with_worker: bool = False) -> FastAPI:
    """The callscope web application over CTX, with the embedded worker if asked."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker = Worker(ctx, warm_up=True) if with_worker else None
        if worker:
            worker.start()
        app.state.live.start()
        # the lines' meanings read while the server starts answering, not at the first search
        threading.Thread(target=_warm_meaning, args=(ctx,), name="meaning", daemon=True).start()
        try:
            yield
        finally:
            app.state.live.stop()
            if worker:
                worker.stop(timeout=5)

    app = FastAPI(
        lifespan=lifespan,
        title="callscope",
        version=__version__,
        description="Call recording and transcript review for contact centres.",
        docs_url=None,
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.with_worker = with_worker
    app.state.live = Hub(ctx)  # (the live calls streaming to this process)

    app.add_exception_handler(errors.CallscopeError, error_response)
    app.add_exception_handler(OperationalError, database_response)
    app.add_exception_handler(OSError, disk_response)
    app.add_exception_handler(HTTPException, http_response)
    app.add_exception_handler(RequestValidationError, validation_response)

    @app.exception_handler(ui.SignInRequired)
    async def _sign_in(request: Request, _exc: ui.SignInRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)

    @app.get("/api/docs", include_in_schema=False)
    def _api_docs(request: Request) -> HTMLResponse:
        return ui.TEMPLATES.TemplateResponse(request, "api_docs.html")

    @app.get("/favicon.ico", include_in_schema=False)
    def _favicon() -> RedirectResponse:
        return RedirectResponse("/static/favicon.svg", status_code=308)

    app.add_middleware(
        SessionMiddleware,
        secret_key=security.secret_key(ctx),
        session_cookie="callscope_session",
        same_site="lax",
        https_only=ctx.settings.secure_cookies,
        max_age=12 * 3600,
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, upload_bytes=ctx.settings.max_upload_bytes)
    app.add_middleware(monitoring.RequestTelemetry)
    app.mount("/static/swagger", StaticFiles(directory=SWAGGER_UI), name="swagger")
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(health.router)
    app.include_router(monitoring.router)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(sso.router)
    app.include_router(quality.router)
    app.include_router(admin.router)
    app.include_router(live.router)
    return app
