"""Who may do what, in one place: which conversations a user sees (`visible_conversations`)
and whether a user may take an action (`may`). Routes, commands and domain functions ask here;
templates receive the answers as flags (`flags`), never comparing roles themselves.

See docs/administration.md#who-sees-what.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, false, select, union
from sqlalchemy.orm import Session

from callscope.db.models import (
    Conversation,
    ConversationSession,
    LiveCall,
    User,
    supervised_queues,
)
from callscope.governance import policy
from callscope.vocabulary import Role


class Action(StrEnum):
    """What a user may or may not do, beyond seeing the calls `visible_conversations` gives."""

    ADMINISTER = "administer"  # users, tokens, settings, audit, categories, forms, erasure
    EVALUATE = "evaluate"  # evaluate calls (not their own), sample calls to evaluate
    ANSWER_DISPUTE = "answer_dispute"  # answer an agent's dispute of an evaluation
    CORRECT_SPEAKERS = "correct_speakers"  # swap agent and customer of a call
    SEE_COLLEAGUES = "see_colleagues"  # other agents' calls, evaluations and figures one by one
    SEE_ORIGINALS = "see_originals"  # the unredacted audio and words kept beside redacted ones
    RESOLVE_COMMENTS = "resolve_comments"  # resolve anyone's comment thread (else one's own)
    DOWNLOAD_AUDIO = "download_audio"  # as the administrator's downloads.audio setting says
    DOWNLOAD_TRANSCRIPT = "download_transcript"  # as downloads.transcript says


SUPERVISING = (Role.SUPERVISOR, Role.ADMIN)
ROLES: dict[Action, tuple[Role, ...]] = {
    Action.ADMINISTER: (Role.ADMIN,),
    Action.EVALUATE: SUPERVISING,
    Action.ANSWER_DISPUTE: SUPERVISING,
    Action.CORRECT_SPEAKERS: SUPERVISING,
    Action.SEE_COLLEAGUES: SUPERVISING,
    Action.SEE_ORIGINALS: (Role.ADMIN,),
    Action.RESOLVE_COMMENTS: SUPERVISING,
}
# actions an administrator's setting decides: the roles it names
SETTINGS = {
    Action.DOWNLOAD_AUDIO: "downloads.audio",
    Action.DOWNLOAD_TRANSCRIPT: "downloads.transcript",
}


def may(user: User, action: Action, session: Session | None = None) -> bool:
    """Whether USER may take ACTION (the actions a setting decides read it through SESSION)."""
    if action in SETTINGS:
        if session is None:
            raise TypeError(f"{action} depends on a setting: pass the session")
        return user.role in policy.DOWNLOADERS[policy.get(session, SETTINGS[action])]
    return user.role in ROLES[action]


def flags(user: User | None) -> dict[str, bool]:
    """Every action that depends on the role alone, as the pages' templates read it
    (`can.administer`); nothing for a visitor who has not signed in."""
    return {action.value: user is not None and may(user, action) for action in ROLES}


VIEWING_OFF = "viewing recordings and transcripts is switched off by the administrator"


def transcript_withheld(session: Session, user: User) -> str | None:
    """Why USER may not have a transcript's text as data (the API's analysis document,
    exports), or None: viewing is off, or the role may not download transcripts."""
    if not policy.get(session, "recordings.enabled"):
        return VIEWING_OFF
    if not may(user, Action.DOWNLOAD_TRANSCRIPT, session):
        return f"downloading transcripts is not allowed for your role ({user.role})"
    return None


def supervised(user: User) -> Select[tuple[int]] | None:
    """The ids of the queues whose calls USER sees as a supervisor; None for every queue (an
    administrator), or no queue at all (an agent: `visible_conversations` says which calls)."""
    if user.role == Role.SUPERVISOR:
        return select(supervised_queues.c.queue_id).where(supervised_queues.c.user_id == user.id)
    return None


def supervisors_of(queue_id: int | None) -> Select[User]:
    """The enabled supervisors of a queue, in the order they were created."""
    return (
        select(User)
        .join(supervised_queues, supervised_queues.c.user_id == User.id)
        .where(
            supervised_queues.c.queue_id == queue_id,
            User.role == Role.SUPERVISOR,
            User.disabled.is_(False),
        )
        .order_by(User.id)
    )


def first_administrator() -> Select[str]:
    """The username of the first enabled administrator."""
    return (
        select(User.username)
        .where(User.role == Role.ADMIN, User.disabled.is_(False))
        .order_by(User.id)
        .limit(1)
    )


def _scoped(query: Select[Any], user: User, queue: Any, own: Callable[[int], Any]) -> Select[Any]:
    """QUERY narrowed to what USER may see: all (an administrator), the rows whose QUEUE
    column is a queue they supervise, or an agent's own (OWN(agent_id) is the condition)."""
    if user.role == Role.ADMIN:
        return query
    queues = supervised(user)
    if queues is not None:
        return query.where(queue.in_(queues))
    if user.agent_id is None:
        return query.where(false())
    return query.where(own(user.agent_id))


def visible_live_calls(user: User) -> Select[LiveCall]:
    """A query of the live calls USER may watch: as `visible_conversations`, by the agent and
    queue the call's metadata names."""
    return _scoped(select(LiveCall), user, LiveCall.queue_id, lambda a: LiveCall.agent_id == a)


def visible_conversations(user: User) -> Select[Conversation]:
    """A query of the conversations USER may see: own calls, supervised queues, or all."""

    def handled(agent_id: int) -> Any:
        # one id list (a union) rather than an OR: planners estimate it well, so a search
        # within an agent's calls stays fast
        return Conversation.id.in_(
            union(
                select(ConversationSession.conversation_id).where(
                    ConversationSession.agent_id == agent_id
                ),
                select(Conversation.id).where(Conversation.primary_agent_id == agent_id),
            )
        )

    return _scoped(select(Conversation), user, Conversation.queue_id, handled)
