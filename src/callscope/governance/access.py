"""Who may see what: the one place that scopes conversations to a user.

See docs/administration.md#who-sees-what.
"""

from __future__ import annotations

from sqlalchemy import Select, false, select, union

from callscope.db.models import Conversation, ConversationSession, User, supervised_queues
from callscope.vocabulary import Role


def visible_conversations(user: User) -> Select[Conversation]:
    """A query of the conversations USER may see: own calls, supervised queues, or all."""
    query = select(Conversation)
    if user.role == Role.ADMIN:
        return query
    if user.role == Role.SUPERVISOR:
        queues = select(supervised_queues.c.queue_id).where(supervised_queues.c.user_id == user.id)
        return query.where(Conversation.queue_id.in_(queues))
    if user.agent_id is None:
        return query.where(false())
    # one id list (a union) rather than an OR: planners estimate it well, so a search within
    # an agent's calls stays fast
    handled = union(
        select(ConversationSession.conversation_id).where(
            ConversationSession.agent_id == user.agent_id
        ),
        select(Conversation.id).where(Conversation.primary_agent_id == user.agent_id),
    )
    return query.where(Conversation.id.in_(handled))
