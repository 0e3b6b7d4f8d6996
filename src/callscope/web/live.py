"""Live calls: the WebSocket doors telephony platforms stream calls through (Twilio Media
Streams, Genesys AudioHook, the generic form), the Live pages supervisors and agents watch them
on, with the transcript delivered by Server-Sent Events, and the live calls in the API."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, StreamingResponse
from starlette.websockets import WebSocketDisconnect, WebSocketState

from callscope import errors
from callscope.context import Context
from callscope.db.models import LiveCall, User
from callscope.governance import access, audit, policy
from callscope.processing import live
from callscope.processing.metadata import InvalidMetadata
from callscope.processing.streams import (
    INVALID,
    POLICY,
    TOO_BIG,
    Audio,
    AudioHook,
    Ended,
    Generic,
    Opened,
    Protocol,
    StreamError,
    Twilio,
)
from callscope.web import security
from callscope.web.deps import Id, SessionDep, UserDep, actor
from callscope.web.ui import PageUser, render

log = logging.getLogger(__name__)
router = APIRouter()
EVERY_S = 0.25  # how often a watching page's stream looks for new lines
KEEP_ALIVE_S = 15.0  # a comment this often when nothing changes (proxies close idle streams)
STREAM_FOR_S = 300.0  # then the stream ends and the browser reconnects, with Last-Event-ID


# --- the doors --------------------------------------------------------------------------------


def _bearer(websocket: WebSocket) -> str | None:
    scheme, _, secret = websocket.headers.get("authorization", "").partition(" ")
    return secret.strip() or None if scheme.lower() == "bearer" else None


@router.websocket("/api/v1/live/twilio")
async def twilio(websocket: WebSocket) -> None:
    """Twilio Media Streams (`<Stream url="wss://…/api/v1/live/twilio">` with a `token`
    parameter, and the call's `metadata` as JSON)."""
    await _stream(websocket, Twilio(), _bearer(websocket))


@router.websocket("/api/v1/live/audiohook")
async def audiohook(websocket: WebSocket) -> None:
    """Genesys Cloud AudioHook; the integration's API key is an ingest token."""
    await _stream(websocket, AudioHook(), websocket.headers.get("x-api-key"))


@router.websocket("/api/v1/live/stream")
async def generic(websocket: WebSocket) -> None:
    """The generic form (docs/live.md): a JSON start, binary 16-bit PCM, a JSON stop."""
    await _stream(websocket, Generic(), _bearer(websocket))


async def _stream(websocket: WebSocket, protocol: Protocol, header_token: str | None) -> None:
    """Read the connection's messages until the call ends or a message is refused; a refusal
    closes this connection only, and what was received is kept (the call may resume)."""
    hub: live.Hub = websocket.app.state.live
    limit = hub.settings.live_max_frame_kb * 1024
    source = security.client_address(websocket)
    await websocket.accept()
    call: live.Call | None = None
    failure: tuple[int, str] | None = None
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1006))
            data, text = message.get("bytes"), message.get("text")
            size = len(data) if data is not None else len((text or "").encode())
            if size > limit:
                raise StreamError(TOO_BIG, f"a message of {size} bytes is over {limit}")
            reading = protocol.binary(data) if data is not None else protocol.text(text or "")
            for event in reading.events:
                if isinstance(event, Opened):
                    opened = event if event.token else replace(event, token=header_token)
                    call = await run_in_threadpool(hub.open, protocol.name, opened, source)
                    for answer in protocol.opened(call.id, call.received_s()):
                        await websocket.send_json(answer)
                elif isinstance(event, Audio) and call is not None:
                    hub.add(call, event)
                elif isinstance(event, Ended) and call is not None:
                    ended, call = call, None
                    conversation = await run_in_threadpool(hub.finish, ended)
                    for answer in protocol.ended(conversation):
                        await websocket.send_json(answer)
                    await websocket.close(1000)
                    return
            for answer in reading.answers:
                await websocket.send_json(answer)
    except WebSocketDisconnect:
        pass
    except StreamError as exc:
        failure = (exc.code, exc.reason)
    except errors.Refused as exc:
        failure = (INVALID if isinstance(exc, InvalidMetadata) else POLICY, str(exc))
    except Exception:
        log.exception("a live stream failed")
        failure = (1011, "the server failed; the call may resume")
    finally:
        if call is not None:  # (before the close: a client that reads it finds the call dropped)
            await run_in_threadpool(hub.drop, call)
    if failure is not None:
        await _close(websocket, protocol, *failure)


async def _close(websocket: WebSocket, protocol: Protocol, code: int, reason: str) -> None:
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    try:
        for answer in protocol.failed(reason):
            await websocket.send_json(answer)
        await websocket.close(code, StreamError(code, reason).reason)
    except (WebSocketDisconnect, RuntimeError):
        pass  # (the other side went first)


# --- watching ---------------------------------------------------------------------------------


def _watched(session: Any, user: User, live_id: int) -> LiveCall:
    row = session.scalar(access.visible_live_calls(user).where(LiveCall.id == live_id))
    if row is None:
        raise HTTPException(404, "no such live call")
    return row


@router.get("/live", include_in_schema=False)
def live_page(request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    """The calls going on in the queues the user may see (the page keeps itself up to date)."""
    calls = [live.call_dict(row) for row in live.shown(session, access.visible_live_calls(user))]
    return render(request, "live.html", user, calls=calls)


@router.get("/live/{live_id}", include_in_schema=False)
def live_call_page(
    request: Request, live_id: Id, session: SessionDep, user: PageUser
) -> HTMLResponse:
    """One live call: its transcript growing line by line, its alerts and its timeline."""
    row = _watched(session, user, live_id)
    audit.record(session, actor(request, user), "live.view", "live_call", row.id)
    return render(
        request,
        "live_call.html",
        user,
        call=live.call_dict(row),
        withheld=not policy.get(session, "recordings.enabled"),
    )


@router.get("/live/{live_id}/events", include_in_schema=False)
async def live_events(
    request: Request,
    live_id: Id,
    session: SessionDep,
    user: PageUser,
    after: Annotated[int, Query(ge=0)] = 0,
) -> StreamingResponse:
    """Server-Sent Events of one live call: `call` (its state) when it changes and `line` for
    each line or alert added or changed, until the call has ended."""
    row = _watched(session, user, live_id)
    withheld = not policy.get(session, "recordings.enabled")
    ctx: Context = request.app.state.ctx
    resume = request.headers.get("last-event-id", "")
    start = int(resume) if resume.isdigit() else after

    async def events() -> AsyncIterator[str]:
        seen, quiet_since = start, time.monotonic()
        until = quiet_since + STREAM_FOR_S
        while time.monotonic() < until and not await request.is_disconnected():
            state, lines = await run_in_threadpool(_read, ctx, row.id, seen, withheld)
            if state is None:
                return
            if state["revision"] > seen or not seen:
                for line in lines:
                    yield _event("line", line)
                seen = max(state["revision"], 1)
                yield _event("call", state, seen)
                quiet_since = time.monotonic()
                if state["status"] == live.ENDED:
                    return
            elif time.monotonic() - quiet_since > KEEP_ALIVE_S:
                yield ": still here\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(EVERY_S)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _event(kind: str, data: dict[str, Any], ident: int | None = None) -> str:
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _read(
    ctx: Context, live_id: int, after: int, withheld: bool
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    with ctx.db.session() as session:
        row = session.get(LiveCall, live_id)
        if row is None:
            return None, []
        lines = [] if withheld else [live.line_dict(x) for x in live.changes(session, row, after)]
        return live.call_dict(row), lines


# --- the API ------------------------------------------------------------------------------------


@router.get("/api/v1/live", tags=["live"])
def live_calls(session: SessionDep, user: UserDep) -> dict[str, Any]:
    """The live calls the token's user may watch: those streaming, and those ended in the
    last hour (with the conversation each became)."""
    rows = live.shown(session, access.visible_live_calls(user))
    return {"items": [live.call_dict(row) for row in rows]}


@router.get("/api/v1/live/{live_id}", tags=["live"])
def live_call(
    request: Request,
    live_id: Id,
    session: SessionDep,
    user: UserDep,
    after: Annotated[int, Query(ge=0, description="only lines changed after this revision")] = 0,
) -> dict[str, Any]:
    """One live call with its lines and alerts (those changed after AFTER); the lines are
    withheld, with a reason, where the user may not have transcripts."""
    row = _watched(session, user, live_id)
    withheld = access.transcript_withheld(session, user)
    if not after:
        audit.record(session, actor(request, user), "live.view", "live_call", row.id, via="api")
    return {
        **live.call_dict(row),
        "lines": None
        if withheld
        else [live.line_dict(x) for x in live.changes(session, row, after)],
        "lines_withheld": withheld,
    }
