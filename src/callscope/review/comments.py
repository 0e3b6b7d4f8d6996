"""Comments at a moment of a call: anyone who may see the call may comment and reply, and
resolve a thread they started (supervisors and administrators any thread); audited, and erased
with the call. While viewing transcripts is switched off, comments (which quote and point at
what was said) are neither shown nor added."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callscope import errors
from callscope.db.models import Comment, ConversationAnalysis, Recording, User
from callscope.governance import access, audit, policy
from callscope.governance.access import Action

MAX_CHARS = 2000


class CommentError(errors.Refused):
    """A comment that cannot be kept; the message names the field."""


class UnknownComment(CommentError, errors.NotFound):
    """No such comment on that conversation."""


class CommentNotAllowed(CommentError, errors.NotAllowed):
    """A comment the user may not add or resolve; the message says why."""


def _viewing(session: Session) -> None:
    if not policy.get(session, "recordings.enabled"):
        raise CommentNotAllowed(f"comments: {access.VIEWING_OFF}")


def add(
    session: Session,
    actor: audit.Actor,
    conversation_id: int,
    at_s: float,
    text: str,
    reply_to: int | None = None,
) -> Comment:
    """A comment at AT_S seconds of the (visible) conversation, or a reply to one of its
    comments (a reply to a reply answers the first comment)."""
    _viewing(session)
    text = text.strip()
    if not text:
        raise CommentError("text: write something")
    if len(text) > MAX_CHARS:
        raise CommentError(f"text: at most {MAX_CHARS} characters")
    end = _end_s(session, conversation_id)
    if not 0 <= at_s <= end + 1:
        raise CommentError(f"at_s: a moment of the call, 0 to {end:.0f} seconds")
    if reply_to is not None:
        parent = _comment(session, conversation_id, reply_to, "reply_to")
        reply_to = parent.reply_to or parent.id
    comment = Comment(
        conversation_id=conversation_id,
        reply_to=reply_to,
        user_id=actor.user_id,
        author=actor.name,
        at_s=round(at_s, 3),
        text=text,
        resolved=False,
    )
    session.add(comment)
    session.flush()
    audit.record(session, actor, "comment.add", "conversation", conversation_id, comment=comment.id)
    return comment


def resolve(
    session: Session,
    actor: audit.Actor,
    user: User,
    conversation_id: int,
    comment_id: int,
    resolved: bool,
) -> Comment:
    """Mark a comment (and its thread) resolved, or open it again: its author may, and whoever
    may resolve anyone's (a coach's note is not closed by the agent it was written for)."""
    _viewing(session)
    comment = _comment(session, conversation_id, comment_id, "comment")
    if comment.reply_to is not None:
        raise CommentError("comment: resolve the first comment of a thread, not a reply")
    if comment.user_id != user.id and not access.may(user, Action.RESOLVE_COMMENTS):
        raise CommentNotAllowed(
            "comment: only its author or a supervisor may resolve or reopen this thread"
        )
    comment.resolved = resolved
    audit.record(
        session,
        actor,
        "comment.resolve",
        "conversation",
        conversation_id,
        comment=comment.id,
        resolved=resolved,
    )
    return comment


def _comment(session: Session, conversation_id: int, comment_id: int, field: str) -> Comment:
    comment = session.get(Comment, comment_id)
    if comment is None or comment.conversation_id != conversation_id:
        raise UnknownComment(f"{field}: no comment {comment_id} on this conversation")
    return comment


def _end_s(session: Session, conversation_id: int) -> float:
    """When the call ends: the recording's length, else the transcript's metrics span."""
    duration = session.scalar(
        select(Recording.duration_s).where(Recording.conversation_id == conversation_id)
    )
    if duration:
        return float(duration)
    metrics = session.scalar(
        select(ConversationAnalysis.metrics).where(
            ConversationAnalysis.conversation_id == conversation_id
        )
    )
    return float(((metrics or {}).get("span_s") or {}).get("end_s") or 0.0)


def as_dict(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "author": comment.author,
        "at_s": comment.at_s,
        "text": comment.text,
        "created_at": comment.created_at.isoformat().replace("+00:00", "Z"),
        "resolved": comment.resolved,
    }


def thread(session: Session, conversation_id: int) -> list[dict[str, Any]]:
    """The conversation's comments in time order, each with its replies (none while viewing
    transcripts is switched off)."""
    if not policy.get(session, "recordings.enabled"):
        return []
    rows = session.scalars(
        select(Comment)
        .where(Comment.conversation_id == conversation_id)
        .order_by(Comment.at_s, Comment.id)
    ).all()
    firsts = {c.id: {**as_dict(c), "replies": []} for c in rows if c.reply_to is None}
    for reply in sorted((c for c in rows if c.reply_to is not None), key=lambda c: c.id):
        if reply.reply_to in firsts:
            firsts[reply.reply_to]["replies"].append(as_dict(reply))
    return list(firsts.values())
