"""Webhooks: when a conversation's processing finishes or fails, every registered URL
gets a signed JSON POST, retried with back-off until it answers 2xx.

The body is signed with the webhook's secret: header `X-Callscope-Signature: t=TIMESTAMP,
v1=HEX`, where HEX is HMAC-SHA256 over `TIMESTAMP.BODY`; a receiver recomputes it and rejects
old timestamps to refuse replays. Deliveries are rows: an event is stored with the job's result
in the same transaction, so it cannot be lost, and workers send what is due.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import secrets
import socket
import ssl
import threading
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callscope import errors, telemetry
from callscope.context import Context
from callscope.db import rows_changed
from callscope.db.models import Conversation, LiveCall, Webhook, WebhookDelivery, utcnow
from callscope.governance import audit
from callscope.governance.audit import Actor
from callscope.review import search

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Callscope-Signature"
MAX_ATTEMPTS = 8
TIMEOUT_S = 10.0
LEASE = timedelta(minutes=2)  # a delivery being sent is not picked up by another worker


class WebhookError(errors.Refused):
    """A webhook that cannot be registered or found; the message says why."""


class UnknownWebhook(WebhookError, errors.NotFound):
    """No webhook with that id."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def add(session: Session, actor: Actor, url: str) -> tuple[Webhook, str]:
    """Register URL; returns the webhook and its secret (shown once). Administrators are
    trusted with where events go: an internal address is accepted (docs/administration.md)."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # ("http://[::1": an address not closed)
        raise WebhookError(f"{url[:100]!r} is not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(f"a webhook URL must be http:// or https:// with a host, not {url!r}")
    if any(c.isspace() or not c.isprintable() for c in url) or len(url) > 2000:
        raise WebhookError(
            f"a webhook URL may not contain spaces or control characters: {url[:100]!r}"
        )
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise WebhookError(f"the port of {url[:100]!r} is not a port number") from exc
    try:
        parts.hostname.encode("idna")  # (empty labels, labels over 63 letters)
    except UnicodeError as exc:
        raise WebhookError(f"the host of {url[:100]!r} is not a host name") from exc
    if not (parts.path + parts.query).isascii():
        raise WebhookError(
            f"a webhook URL's path and query must be ASCII (percent-encode the rest): {url[:100]!r}"
        )
    hook = Webhook(url=url, secret=secrets.token_urlsafe(32))
    session.add(hook)
    session.flush()
    audit.record(session, actor, "webhook.create", "webhook", hook.id)
    return hook, hook.secret


def remove(session: Session, actor: Actor, webhook_id: int) -> None:
    hook = session.get(Webhook, webhook_id)
    if hook is None:
        raise UnknownWebhook(f"no webhook {webhook_id}")
    session.delete(hook)
    audit.record(session, actor, "webhook.delete", "webhook", webhook_id)


def enqueue(session: Session, conversation: Conversation, status: str, error: str | None) -> None:
    """Store a `conversation.processed` or `conversation.failed` event for every webhook."""
    _to_every_webhook(
        session,
        f"conversation.{status}",
        {
            "conversation": {
                "id": conversation.id,
                "external_id": conversation.external_id,
                "status": status,
                "error": error,
                "analysis": f"/api/v1/conversations/{conversation.id}/analysis",
                "categories": search.categories_of(session, [conversation.id]).get(
                    conversation.id, []
                ),
            },
        },
        conversation.id,
    )


def alert(session: Session, live_call: LiveCall, category: str, moment: dict[str, Any]) -> None:
    """Store a `conversation.alert` event for every webhook: a live call matched CATEGORY."""
    _to_every_webhook(
        session,
        "conversation.alert",
        {
            "live_call": {
                "id": live_call.id,
                "external_id": live_call.external_id,
                "url": f"/live/{live_call.id}",
            },
            "alert": {"category": category, **moment},
        },
        None,
    )


def _to_every_webhook(
    session: Session, event: str, body: dict[str, Any], conversation_id: int | None
) -> None:
    payload = {"event": event, "occurred_at": utcnow().isoformat().replace("+00:00", "Z"), **body}
    for webhook_id in session.scalars(select(Webhook.id)):
        session.add(
            WebhookDelivery(
                webhook_id=webhook_id,
                event=event,
                conversation_id=conversation_id,
                payload=payload,
            )
        )


def post(url: str, body: bytes, headers: dict[str, str], deadline_s: float | None = None) -> int:
    """POST BODY to URL; the HTTP status of the answer (an OSError when none came within
    DEADLINE_S, by default TIMEOUT_S, in all: a receiver that trickles its answer is cut off).
    Redirects are not followed: the event goes to the URL registered, or nowhere."""
    deadline_s = TIMEOUT_S if deadline_s is None else deadline_s
    parts = urlsplit(url)
    connection = (
        http.client.HTTPSConnection(
            parts.hostname or "",
            parts.port,
            timeout=deadline_s,
            context=ssl.create_default_context(),
        )
        if parts.scheme == "https"
        else http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=deadline_s)
    )
    cut = threading.Event()  # set when the deadline passed and the connection was shut

    def cut_off() -> None:
        cut.set()
        if connection.sock is not None:  # the blocked read in this thread ends
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(deadline_s, cut_off)
    timer.start()
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", target, body=body, headers=headers)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        if cut.is_set():
            raise TimeoutError(f"no whole answer within {deadline_s:.0f} s") from exc
        if isinstance(exc, OSError):
            raise
        raise OSError(f"a broken answer ({type(exc).__name__}: {exc})") from exc
    finally:
        timer.cancel()
        connection.close()
    if cut.is_set():  # (a shut socket can read as the end of the headers: not an answer)
        raise TimeoutError(f"no whole answer within {deadline_s:.0f} s")
    return status


def deliver_due(ctx: Context) -> int:
    """Send every delivery that is due; returns how many were attempted."""
    now = utcnow()
    with ctx.db.session() as session:
        due = session.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.id)
            .limit(50)
        ).all()
    return sum(_attempt(ctx, delivery_id, now) for delivery_id in due)


def _attempt(ctx: Context, delivery_id: int, now: Any) -> bool:
    with ctx.db.session() as session:
        # take the delivery (another worker may be sending it): push its due time past a lease
        taken = rows_changed(
            session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery_id,
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + LEASE)
                .execution_options(synchronize_session=False)
            )
        )
        if not taken:
            return False
        delivery = session.get_one(WebhookDelivery, delivery_id)
        hook = session.get_one(Webhook, delivery.webhook_id)  # (removing it removes this)
        url, secret = hook.url, hook.secret
        body = json.dumps({"delivery": delivery.id, **delivery.payload}).encode()
        event = delivery.event
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "callscope-webhooks",
        "X-Callscope-Event": event,
        "X-Callscope-Delivery": str(delivery_id),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }
    code, error = None, None
    try:
        code = post(url, body, headers)
        if 300 <= code < 400:
            error = f"answered HTTP {code}: a redirect, which is not followed"
        elif not 200 <= code < 300:
            error = f"answered HTTP {code}"
    except (OSError, ValueError) as exc:  # (a URL stored before it was checked: failed too)
        error = f"{type(exc).__name__}: {exc}"
    with ctx.db.session() as session:
        found = session.get(WebhookDelivery, delivery_id)
        if found is None:  # the webhook was removed meanwhile (ids are never reused)
            return True
        delivery = found
        delivery.attempts += 1
        delivery.last_status_code, delivery.last_error = code, error
        if error is None:
            delivery.status, delivery.delivered_at = "delivered", utcnow()
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = "failed"
        else:  # back off: base, 2×, 4× … (30 s, 1 min, 2 min … by default)
            base = ctx.settings.webhook_retry_base_s
            delivery.next_attempt_at = utcnow() + timedelta(
                seconds=base * 2 ** (delivery.attempts - 1)
            )
        outcome = "retrying" if delivery.status == "pending" else delivery.status
    telemetry.WEBHOOK_DELIVERIES.labels(outcome).inc()
    if error:
        log.warning("webhook delivery %s to %s: %s", delivery_id, url, error)
    return True
