"""The REST API (docs/api.md): routes translate HTTP into one domain call each."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi import Path as FastAPIPath
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from callscope.context import Context
from callscope.db.models import Conversation, ConversationAnalysis, Job, Queue, User
from callscope.errors import TooLarge
from callscope.governance import access, audit, policy
from callscope.governance.access import Action, visible_conversations
from callscope.processing import transcripts
from callscope.processing.ingest import Ingestor
from callscope.review import (
    categories,
    comments,
    document,
    evaluations,
    exports,
    meaning,
    scorecards,
    search,
    themes,
)
from callscope.web.deps import (
    MAX_ID,
    ContextDep,
    Id,
    IngestUserDep,
    SessionDep,
    UserDep,
    actor,
    correct_speakers,
    viewer_language,
    viewer_zone,
    visible_conversation,
)
from callscope.web.download import metrics_csv_response, transcript_html
from callscope.web.upload import read_ingest_form

router = APIRouter(prefix="/api/v1", tags=["api"])


@router.post(
    "/conversations",
    status_code=202,
    responses={
        200: {"description": "already ingested (same external id and audio)"},
        403: {"description": "the token may only read (ingesting needs the ingest scope)"},
        409: {"description": "external id already used with different audio"},
        413: {"description": "audio over the upload limit"},
        422: {"description": "metadata or audio refused; `detail` names the problem"},
    },
)
async def ingest_conversation(
    request: Request, user: IngestUserDep, ctx: ContextDep
) -> JSONResponse:
    """Ingest a recording: multipart with a `metadata` JSON part and an `audio` file part."""
    ingestor = Ingestor(ctx)
    limit = ctx.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 1024 * 1024:
        raise TooLarge(f"audio is larger than the upload limit of {limit // (1024 * 1024)} MiB")
    form = await read_ingest_form(
        request.headers.get("content-type", ""), request.stream(), ctx.settings.tmp_dir, limit
    )
    audio = form.audio
    assert audio is not None  # (read_ingest_form refuses an ingest without its audio part)
    try:
        meta = await run_in_threadpool(ingestor.check_metadata, form.metadata)
    except BaseException:
        audio.discard()
        raise
    result = await run_in_threadpool(ingestor.ingest_upload, audio, meta, form.filename)
    return JSONResponse(result.as_dict(), status_code=202 if result.created else 200)


@router.post(
    "/conversations/import",
    status_code=201,
    responses={
        403: {"description": "the token may only read (ingesting needs the ingest scope)"},
        409: {"description": "external id already used"},
        413: {"description": "audio or transcript over its size limit"},
        422: {"description": "metadata, transcript or audio refused; `detail` names the problem"},
    },
)
async def import_conversation(
    request: Request,
    user: IngestUserDep,
    ctx: ContextDep,
    format: Annotated[  # noqa: A002 (the query parameter's name)
        Literal["json", "vtt"] | None, Query(description="default: the transcript file's extension")
    ] = None,
) -> JSONResponse:
    """Import an existing transcript: multipart with a `metadata` JSON part, a `transcript` file
    part (our JSON format or WebVTT with speaker voices) and, if there is one, an `audio` file
    part. The conversation is stored processed; no speech recognition runs."""
    ingestor = Ingestor(ctx)
    form = await read_ingest_form(
        request.headers.get("content-type", ""),
        request.stream(),
        ctx.settings.tmp_dir,
        ctx.settings.max_upload_bytes,
        importing=True,
    )
    transcript = form.transcript
    assert transcript is not None  # (read_ingest_form refuses an import without its transcript)
    try:
        meta = await run_in_threadpool(ingestor.check_metadata, form.metadata)
    except BaseException:
        if form.audio:
            form.audio.discard()
        raise
    result = await run_in_threadpool(
        ingestor.import_transcript,
        transcript,
        format or transcripts.format_of(form.transcript_filename),
        meta,
        form.audio,
        form.filename,
    )
    return JSONResponse(result.as_dict(), status_code=201)


def list_filters(
    q: Annotated[
        str | None, Query(max_length=200, description='words and "phrases" in the transcript')
    ] = None,
    external_id: str | None = None,
    agent: Annotated[str | None, Query(description="the primary agent's external id")] = None,
    queue: Annotated[str | None, Query(description="the queue's name")] = None,
    sentiment: Annotated[str | None, Query(pattern="^(positive|neutral|negative)$")] = None,
    start: Annotated[date | None, Query(description="started on or after this day")] = None,
    end: Annotated[date | None, Query(description="started on or before this day")] = None,
    min_duration_s: Annotated[float | None, Query(ge=0)] = None,
    max_duration_s: Annotated[float | None, Query(ge=0)] = None,
    min_agent_talk_pct: Annotated[float | None, Query(ge=0, le=100)] = None,
    max_agent_talk_pct: Annotated[float | None, Query(ge=0, le=100)] = None,
    category: Annotated[
        str | None, Query(max_length=100, description="only the calls that matched this category")
    ] = None,
    like: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=meaning.MAX_QUERY,
            pattern=r"\S",
            description="calls with lines close in meaning to this (any language), closest first",
        ),
    ] = None,
    sort: Annotated[str, Query(pattern="^-?(started_at|duration|sentiment)$")] = "-started_at",
) -> search.Filters:
    """The search and filters of a list of conversations, from the query string."""
    return search.Filters(
        q=q,
        external_id=external_id,
        agent_external_id=agent,
        queue_name=queue,
        sentiment=sentiment,
        start=start,
        end=end,
        min_duration_s=min_duration_s,
        max_duration_s=max_duration_s,
        min_agent_talk_pct=min_agent_talk_pct,
        max_agent_talk_pct=max_agent_talk_pct,
        category=category,
        like=like,
        sort=sort,
    )


ListFilters = Annotated[search.Filters, Depends(list_filters)]


@router.get("/conversations")
def list_conversations(
    session: SessionDep,
    user: UserDep,
    filters: ListFilters,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> dict[str, Any]:
    """The conversations the caller may see, newest first; `q` searches the transcripts and
    gives each item a `snippet` (HTML: escaped text, matches in `<mark>`). With `q`, `total` is
    counted up to 1 001 (`total_is_exact` false beyond 1 000). `like` finds calls by meaning,
    closest first (`sort` does not apply), each with its closest `lines` and what `matched`
    ("meaning", "words": with `q` as well, the calls holding the words follow). 403 while
    viewing transcripts is switched off."""
    results = search.find(session, user, filters, limit, offset)
    return {
        "total": results.total,
        "total_is_exact": results.total_is_exact,
        "items": [
            {
                "id": hit.conversation.id,
                "external_id": hit.conversation.external_id,
                "status": hit.conversation.processing_status,
                **document.overview(hit.conversation),
                "sentiment": (
                    {"label": hit.analysis.sentiment_label, "score": hit.analysis.sentiment_score}
                    if hit.analysis
                    else None
                ),
                "agent_talk_pct": hit.analysis.agent_talk_pct if hit.analysis else None,
                "categories": hit.categories,
                **({"snippet": hit.snippet} if filters.q else {}),
                **(
                    {"matched": hit.matched, "lines": [meaning_line(hit, n) for n in hit.lines]}
                    if filters.like
                    else {}
                ),
            }
            for hit in results.hits
        ],
    }


def meaning_line(hit: search.Hit, line: search.Line) -> dict[str, Any]:
    """A line found by meaning, as the API gives it, with the page that opens the call there."""
    return {
        "position": line.position,
        "start_s": line.start_s,
        "speaker": line.speaker,
        "text": line.text,
        "similarity": line.similarity,
        "url": f"/conversations/{hit.conversation.id}?line={line.position}#details",
    }


@router.get("/conversations/{conversation_id}/analysis")
def get_analysis(
    request: Request, conversation_id: Id, session: SessionDep, user: UserDep
) -> Response:
    """The analysis document (docs/api.md, docs/metrics.md#in-the-analysis-document)."""
    conv = visible_conversation(session, user, conversation_id)
    audit.record(
        session, actor(request, user), "conversation.view", "conversation", conv.id, via="api"
    )
    withheld = access.transcript_withheld(session, user)
    return Response(document.document_json(session, conv, withheld), media_type="application/json")


@router.post("/conversations/{conversation_id}/swap-speakers")
def swap_speakers(
    request: Request, conversation_id: Id, session: SessionDep, user: UserDep
) -> Response:
    """Swap agent and customer (a wrongly assigned mono call): every word changes speaker and
    sentiment and metrics are computed again. Supervisors and administrators; audited.
    Answers the new analysis document."""
    conv = correct_speakers(request, session, user, conversation_id)
    session.flush()
    withheld = access.transcript_withheld(session, user)
    return Response(document.document_json(session, conv, withheld), media_type="application/json")


def require_recordings_enabled(session: Session) -> None:
    """403 with the reason while viewing recordings is switched off."""
    if not policy.get(session, "recordings.enabled"):
        raise HTTPException(403, access.VIEWING_OFF)


DOWNLOADS = {"audio": Action.DOWNLOAD_AUDIO, "transcript": Action.DOWNLOAD_TRANSCRIPT}


def require_download_allowed(session: Session, user: User, what: str) -> None:
    """403 with the reason when the settings do not let this user's role download WHAT."""
    if not access.may(user, DOWNLOADS[what], session):
        raise HTTPException(403, f"downloading {what} is not allowed for your role ({user.role})")


@router.get(
    "/conversations/{conversation_id}/audio",
    response_class=Response,
    responses={200: {"content": {"audio/mp4": {}}}, 206: {"description": "partial content"}},
)
def get_audio(
    request: Request,
    conversation_id: Id,
    session: SessionDep,
    user: UserDep,
    ctx: ContextDep,
    download: bool = False,
    original: Annotated[
        bool, Query(description="the unredacted audio, where kept (administrators)")
    ] = False,
) -> FileResponse:
    """The playback audio (AAC in MP4); supports HTTP Range requests. A request for the whole
    file (no Range header, or `download=true`) is a download: the settings must allow it for
    the caller's role, and it is written to the audit log. Where personal data was redacted,
    this is the redacted audio; `original=true` gives administrators the unredacted one if the
    settings kept it."""
    conv = visible_conversation(session, user, conversation_id)
    require_recordings_enabled(session)
    if original:
        require_original_allowed(user)
    if download or "range" not in request.headers:
        require_download_allowed(session, user, "audio")
        audit.record(
            session,
            actor(request, user),
            "recording.download",
            "conversation",
            conv.id,
            **({"original": True} if original else {}),
        )
    elif not access.may(user, Action.DOWNLOAD_AUDIO, session):
        bound_range(request)  # playing, not downloading: a part of the file per request
    return FileResponse(
        _playback_file(ctx, conv, "original" if original else "audio"),
        media_type="audio/mp4",
        filename=f"{conv.external_id}.mp4",
        content_disposition_type="attachment",
    )


@router.get("/jobs/{job_id}")
def get_job(job_id: Id, session: SessionDep, user: UserDep) -> dict[str, Any]:
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


PLAY_RANGE_BYTES = 512 * 1024  # what one answer holds for a caller who may play but not download
SIMPLE_RANGE = re.compile(r"bytes=(\d{1,15})-(\d{0,15})")


def bound_range(request: Request) -> None:
    """Let the Range request of a caller who may not download ask for at most
    PLAY_RANGE_BYTES, so that `bytes=0-` is not the whole file (players ask for the rest)."""
    asked = SIMPLE_RANGE.fullmatch(request.headers["range"].strip())
    if asked is None:
        raise HTTPException(416, "only a single byte range (bytes=START-[END]) may be asked for")
    start = int(asked.group(1))
    end = start + PLAY_RANGE_BYTES - 1
    if asked.group(2):
        end = min(end, int(asked.group(2)))
    headers = [(k, v) for k, v in request.scope["headers"] if k.lower() != b"range"]
    request.scope["headers"] = [*headers, (b"range", f"bytes={start}-{end}".encode())]


def _playback_file(ctx: Context, conv: Conversation, kind: str) -> Path:
    rec = conv.recording
    keys = (
        {"audio": rec.playback_key, "peaks": rec.peaks_key, "original": rec.original_playback_key}
        if rec
        else {}
    )
    key = keys.get(kind)
    if not key or not ctx.store.exists(key):
        what = "no unredacted original" if kind == "original" else "no playback audio"
        raise HTTPException(404, f"this conversation has {what}")
    return ctx.store.local_path(key)


def require_original_allowed(user: User) -> None:
    if not access.may(user, Action.SEE_ORIGINALS):
        raise HTTPException(403, "only administrators may see or hear unredacted originals")


@router.get("/conversations/{conversation_id}/original-words")
def get_original_words(
    request: Request, conversation_id: Id, session: SessionDep, user: UserDep
) -> Response:
    """The words of the transcript before personal data was redacted (administrators), where
    the settings kept them: `{"words": [{"speaker", "start", "end", "text", "confidence"}]}`,
    `{"words": null}` when nothing was kept. Audited."""
    conv = visible_conversation(session, user, conversation_id)
    require_recordings_enabled(session)
    require_original_allowed(user)
    kept = session.scalar(
        select(ConversationAnalysis.original_transcript).where(
            ConversationAnalysis.conversation_id == conv.id
        )
    )
    audit.record(
        session,
        actor(request, user),
        "transcript.download",
        "conversation",
        conv.id,
        original=True,
    )
    return Response(f'{{"words":{kept or "null"}}}', media_type="application/json")


@router.get("/conversations/{conversation_id}/peaks")
def get_peaks(
    conversation_id: Id, session: SessionDep, user: UserDep, ctx: ContextDep
) -> FileResponse:
    """Waveform peaks of the playback audio: {per_second, channels: [[0…1, …], …]}."""
    conv = visible_conversation(session, user, conversation_id)
    require_recordings_enabled(session)
    return FileResponse(_playback_file(ctx, conv, "peaks"), media_type="application/json")


@router.get(
    "/conversations/{conversation_id}/transcript.html",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}}},
)
def get_transcript_html(
    request: Request, conversation_id: Id, session: SessionDep, user: UserDep
) -> HTMLResponse:
    """The transcript as a standalone HTML file: text only, no scripts or images."""
    conv = visible_conversation(session, user, conversation_id)
    require_recordings_enabled(session)
    require_download_allowed(session, user, "transcript")
    audit.record(session, actor(request, user), "transcript.download", "conversation", conv.id)
    html = transcript_html(
        document.document(session, conv),
        language=viewer_language(request, user),
        zone=viewer_zone(request, user),
    )
    return HTMLResponse(
        html,
        headers={
            "Content-Disposition": f'attachment; filename="transcript-{conv.id}.html"',
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
    )


@router.get(
    "/conversations/export.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_metrics_csv(
    request: Request, session: SessionDep, user: UserDep, filters: ListFilters
) -> Response:
    """The overview fields and metrics of the listed conversations (same filters as the list;
    at most 10 000 rows) as CSV."""
    return metrics_csv_response(session, actor(request, user), user, filters)


@router.get(
    "/conversations/{conversation_id}/export.{fmt}",
    response_class=Response,
    responses={200: {"content": {t: {} for t in exports.FORMATS.values()}}},
)
def export_conversation(
    request: Request,
    conversation_id: Id,
    fmt: Annotated[str, FastAPIPath(pattern="^(json|vtt|srt)$")],
    session: SessionDep,
    user: UserDep,
) -> Response:
    """The analysis document (json) or the transcript as WebVTT (voices, word times) or SRT."""
    conv = visible_conversation(session, user, conversation_id)
    require_recordings_enabled(session)
    require_download_allowed(session, user, "transcript")
    audit.record(
        session, actor(request, user), "conversation.export", "conversation", conv.id, format=fmt
    )
    if fmt == "json":
        body = document.document_json(session, conv)
    else:
        doc = document.document(session, conv)
        body = exports.webvtt_text(doc) if fmt == "vtt" else exports.srt_text(doc)
    return Response(
        body,
        media_type=f"{exports.FORMATS[fmt]}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{conv.id}.{fmt}"'},
    )


# --- categories and comments ------------------------------------------------------------


class CategoryIn(BaseModel):
    """A category: a name and phrases (a trailing `*` is a prefix), or example sentences
    matched by meaning (`like`, with the `similarity` a line needs), or conditions, or any of
    them together."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=100)
    phrases: list[str] = Field(default_factory=list)
    like: list[str] = Field(default_factory=list)
    similarity: float | None = None
    speaker: str = "any"
    first_s: float | None = None
    last_s: float | None = None
    absent: bool = False
    conditions: dict[str, Any] = Field(default_factory=dict)


def require_admin(user: User, what: str) -> None:
    """403 unless USER is an administrator: only they do WHAT."""
    if not access.may(user, Action.ADMINISTER):
        raise HTTPException(403, f"only administrators {what}")


@router.get("/categories")
def list_categories(session: SessionDep, user: UserDep) -> list[dict[str, Any]]:
    """Every category with its definition, the number of calls that match it, and whether it
    has been applied to every stored call yet. The calls counted are those the caller may see."""
    return categories.listing(session, visible_conversations(user))


@router.post("/categories", status_code=201, responses={403: {}, 422: {}})
def add_category(
    request: Request, body: CategoryIn, session: SessionDep, user: UserDep
) -> dict[str, Any]:
    """Add a category (administrators); the workers apply it to stored calls, with progress."""
    require_admin(user, "define categories")
    fields = body.model_dump(exclude={"name"})
    category = categories.add(session, actor(request, user), body.name, fields)
    return _listed(session, user, category.id)


@router.put("/categories/{category_id}", responses={403: {}, 404: {}, 409: {}, 422: {}})
def change_category(
    request: Request, category_id: Id, body: CategoryIn, session: SessionDep, user: UserDep
) -> dict[str, Any]:
    """Change a category's name and definition (administrators); the workers match the stored
    calls again, with progress. 409 renaming a category an evaluation form answers from."""
    require_admin(user, "define categories")
    fields = body.model_dump(exclude={"name"})
    category = categories.change(session, actor(request, user), category_id, body.name, fields)
    return _listed(session, user, category.id)


def _listed(session: Session, user: User, category_id: int) -> dict[str, Any]:
    """The category as the list gives it to USER."""
    return next(
        c
        for c in categories.listing(session, visible_conversations(user))
        if c["id"] == category_id
    )


@router.delete("/categories/{category_id}", status_code=204, responses={403: {}, 404: {}})
def remove_category(
    request: Request, category_id: Id, session: SessionDep, user: UserDep
) -> Response:
    """Remove a category and its matches (administrators)."""
    require_admin(user, "define categories")
    categories.remove(session, actor(request, user), category_id)
    return Response(status_code=204)


class CommentIn(BaseModel):
    """A comment at a moment of the call, or a reply to one."""

    model_config = ConfigDict(extra="forbid")
    at_s: float = Field(ge=0)
    text: str = Field(max_length=comments.MAX_CHARS)
    reply_to: int | None = Field(None, ge=1, le=MAX_ID)


@router.post("/conversations/{conversation_id}/comments", status_code=201)
def add_comment(
    request: Request, conversation_id: Id, body: CommentIn, session: SessionDep, user: UserDep
) -> dict[str, Any]:
    """Comment at `at_s` seconds of a call the caller may see (or reply to a comment);
    answers the call's comments."""
    conv = visible_conversation(session, user, conversation_id)
    comments.add(session, actor(request, user), conv.id, body.at_s, body.text, body.reply_to)
    return {"comments": comments.thread(session, conv.id)}


@router.post("/conversations/{conversation_id}/comments/{comment_id}/resolve")
def resolve_comment(
    request: Request,
    conversation_id: Id,
    comment_id: Id,
    session: SessionDep,
    user: UserDep,
    resolved: bool = True,
) -> dict[str, Any]:
    """Resolve a comment's thread (`?resolved=false` opens it again)."""
    conv = visible_conversation(session, user, conversation_id)
    comments.resolve(session, actor(request, user), user, conv.id, comment_id, resolved)
    return {"comments": comments.thread(session, conv.id)}


# --- quality evaluations ------------------------------------------------------------------


@router.get("/evaluation-forms")
def list_forms(session: SessionDep, user: UserDep) -> list[dict[str, Any]]:
    """The newest version of every evaluation form."""
    return [evaluations.form_dict(f) for f in evaluations.latest_forms(session)]


@router.post("/evaluation-forms", status_code=201, responses={403: {}, 422: {}})
def import_form(
    request: Request, body: dict[str, Any], session: SessionDep, user: UserDep
) -> dict[str, Any]:
    """Import a form (administrators): a new version when its name exists."""
    require_admin(user, "import evaluation forms")
    return evaluations.form_dict(evaluations.import_form(session, actor(request, user), body))


class EvaluationIn(BaseModel):
    """An evaluation: the form's name (its newest version) and the answers by question id;
    automatic answers are filled in, and overriding one needs its reason."""

    model_config = ConfigDict(extra="forbid")
    form: str | int
    answers: dict[str, Any] = Field(default_factory=dict)
    comments: dict[str, str] = Field(default_factory=dict)
    reasons: dict[str, str] = Field(default_factory=dict)


@router.post("/conversations/{conversation_id}/evaluations", status_code=201)
def evaluate(
    request: Request, conversation_id: Id, body: EvaluationIn, session: SessionDep, user: UserDep
) -> dict[str, Any]:
    """Evaluate a call (supervisors and administrators who may see it, not their own)."""
    conv = visible_conversation(session, user, conversation_id)
    done = evaluations.evaluate(
        session,
        actor(request, user),
        user,
        conv.id,
        body.form,
        body.answers,
        body.comments,
        body.reasons,
    )
    return evaluations.as_dict(session, done, _withheld(session, user))


@router.put("/conversations/{conversation_id}/evaluations/draft")
def save_evaluation_draft(
    conversation_id: Id, body: EvaluationIn, session: SessionDep, user: UserDep
) -> dict[str, Any]:
    """Keep the caller's evaluation of the call as far as it goes (one draft per evaluator
    and call, replaced each time; seen by nobody else until submitted)."""
    conv = visible_conversation(session, user, conversation_id)
    kept = evaluations.save_draft(
        session, user, conv.id, body.form, body.answers, body.comments, body.reasons
    )
    return evaluations.draft_dict(kept)


@router.get("/conversations/{conversation_id}/evaluations/draft")
def evaluation_draft(conversation_id: Id, session: SessionDep, user: UserDep) -> dict[str, Any]:
    """The caller's draft evaluation of the call; 404 when there is none."""
    conv = visible_conversation(session, user, conversation_id)
    found = evaluations.draft(session, user, conv.id)
    if found is None:
        raise HTTPException(404, "no draft evaluation of this call")
    return evaluations.draft_dict(found)


def _withheld(session: Session, user: User) -> bool:
    """Whether USER may not have transcript words (nor what quotes them) as data."""
    return access.transcript_withheld(session, user) is not None


@router.get("/conversations/{conversation_id}/evaluations")
def conversation_evaluations(
    conversation_id: Id, session: SessionDep, user: UserDep
) -> list[dict[str, Any]]:
    """The call's evaluations the caller may see."""
    conv = visible_conversation(session, user, conversation_id)
    withheld = _withheld(session, user)
    return [
        evaluations.as_dict(session, e, withheld) for e in evaluations.visible(session, user, conv)
    ]


class ResponseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field("", max_length=2000)


def _respond(
    request: Request,
    evaluation_id: int,
    body: ResponseIn,
    session: Session,
    user: User,
    disputed: bool,
) -> dict[str, Any]:
    evaluation = evaluations.find_visible(session, user, evaluation_id)
    evaluations.respond(session, actor(request, user), user, evaluation, disputed, body.comment)
    return evaluations.as_dict(session, evaluation, _withheld(session, user))


@router.post("/evaluations/{evaluation_id}/acknowledge")
def acknowledge(
    request: Request, evaluation_id: Id, body: ResponseIn, session: SessionDep, user: UserDep
) -> dict[str, Any]:
    """The agent of the call acknowledges its evaluation (with a comment, if they like)."""
    return _respond(request, evaluation_id, body, session, user, disputed=False)


@router.post("/evaluations/{evaluation_id}/answer")
def answer_dispute(
    request: Request, evaluation_id: Id, body: ResponseIn, session: SessionDep, user: UserDep
) -> dict[str, Any]:
    """A supervisor or administrator who may see the call answers the agent's dispute."""
    evaluation = evaluations.find_visible(session, user, evaluation_id)
    evaluations.answer(session, actor(request, user), user, evaluation, body.comment)
    return evaluations.as_dict(session, evaluation, _withheld(session, user))


@router.post("/evaluations/{evaluation_id}/dispute")
def dispute(
    request: Request, evaluation_id: Id, body: ResponseIn, session: SessionDep, user: UserDep
) -> dict[str, Any]:
    """The agent of the call disputes its evaluation, saying what is disputed."""
    return _respond(request, evaluation_id, body, session, user, disputed=True)


class AmendmentIn(BaseModel):
    """An evaluation amended: why, and its answers, comments and override reasons afresh (the
    same form version; automatic answers stay where ANSWERS leaves them)."""

    model_config = ConfigDict(extra="forbid")
    why: str = Field(max_length=2000)
    answers: dict[str, Any] = Field(default_factory=dict)
    comments: dict[str, str] = Field(default_factory=dict)
    reasons: dict[str, str] = Field(default_factory=dict)


@router.post("/evaluations/{evaluation_id}/amend")
def amend_evaluation(
    request: Request, evaluation_id: Id, body: AmendmentIn, session: SessionDep, user: UserDep
) -> dict[str, Any]:
    """Its evaluator amends an evaluation, while it is disputed or within the days the
    `evaluations.amend_days` setting gives (audited with the answers and score before and
    after; a disputed one is answered by it)."""
    evaluation = evaluations.find_visible(session, user, evaluation_id)
    evaluations.amend(
        session,
        actor(request, user),
        user,
        evaluation,
        body.why,
        body.answers,
        body.comments,
        body.reasons,
    )
    return evaluations.as_dict(session, evaluation, _withheld(session, user))


def _themes(
    session: Session, user: User, queue: str | None, start: date | None, end: date | None
) -> dict[str, Any]:
    queue_id = None
    if queue:
        queue_id = session.scalar(select(Queue.id).where(Queue.name == queue))
        if queue_id is None:
            raise HTTPException(404, f"queue: no queue named {queue!r}")
    first, last = themes.period(start, end, date.today())
    return themes.as_dict(themes.themes(session, user, queue_id, first, last))


@router.get("/themes")
def get_themes(
    session: SessionDep,
    user: UserDep,
    queue: Annotated[str | None, Query(max_length=200, description="a queue's name")] = None,
    start: Annotated[date | None, Query(alias="from", description="first day")] = None,
    end: Annotated[date | None, Query(alias="to", description="last day (default today)")] = None,
) -> dict[str, Any]:
    """Why customers call: the reasons of the calls the caller may see (in a queue, else all
    of them) over a period (default the last 30 days), grouped into themes, each with its share,
    its share in the period before, its customers' sentiment and example calls. 403 while
    viewing transcripts is switched off (themes quote what customers said)."""
    return _themes(session, user, queue, start, end)


@router.get("/themes.csv", response_class=Response)
def get_themes_csv(
    session: SessionDep,
    user: UserDep,
    queue: Annotated[str | None, Query(max_length=200)] = None,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    """The themes as CSV: a line per theme."""
    return Response(
        exports.themes_csv(_themes(session, user, queue, start, end)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="themes.csv"'},
    )


@router.get("/scorecards")
def scorecard(
    session: SessionDep,
    user: UserDep,
    agent: Annotated[
        str | None, Query(max_length=200, description="an agent's external id")
    ] = None,
    queue: Annotated[str | None, Query(max_length=200, description="a queue's name")] = None,
    start: Annotated[date | None, Query(alias="from", description="first day")] = None,
    end: Annotated[date | None, Query(alias="to", description="last day (default today)")] = None,
) -> dict[str, Any]:
    """An agent's or a queue's processed calls by week (default: the last 12 weeks): calls,
    average handle time, agent talk share, non-talk, customer sentiment and trend, categories
    matched, evaluations and their mean score — over the calls the caller may see."""
    return scorecards.scorecard(session, user, agent, queue, start, end)
