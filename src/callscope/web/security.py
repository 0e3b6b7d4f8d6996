"""Protection of the pages: security headers on every answer, CSRF tokens on every form, and
throttled sign-in."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callscope import logs, telemetry
from callscope.context import Context
from callscope.db.models import AuditEvent, User
from callscope.governance import audit

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
FAILURES_PER_USER = 5
FAILURES_PER_SOURCE = 20
THROTTLE_WINDOW = timedelta(minutes=15)
# the pages load nothing from elsewhere and run no inline script; nobody may frame them
HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        b"form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
NO_STORE = (b"cache-control", b"no-store")  # pages, audio and API answers hold personal data
UNCACHED_EXCEPT = ("/static/",)


class SecurityHeaders:
    """Adds HEADERS to every answer and `Cache-Control: no-store` to all
    but the static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        extra = list(HEADERS)
        if not path.startswith(UNCACHED_EXCEPT):
            extra.append(NO_STORE)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _v in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((k, v) for k, v in extra if k not in names),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


FORM_BODY_BYTES = 1024 * 1024  # a form or JSON body; uploads go to their own routes
UPLOAD_PATHS = ("/api/v1/conversations", "/api/v1/conversations/import", "/admin/import")
UPLOAD_EXTRA_BYTES = 32 * 1024 * 1024  # metadata, an imported transcript and multipart framing


class BodyLimit:
    """Refuses a request body over its route's limit before it is read into memory or onto
    disk: FORM_BODY_BYTES, or on the upload routes the upload limit and UPLOAD_EXTRA_BYTES."""

    def __init__(self, app: ASGIApp, upload_bytes: int) -> None:
        self.app = app
        self.upload_bytes = upload_bytes + UPLOAD_EXTRA_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_bytes if scope["path"] in UPLOAD_PATHS else FORM_BODY_BYTES
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            _count(scope)
            refusal = JSONResponse({"detail": _too_large(limit)}, status_code=413)
            await refusal(scope, receive, send)
            return
        received, over = 0, False

        async def counted() -> Message:
            # a body without a length, or longer than it said: the app is told the client went
            # away, and the answer is the refusal
            nonlocal received, over
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                over = True
                return {"type": "http.disconnect"}
            return message

        async def unless_over(message: Message) -> None:
            if not over:
                await send(message)

        try:
            await self.app(scope, counted, unless_over)
        except Exception:
            if not over:
                raise
        if over:
            _count(scope)
            refusal = JSONResponse({"detail": _too_large(limit)}, status_code=413)
            await refusal(scope, receive, send)


def _count(scope: Scope) -> None:
    if scope["path"] in UPLOAD_PATHS:
        telemetry.refused("too_large")


def _too_large(limit: int) -> str:
    return f"the request body is larger than {limit // (1024 * 1024)} MiB"


def start_session(request: Request, user: User) -> None:
    """Sign USER in on this browser: a fresh session bound to their session version."""
    request.session.clear()
    request.session["user_id"] = user.id
    request.session["version"] = user.session_version


def session_user(request: Request, session: Session) -> User | None:
    """The user this browser session signed in, while it is still valid: the account exists,
    is enabled, and no sign-out, password, role or status change has ended its sessions."""
    user_id = request.session.get("user_id")
    user = session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or user.disabled or request.session.get("version") != user.session_version:
        return None
    logs.note(user_id=user.id)
    return user


def csrf_token(request: Request) -> str:
    """This browser session's CSRF token (made on first use)."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


async def csrf_protect(request: Request) -> None:
    """Refuse a state-changing request whose form field or header does not carry the token."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get("csrf")
    sent: object = request.headers.get(CSRF_HEADER)
    if sent is None and expected:  # (a body is read only for a browser session that has one)
        sent = (await request.form()).get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not secrets.compare_digest(expected, sent):
        raise HTTPException(
            403, "the form has expired or did not come from this site; reload the page and retry"
        )


def client_address(request: HTTPConnection) -> str | None:
    """The address of the client: the peer, or, when the peer is a trusted proxy
    (CALLSCOPE_TRUSTED_PROXIES), the last address before it in X-Forwarded-For."""
    peer = request.client.host if request.client else None
    trusted = request.app.state.ctx.settings.trusted_proxy_addresses
    forwarded = request.headers.get("x-forwarded-for")
    if peer in trusted and forwarded:
        for hop in reversed([h.strip() for h in forwarded.split(",")]):
            if hop and hop not in trusted:
                return hop[:64]
    return peer


def secret_key(ctx: Context) -> str:
    """The key that signs session cookies: made once, kept in the data dir (mode 600)."""
    path = ctx.settings.data_dir / "secret.key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def name_to_record(ctx: Context, session: Session, username: str) -> str:
    """USERNAME as a sign-in records it: an account's name as it is; a name no account has as
    "unknown:" and a keyed digest of it. A name nobody has is often a password typed into the
    wrong field, or an attacker's list: the audit log keeps neither, yet the same name is still
    counted against the same name."""
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        return username
    key = secret_key(ctx).encode()
    return audit.UNKNOWN_NAME + hmac.new(key, username.encode(), hashlib.sha256).hexdigest()[:16]


def throttled_for(session: Session, username: str, source: str | None) -> timedelta | None:
    """How long sign-in stays refused for USERNAME from SOURCE, or None when it is allowed.

    Failed sign-ins are read from the audit log: five for one user name from one address since
    the name's last successful sign-in, or twenty from one address, within fifteen minutes,
    refuse that name from that address (or that address) until fifteen minutes after the
    failure that tipped it. Failures elsewhere never lock an account out of its own address."""
    now = datetime.now(UTC)
    since = now - THROTTLE_WINDOW
    last_ok = session.scalar(
        select(func.max(AuditEvent.at)).where(
            AuditEvent.action == "sign_in", AuditEvent.object_id == username
        )
    )
    failed = select(AuditEvent.at).where(
        AuditEvent.action == "sign_in_failed", AuditEvent.at >= since
    )
    by_user = failed.where(AuditEvent.object_id == username, AuditEvent.source == source)
    if last_ok is not None:
        by_user = by_user.where(AuditEvent.at > last_ok)
    for query, allowed in (
        (by_user, FAILURES_PER_USER),
        (failed.where(AuditEvent.source == source), FAILURES_PER_SOURCE),
    ):
        tipping = session.scalar(query.order_by(AuditEvent.at.desc()).offset(allowed - 1).limit(1))
        if tipping is not None:
            return tipping + THROTTLE_WINDOW - now
    return None
