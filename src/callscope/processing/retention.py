"""Retention, legal hold and erasure (docs/administration.md#retention-legal-hold-and-erasure).

Rows change first, in one transaction with their audit entry; media files are deleted after it
commits, and only those no remaining recording refers to (originals are content-addressed and
may be shared). A failed file deletion leaves an unreferenced file, never a row without its file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from callscope import errors
from callscope.context import Context
from callscope.db import Database
from callscope.db.models import (
    Contact,
    Conversation,
    Recording,
    Segment,
    WebhookDelivery,
    utcnow,
)
from callscope.governance import audit, policy
from callscope.governance.audit import Actor
from callscope.review import refresh, search
from callscope.store import MediaStore, blob_key


class ErasureError(errors.Conflict):
    """An erasure or hold that cannot be done; the message says why."""


class NothingToErase(ErasureError, errors.NotFound):
    """No such conversation or customer."""


@dataclass
class Removed:
    """What a retention run or an erasure removed."""

    conversations: list[int] = field(default_factory=list)
    recordings: list[int] = field(default_factory=list)
    files: int = 0


def recording_keys(rec: Recording | None) -> list[str]:
    """The media keys of a recording: original, playback rendition, waveform peaks, and the
    unredacted rendition kept for administrators."""
    if rec is None or rec.purged_at is not None:
        return []
    keys = (blob_key(rec.sha256), rec.playback_key, rec.peaks_key, rec.original_playback_key)
    return [k for k in keys if k]


def delete_unreferenced(
    db: Database, store: MediaStore, keys: Iterable[str], ignoring: int | None = None
) -> int:
    """Delete the media files of KEYS that no live recording (but IGNORING, a recording id)
    refers to; how many went."""
    deleted = 0
    with db.session() as session:
        for key in keys:
            used = session.scalar(
                select(Recording.id)
                .where(
                    Recording.purged_at.is_(None),
                    Recording.id != (ignoring or 0),
                    or_(
                        Recording.playback_key == key,
                        Recording.peaks_key == key,
                        Recording.original_playback_key == key,
                        Recording.sha256 == key.rsplit("/", 1)[-1],
                    ),
                )
                .limit(1)
            )
            if used is None and store.exists(key):
                store.delete(key)
                deleted += 1
    return deleted


def _purge_recording(session: Session, conv: Conversation) -> list[str]:
    """Remove a conversation's audio, if it has any, and transcript (and what quotes it);
    metadata, sentiment, metrics, categories and comments stay."""
    rec = conv.recording
    keys = recording_keys(rec)
    session.execute(delete(Segment).where(Segment.conversation_id == conv.id))
    refresh.removed(session, [conv.id])  # and what quotes the transcript
    if rec is not None:
        rec.purged_at = utcnow()
        rec.playback_key = rec.peaks_key = None
    return keys


def _delete_conversation(session: Session, conv: Conversation) -> list[str]:
    """Delete a conversation; the database cascades to its sessions, recording, transcript,
    analysis and jobs."""
    keys = recording_keys(conv.recording)
    refresh.removed(session, [conv.id])
    # events about it, sent or not, go too (they name it and are kept by id only)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.conversation_id == conv.id))
    session.execute(delete(Conversation).where(Conversation.id == conv.id))
    return keys


def purge_expired(ctx: Context, now: datetime | None = None) -> Removed:
    """Apply the retention setting: remove recordings (or whole conversations) started more
    than retention.days ago, except those on legal hold."""
    removed = Removed()
    keys: list[str] = []
    with ctx.db.session() as session:
        days = policy.get(session, "retention.days")
        mode = policy.get(session, "retention.mode")
        if days <= 0:
            return removed
        cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
        query = select(Conversation).where(
            Conversation.started_at < cutoff, Conversation.legal_hold.is_(False)
        )
        if mode == "recordings":  # (a call imported without audio: its transcript, once)
            words = select(Segment.id).where(Segment.conversation_id == Conversation.id)
            query = query.outerjoin(Recording).where(
                or_(
                    and_(Recording.id.is_not(None), Recording.purged_at.is_(None)),
                    and_(Recording.id.is_(None), words.exists()),
                )
            )
        whole = mode == "conversations"
        remove = _delete_conversation if whole else _purge_recording
        action = "conversation.delete" if whole else "recording.purge"
        done = removed.conversations if whole else removed.recordings
        for conv in session.scalars(query).all():
            keys += remove(session, conv)
            done.append(conv.id)
            audit.record(
                session,
                Actor.system("retention"),
                action,
                "conversation",
                conv.id,
                reason=f"older than {days} days",
            )
        if done:
            search.compact(session)
    removed.files = delete_unreferenced(ctx.db, ctx.store, keys)
    return removed


def set_legal_hold(session: Session, actor: Actor, conversation_id: int, hold: bool) -> None:
    """Exempt a conversation from retention and erasure, or release it."""
    conv = session.get(Conversation, conversation_id)
    if conv is None:
        raise NothingToErase(f"conversation {conversation_id} not found")
    conv.legal_hold = hold
    audit.record(session, actor, "conversation.legal_hold", "conversation", conv.id, hold=hold)


def erase_customer(ctx: Context, actor: Actor, external_id: str) -> Removed:
    """Remove a customer and everything about them: conversations with their recordings,
    transcripts, sentiment and metrics, and the contact record. Refused while any of their
    conversations is on legal hold."""
    removed = Removed()
    with ctx.db.session() as session:
        contact = session.scalar(select(Contact).where(Contact.external_id == external_id))
        if contact is None:
            raise NothingToErase(f"no customer with external id {external_id!r}")
        conversations = session.scalars(
            select(Conversation).where(Conversation.contact_id == contact.id)
        ).all()
        held = [c.id for c in conversations if c.legal_hold]
        if held:
            raise ErasureError(
                f"customer {external_id!r} has conversations on legal hold"
                f" ({', '.join(map(str, held))}); release the hold first"
            )
        keys: list[str] = []
        for conv in conversations:
            keys += _delete_conversation(session, conv)
            removed.conversations.append(conv.id)
        audit.record(
            session,
            actor,
            "customer.erase",
            "contact",
            contact.id,
            conversations=removed.conversations,
        )
        session.execute(delete(Contact).where(Contact.id == contact.id))
        search.compact(session)
    removed.files = delete_unreferenced(ctx.db, ctx.store, keys)
    return removed
