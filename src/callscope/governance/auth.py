"""Users, password hashes (argon2) and API tokens (stored as SHA-256 digests)."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from callscope import errors
from callscope.config import Settings, get_settings
from callscope.db.models import Agent, ApiToken, User, utcnow
from callscope.i18n import N_
from callscope.vocabulary import Role, Scope

ROLES = tuple(role.value for role in Role)
# why the company's sign-in may not let someone in (shown in their language)
NOT_IN_A_GROUP = N_(
    "Your company account is in none of the groups callscope admits: ask an administrator to"
    " add you."
)
NO_AGENT_ID = N_(
    "Your company account has no agent id, which an agent needs: ask an administrator."
)
DISABLED = N_("Your callscope account is disabled: ask an administrator.")
NAME_TAKEN = N_(
    "Another callscope account has your user name already: an administrator must rename or"
    " remove it first."
)
SSO_ONLY = "!single-sign-on"  # the password "hash" of an account that signs in only through SSO
TOKEN_PREFIX = "cs_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


class UserError(errors.Refused):
    """A user or token operation that cannot be done; the message says why."""


class UnknownUser(UserError, errors.NotFound):
    """No such user (or API token)."""


class NotAdmitted(errors.NotAllowed):
    """The company's sign-in vouched for someone callscope may not let in; the message says
    why."""


@functools.cache
def _hasher() -> PasswordHasher:
    """argon2id as RFC 9106 recommends (3 passes, 4 lanes) with the memory the settings give
    (64 MiB by default); a hash keeps its own parameters, so changing them spoils none."""
    return PasswordHasher(memory_cost=get_settings().password_memory_kib)


def hash_password(password: str) -> str:
    """An argon2id hash of PASSWORD."""
    return _hasher().hash(password)


@functools.cache
def _dummy_hash() -> str:
    """A hash no password matches, made on first use (hashing takes a fifth of a second)."""
    return _hasher().hash("not a password anyone has")


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether PASSWORD matches STORED_HASH."""
    try:
        return _hasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_matches(user: User | None, password: str) -> bool:
    """Whether USER (an enabled account) has PASSWORD; as slow for no user as for one, so that
    timing does not tell which user names exist."""
    if user is None or user.disabled or user.password_hash == SSO_ONLY:
        verify_password(_dummy_hash(), password)
        return False
    return verify_password(user.password_hash, password)


def check_password(password: str) -> None:
    """Refuse a password too short to be one."""
    if len(password) < 8:
        raise UserError("password must have at least 8 characters")


def add_user(
    session: Session, username: str, role: str, password: str, agent_external_id: str | None = None
) -> User:
    """Create a sign-in account; an agent account is linked to its agent record (created if new)."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not username.strip():
        raise UserError("user name is empty")
    check_password(password)
    if session.scalar(select(User).where(User.username == username)):
        raise UserError(f"user {username!r} already exists")
    if role == Role.AGENT and not agent_external_id:
        raise UserError("an agent account needs --agent-id (the agent's external id)")
    agent = _agent(session, agent_external_id, username)
    user = User(username=username, role=role, password_hash=hash_password(password), agent=agent)
    session.add(user)
    session.flush()
    return user


def _agent(session: Session, external_id: str | None, username: str) -> Agent | None:
    """The agent record EXTERNAL_ID names (made, named after USERNAME, if new), or None."""
    if not external_id:
        return None
    agent = session.scalar(select(Agent).where(Agent.external_id == external_id))
    if agent is None:
        agent = Agent(external_id=external_id, name=username)
        session.add(agent)
    return agent


def may_sign_in_locally(user: User, settings: Settings) -> bool:
    """Whether USER may sign in with a password: anyone without single sign-on; with it, only
    administrators, and only while CALLSCOPE_OIDC_LOCAL_ADMINS allows it."""
    if not settings.single_sign_on:
        return True
    return settings.oidc_local_admins and user.role == Role.ADMIN


def sso_user(
    session: Session,
    subject: str,
    username: str,
    role: str | None,
    agent_external_id: str | None = None,
) -> User:
    """The account of someone the company's OpenID provider vouched for (SUBJECT: its issuer and
    their subject there), made on their first sign-in and brought up to date from their claims
    at each: name, role (from their groups) and agent record. Someone in none of the admitted
    groups (ROLE None) is refused and the account's sessions end; so is an account an
    administrator disabled here, or one whose name a local account already has."""
    user = session.scalar(select(User).where(User.sso_subject == subject))
    if role is None:
        if user is not None:
            end_sessions(user)
        raise NotAdmitted(NOT_IN_A_GROUP)
    if role == Role.AGENT and not agent_external_id:
        raise NotAdmitted(NO_AGENT_ID)
    if user is not None and user.disabled:
        raise NotAdmitted(DISABLED)
    named = session.scalar(select(User).where(User.username == username))
    if named is not None and named is not user:
        raise NotAdmitted(NAME_TAKEN)
    if user is None:
        user = User(username=username, role=role, password_hash=SSO_ONLY, sso_subject=subject)
        session.add(user)
    agent = _agent(session, agent_external_id, username)
    if user.id is not None and (user.role, user.agent) != (role, agent):
        end_sessions(user)  # (what they may see changed: their other browsers sign in again)
    user.username, user.role, user.agent = username, role, agent
    session.flush()
    return user


def end_sessions(user: User) -> None:
    """End every browser session of USER (they sign in again)."""
    user.session_version += 1


def digest(token: str) -> str:
    """The stored form of an API token."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, username: str, name: str, scope: str | None = None) -> str:
    """Create an API token acting as USERNAME with SCOPE (by default: ingest for an
    administrator, read for others); the plain token is returned once, never stored."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UnknownUser(f"no user {username!r}")
    if scope is None:
        scope = Scope.INGEST if user.role == Role.ADMIN else Scope.READ
    if scope not in tuple(Scope):
        raise UserError(f"scope must be one of {', '.join(Scope)}, not {scope!r}")
    if scope == Scope.INGEST and user.role != Role.ADMIN:
        raise UserError(
            f"only an administrator's token may ingest; {username} is a {user.role}: give the "
            "integration an administrator account of its own"
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(name=name, user=user, token_hash=digest(token), prefix=token[:8], scope=scope)
    )
    session.flush()
    return token


def active_token(session: Session, token: str) -> ApiToken | None:
    """The API token TOKEN, if it is neither revoked nor its user disabled."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
    if row is None or row.revoked_at is not None or row.user.disabled:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now  # at most a write a minute, not one per request
    return row


def user_for_token(session: Session, token: str) -> User | None:
    """The active user a bearer token acts as, or None."""
    row = active_token(session, token)
    return row.user if row else None
