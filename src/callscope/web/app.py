"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from callscope import __version__
from callscope.context import Context
from callscope.ingest import IngestError
from callscope.jobs import Worker
from callscope.web import api
from callscope.web.upload import MalformedBody


def create_app(ctx: Context, *, with_worker: bool = False) -> FastAPI:
    """The callscope web application over CTX, with the embedded worker if asked."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker = Worker(ctx) if with_worker else None
        if worker:
            worker.start()
        try:
            yield
        finally:
            if worker:
                worker.stop(timeout=5)

    app = FastAPI(
        lifespan=lifespan,
        title="callscope",
        version=__version__,
        description="Call recording and transcript review for contact centres.",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.ctx = ctx

    @app.exception_handler(IngestError)
    async def _ingest_error(_request: Request, exc: IngestError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(MalformedBody)
    async def _malformed(_request: Request, exc: MalformedBody) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse("/api/docs")

    @app.get("/healthz", include_in_schema=False)
    def _health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(api.router)
    return app
