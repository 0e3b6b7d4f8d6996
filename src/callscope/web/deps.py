"""What routes depend on: the context, a database session, the caller, the visible conversation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from callscope import errors, i18n, logs
from callscope.context import Context
from callscope.db.models import Conversation, User
from callscope.governance import access, auth
from callscope.governance.access import Action, visible_conversations
from callscope.governance.audit import Actor
from callscope.i18n import N_
from callscope.processing import results
from callscope.vocabulary import Scope
from callscope.web import security

MAX_ID = 2**63 - 1  # the largest key a database row can have
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="a database id")]
PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]

bearer = HTTPBearer(auto_error=False, description="an API token from `callscope tokens create`")


def get_ctx(request: Request) -> Context:
    return request.app.state.ctx


def get_session(ctx: Annotated[Context, Depends(get_ctx)]) -> Iterator[Session]:
    with ctx.db.session() as session:
        yield session


# "function" scope: the transaction commits before the response is sent, so the request a
# redirect leads to sees what this one wrote
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ContextDep = Annotated[Context, Depends(get_ctx)]


def token_required() -> HTTPException:
    """The 401 for a request without a valid API token."""
    return HTTPException(
        401,
        "a valid API token is required (Authorization: Bearer …)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def api_user(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    """The user a bearer token acts as, or, for reading only, the signed-in browser user."""
    user = None
    if credentials:
        user = auth.user_for_token(session, credentials.credentials)
    elif request.method in ("GET", "HEAD"):
        user = security.session_user(request, session)
    if user is None:
        raise token_required()
    logs.note(user_id=user.id)
    return user


UserDep = Annotated[User, Depends(api_user)]


def ingesting_user(
    ctx: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    """The user a bearer token with the ingest scope acts as (an administrator's token). Its
    session ends here: no database connection is held while the upload's bytes arrive."""
    with ctx.db.session() as session:
        token = auth.active_token(session, credentials.credentials) if credentials else None
        if token is None:
            raise token_required()
        if token.scope != Scope.INGEST:
            raise HTTPException(
                403,
                "this token may only read: ingesting needs a token with the ingest scope "
                "(an administrator's)",
            )
        user = token.user
    logs.note(user_id=user.id)
    return user


IngestUserDep = Annotated[User, Depends(ingesting_user)]


def visible_conversation(session: Session, user: User, conversation_id: int) -> Conversation:
    """The conversation if USER may see it; 404 otherwise (its existence is not revealed)."""
    conv = session.scalar(visible_conversations(user).where(Conversation.id == conversation_id))
    if conv is None:
        raise errors.NotFound(N_("conversation %(id)s not found"), id=conversation_id)
    return conv


def correct_speakers(
    request: Request, session: Session, user: User, conversation_id: int
) -> Conversation:
    """Swap agent and customer of a conversation USER may see, as a supervisor or
    administrator (403 otherwise; 409 before it is processed)."""
    conv = visible_conversation(session, user, conversation_id)
    if not access.may(user, Action.CORRECT_SPEAKERS):
        raise HTTPException(403, "only supervisors and administrators may correct speakers")
    results.swap_speakers(session, conv.id, actor(request, user))
    return conv


def viewer_language(request: Request, user: User | None) -> str:
    """The language USER reads: their own choice, else the browser's, else English."""
    return i18n.choose(user.language if user else None, request.headers.get("accept-language"))


ZONE_COOKIE = "tz"  # the browser's time zone, set by the pages' script (app.js)


def viewer_zone(request: Request, user: User | None) -> str:
    """The time zone USER sees times in: their own choice, else their browser's, else the
    site's (CALLSCOPE_TIMEZONE)."""
    if user and i18n.known_zone(user.time_zone):
        return user.time_zone or ""
    browser = request.cookies.get(ZONE_COOKIE)
    if i18n.known_zone(browser):
        return browser or ""
    zone: str = request.app.state.ctx.settings.timezone
    return zone


def actor(request: Request, user: User) -> Actor:
    """USER acting from this request's address, for the audit log."""
    return Actor.of(user, security.client_address(request))
