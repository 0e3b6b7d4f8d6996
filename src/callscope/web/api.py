"""The REST API (SPEC §7c): routes translate HTTP into one domain call each."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callscope import analysis, auth, policy
from callscope.access import visible_conversations
from callscope.context import Context
from callscope.db.models import Conversation, Job, User
from callscope.ingest import TooLarge
from callscope.web.upload import read_ingest_form

router = APIRouter(prefix="/api/v1", tags=["api"])
bearer = HTTPBearer(auto_error=False, description="an API token from `callscope tokens create`")


def get_ctx(request: Request) -> Context:
    return request.app.state.ctx


def get_session(ctx: Annotated[Context, Depends(get_ctx)]):  # type: ignore[no-untyped-def]
    with ctx.db.session() as session:
        yield session


def api_user(
    session: Annotated[Session, Depends(get_session)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    """The user the bearer token acts as; 401 without a valid token."""
    user = auth.user_for_token(session, credentials.credentials) if credentials else None
    if user is None:
        raise HTTPException(
            401,
            "a valid API token is required (Authorization: Bearer …)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


SessionDep = Annotated[Session, Depends(get_session)]
UserDep = Annotated[User, Depends(api_user)]


def visible_conversation(session: Session, user: User, conversation_id: int) -> Conversation:
    """The conversation if USER may see it; 404 otherwise (its existence is not revealed)."""
    conv = session.scalar(visible_conversations(user).where(Conversation.id == conversation_id))
    if conv is None:
        raise HTTPException(404, f"conversation {conversation_id} not found")
    return conv


@router.post(
    "/conversations",
    status_code=202,
    responses={
        200: {"description": "already ingested (same external id and audio)"},
        409: {"description": "external id already used with different audio"},
        413: {"description": "audio over the upload limit"},
        422: {"description": "metadata or audio refused; `detail` names the problem"},
    },
)
async def ingest_conversation(
    request: Request, user: UserDep, ctx: Annotated[Context, Depends(get_ctx)]
) -> JSONResponse:
    """Ingest a recording: multipart with a `metadata` JSON part and an `audio` file part."""
    ingestor = ctx.ingestor
    limit = ctx.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 1024 * 1024:
        raise TooLarge(f"audio is larger than the upload limit of {limit // (1024 * 1024)} MiB")
    form = await read_ingest_form(
        request.headers.get("content-type", ""), request.stream(), ctx.settings.tmp_dir, limit
    )
    try:
        meta = await run_in_threadpool(ingestor.check_metadata, form.metadata)
    except BaseException:
        form.audio.discard()
        raise
    result = await run_in_threadpool(ingestor.ingest_upload, form.audio, meta, form.filename)
    return JSONResponse(result.as_dict(), status_code=202 if result.created else 200)


@router.get("/conversations")
def list_conversations(
    session: SessionDep,
    user: UserDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    external_id: str | None = None,
) -> dict[str, Any]:
    """The conversations the caller may see, newest first."""
    query = visible_conversations(user)
    if external_id is not None:
        query = query.where(Conversation.external_id == external_id)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(
        query.order_by(Conversation.started_at.desc(), Conversation.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return {
        "total": total,
        "items": [
            {
                "id": c.id,
                "external_id": c.external_id,
                "status": c.processing_status,
                **analysis.overview(c),
            }
            for c in rows
        ],
    }


@router.get("/conversations/{conversation_id}/analysis")
def get_analysis(conversation_id: int, session: SessionDep, user: UserDep) -> dict[str, Any]:
    """The analysis document (SPEC §7)."""
    return analysis.document(session, visible_conversation(session, user, conversation_id))


def require_recordings_enabled(session: Session) -> None:
    """403 with the reason while viewing recordings is switched off (S1)."""
    if not policy.get(session, "recordings.enabled"):
        raise HTTPException(
            403, "viewing recordings and transcripts is switched off by the administrator"
        )


@router.get(
    "/conversations/{conversation_id}/audio",
    response_class=Response,
    responses={200: {"content": {"audio/mp4": {}}}, 206: {"description": "partial content"}},
)
def get_audio(
    conversation_id: int,
    session: SessionDep,
    user: UserDep,
    ctx: Annotated[Context, Depends(get_ctx)],
) -> FileResponse:
    """The playback audio (AAC in MP4); supports HTTP Range requests."""
    conv = visible_conversation(session, user, conversation_id)
    require_recordings_enabled(session)
    rec = conv.recording
    if rec is None or not rec.playback_key or not ctx.store.exists(rec.playback_key):
        raise HTTPException(404, "this conversation has no playback audio")
    return FileResponse(
        ctx.store.local_path(rec.playback_key),
        media_type="audio/mp4",
        filename=f"{conv.external_id}.mp4",
        content_disposition_type="attachment",
    )


@router.get("/jobs/{job_id}")
def get_job(job_id: int, session: SessionDep, user: UserDep) -> dict[str, Any]:
    """A processing job's state and progress."""
    visible = visible_conversations(user).with_only_columns(Conversation.id)
    job = session.scalar(select(Job).where(Job.id == job_id, Job.conversation_id.in_(visible)))
    if job is None:
        raise HTTPException(404, f"job {job_id} not found")
    return {
        "id": job.id,
        "conversation_id": job.conversation_id,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "stage": job.stage,
        "error": job.error,
        "attempts": job.attempts,
    }
