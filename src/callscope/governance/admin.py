"""Administrator actions, each written with its audit entry (the pages and the CLI call these)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callscope import errors
from callscope.db.models import Agent, ApiToken, Queue, User, utcnow
from callscope.governance import audit, auth, policy
from callscope.governance.audit import Actor
from callscope.vocabulary import Role


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise auth.UnknownUser(f"no user {user_id}")
    return user


def user_by_name(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise auth.UnknownUser(f"no user {username!r}")
    return user


def create_user(
    session: Session,
    actor: Actor,
    username: str,
    role: str,
    password: str,
    agent_external_id: str | None = None,
    queue_ids: list[int] | None = None,
) -> User:
    user = auth.add_user(session, username.strip(), role, password, agent_external_id or None)
    if queue_ids:
        set_queues(session, user, queue_ids)
    audit.record(session, actor, "user.create", "user", user.id, role=role)
    return user


def set_queues(session: Session, user: User, queue_ids: list[int]) -> None:
    queues = session.scalars(select(Queue).where(Queue.id.in_(queue_ids))).all()
    if len(queues) != len(set(queue_ids)):
        raise auth.UserError("one of the chosen queues does not exist")
    user.queues = list(queues)


def update_user(
    session: Session,
    actor: Actor,
    user_id: int,
    role: str,
    agent_external_id: str | None,
    queue_ids: list[int],
) -> User:
    """Change a user's role, linked agent and supervised queues."""
    user = _user(session, user_id)
    if role not in auth.ROLES:
        raise auth.UserError(f"role must be one of {', '.join(auth.ROLES)}, not {role!r}")
    if role == Role.AGENT and not agent_external_id:
        raise auth.UserError("an agent account needs the agent's external id")
    if user.role == Role.ADMIN and role != Role.ADMIN:
        _keep_an_admin(session, user)
    agent = None
    if agent_external_id:
        agent = session.scalar(select(Agent).where(Agent.external_id == agent_external_id))
        if agent is None:
            agent = Agent(external_id=agent_external_id, name=user.username)
    if (role, agent) != (user.role, user.agent):
        auth.end_sessions(user)  # (what the sessions were allowed is no longer so)
    user.role, user.agent = role, agent
    set_queues(session, user, queue_ids if role == Role.SUPERVISOR else [])
    audit.record(
        session,
        actor,
        "user.change",
        "user",
        user.id,
        role=role,
        agent=agent_external_id or None,
        queues=sorted(queue_ids) if role == Role.SUPERVISOR else [],
    )
    return user


def _keep_an_admin(session: Session, user: User) -> None:
    others = session.scalar(
        select(User.id).where(User.role == Role.ADMIN, User.disabled.is_(False), User.id != user.id)
    )
    if others is None:
        raise auth.UserError(f"{user.username} is the only active administrator")


def set_disabled(session: Session, actor: Actor, user_id: int, disabled: bool) -> User:
    """Disable a user (their sign-in, sessions and API tokens stop working) or re-enable them."""
    user = _user(session, user_id)
    if disabled and user.role == Role.ADMIN:
        _keep_an_admin(session, user)
    user.disabled = disabled
    auth.end_sessions(user)
    audit.record(session, actor, "user.disable", "user", user.id, disabled=disabled)
    return user


def set_password(session: Session, actor: Actor, user_id: int, password: str) -> User:
    user = _user(session, user_id)
    auth.check_password(password)
    user.password_hash = auth.hash_password(password)
    auth.end_sessions(user)
    audit.record(session, actor, "user.password", "user", user.id)
    return user


def create_token(
    session: Session, actor: Actor, username: str, name: str, scope: str | None = None
) -> str:
    """A new API token acting as USERNAME (with SCOPE, see `auth.create_token`); the plain
    token is returned once."""
    if not name.strip():
        raise auth.UserError("a token needs a name")
    token = auth.create_token(session, username, name.strip(), scope)
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == auth.digest(token))).one()
    audit.record(
        session, actor, "token.create", "api_token", row.id, user=username, scope=row.scope
    )
    return token


def revoke_token(session: Session, actor: Actor, token_id: int) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise auth.UnknownUser(f"no API token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(session, actor, "token.revoke", "api_token", row.id)
    return row


MAX_QUEUE_NAME = 200
MAX_TERM_CHARS = 100
MAX_VOCABULARY_CHARS = 1000  # the recogniser reads about 220 tokens of hints


class VocabularyError(errors.Refused):
    """A queue name or custom vocabulary that cannot be used; the message says why."""


def vocabulary_terms(text: str) -> list[str]:
    """The terms of a custom vocabulary as typed (separated by commas or new lines), trimmed,
    repeats dropped; refused when a term or the whole is too long or holds control characters."""
    terms: list[str] = []
    for raw in re.split(r"[,\n]", text):
        term = " ".join(raw.split())
        if re.search(r"[\x00-\x1f\x7f]", term):
            raise VocabularyError("a vocabulary term holds a control character")
        if len(term) > MAX_TERM_CHARS:
            raise VocabularyError(
                f"vocabulary term {term[:40]!r}… is longer than {MAX_TERM_CHARS} characters"
            )
        if term and term.casefold() not in {t.casefold() for t in terms}:
            terms.append(term)
    if len(", ".join(terms)) > MAX_VOCABULARY_CHARS:
        raise VocabularyError(
            f"the vocabulary is longer than {MAX_VOCABULARY_CHARS} characters: keep the names "
            "the recogniser gets wrong"
        )
    return terms


def set_vocabulary(session: Session, actor: Actor, queue_name: str, text: str) -> Queue:
    """Give the queue QUEUE_NAME (created if new) the custom vocabulary TEXT ("" for none);
    it applies to calls of that queue processed from now on."""
    name = " ".join(queue_name.split())
    if not name or len(name) > MAX_QUEUE_NAME:
        raise VocabularyError(f"a queue name has 1 to {MAX_QUEUE_NAME} characters")
    terms = vocabulary_terms(text)
    queue = session.scalar(select(Queue).where(Queue.name == name))
    if queue is None:
        queue = Queue(name=name)
        session.add(queue)
    queue.vocabulary = ", ".join(terms) or None
    session.flush()
    audit.record(session, actor, "queue.vocabulary", "queue", queue.id, terms=len(terms))
    return queue


def change_setting(session: Session, actor: Actor, key: str, value: Any) -> bool:
    """Set a setting; whether it changed (only a change is audited)."""
    before = policy.get(session, key)
    policy.set_value(session, key, value)
    if before == value:
        return False
    audit.record(session, actor, "setting.change", "setting", key, old=before, new=value)
    return True
