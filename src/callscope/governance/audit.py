"""The audit log: an append-only record of who did what to which object, when, from where.

Entries name objects by id and never copy their content (no customer names, no transcript
text), so erasing a customer leaves the log intact and free of what was erased.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from callscope.db.models import AuditEvent, User
from callscope.i18n import N_

# what each action means, as the audit page says it
ACTIONS = {
    "sign_in": N_("signed in"),
    "sign_in_failed": N_("failed to sign in (wrong name or password, or throttled)"),
    "sign_out": N_("signed out"),
    "conversation.view": N_("opened a conversation (page or analysis API)"),
    "recording.play": N_("started playing a recording (first play of a page view)"),
    "recording.download": N_("downloaded a recording's audio"),
    "transcript.download": N_("downloaded a transcript"),
    "conversation.export": N_("exported a conversation (JSON, WebVTT, SRT) or a list (CSV)"),
    "scorecard.export": N_("downloaded a scorecard's weeks (CSV)"),
    "conversation.legal_hold": N_("put a conversation on legal hold or released it"),
    "recording.purge": N_("retention removed a recording's audio and transcript"),
    "conversation.delete": N_("retention or erasure deleted a whole conversation"),
    "customer.erase": N_("erased everything about a customer"),
    "setting.change": N_("changed a setting"),
    "user.create": N_("created a user"),
    "user.change": N_("changed a user's role, queues, agent or language"),
    "user.disable": N_("disabled or re-enabled a user"),
    "user.password": N_("set a user's password"),
    "token.create": N_("created an API token"),
    "token.revoke": N_("revoked an API token"),
    "webhook.create": N_("registered a webhook"),
    "webhook.delete": N_("removed a webhook"),
    "queue.vocabulary": N_("set the custom vocabulary of a queue"),
    "conversation.swap_speakers": N_("swapped the agent and customer of a conversation"),
    "conversation.recompute": N_("computed a conversation's sentiment again"),
    "category.add": N_("added a category"),
    "category.change": N_("changed a category"),
    "category.remove": N_("removed a category"),
    "category.apply": N_("applied the categories to the stored calls again"),
    "comment.add": N_("commented on a conversation"),
    "comment.resolve": N_("resolved a comment or opened it again"),
    "evaluation_form.import": N_("imported an evaluation form"),
    "evaluation.submit": N_("evaluated a conversation"),
    "evaluation.acknowledge": N_("acknowledged an evaluation"),
    "evaluation.dispute": N_("disputed an evaluation"),
    "evaluation.answer": N_("answered the dispute of an evaluation"),
    "evaluation.amend": N_("amended an evaluation"),
    "evaluation.sample": N_("sampled calls for supervisors to evaluate"),
    "live.start": N_("started streaming a live call"),
    "live.view": N_("watched a live call"),
}


@dataclass(frozen=True)
class Actor:
    """Who acts: a user or token (with the address), the command line, or the system."""

    user_id: int | None
    name: str
    source: str | None = None

    @classmethod
    def of(cls, user: User, source: str | None = None) -> Actor:
        return cls(user.id, user.username, source)

    @classmethod
    def cli(cls) -> Actor:
        return cls(None, f"cli:{getpass.getuser()}", "command line")

    @classmethod
    def system(cls, what: str) -> Actor:
        return cls(None, f"system:{what}", None)


# the name a failed sign-in records when no account has the name typed (then a keyed digest):
# the audit page shows all such names as one
UNKNOWN_NAME = "unknown:"


def actors(session: Session) -> list[str]:
    """Who the entries name, each once, with every name no account had as one UNKNOWN_NAME
    (a spray of made-up names would otherwise list each)."""
    named = session.scalars(
        select(AuditEvent.actor)
        .where(AuditEvent.actor.not_like(f"{UNKNOWN_NAME}%"))
        .distinct()
        .order_by(AuditEvent.actor)
    ).all()
    unknown = session.scalar(
        select(AuditEvent.id).where(AuditEvent.actor.like(f"{UNKNOWN_NAME}%")).limit(1)
    )
    return [*named, *([UNKNOWN_NAME] if unknown is not None else [])]


def record(
    session: Session,
    actor: Actor,
    action: str,
    object_type: str | None = None,
    object_id: object = None,
    **details: Any,
) -> None:
    """Append an entry (it is written with the session's other changes, or not at all)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    session.add(
        AuditEvent(
            user_id=actor.user_id,
            actor=actor.name,
            action=action,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id),
            source=actor.source,
            details=details,
        )
    )


def query(
    *,
    actor: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[AuditEvent]:
    """Entries matching the filters, newest first."""
    q = select(AuditEvent)
    if actor == UNKNOWN_NAME:
        q = q.where(AuditEvent.actor.like(f"{UNKNOWN_NAME}%"))
    elif actor:
        q = q.where(AuditEvent.actor == actor)
    if action:
        q = q.where(AuditEvent.action == action)
    if object_type:
        q = q.where(AuditEvent.object_type == object_type)
    if object_id:
        q = q.where(AuditEvent.object_id == object_id)
    if since:
        q = q.where(AuditEvent.at >= since)
    if until:
        q = q.where(AuditEvent.at < until)
    return q.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())


def as_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.isoformat().replace("+00:00", "Z"),
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "source": event.source,
        "details": event.details,
    }
