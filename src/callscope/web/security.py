"""Protection of the pages: CSRF tokens on every form, and throttled sign-in."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from fastapi import HTTPException, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callscope.db.models import AuditEvent

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
FAILURES_PER_USER = 5
FAILURES_PER_SOURCE = 20
THROTTLE_WINDOW = timedelta(minutes=15)


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
    if sent is None:
        sent = (await request.form()).get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not secrets.compare_digest(expected, sent):
        raise HTTPException(
            403, "the form has expired or did not come from this site; reload the page and retry"
        )


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def throttled_for(session: Session, username: str, source: str | None) -> timedelta | None:
    """How long sign-in stays refused for USERNAME from SOURCE, or None when it is allowed.

    Failed sign-ins are read from the audit log: five for one user name since its last
    successful sign-in, or twenty from one address, within fifteen minutes, lock that name
    (or address) until fifteen minutes after the failure that tipped it."""
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
    by_user = failed.where(AuditEvent.object_id == username)
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
