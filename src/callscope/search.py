"""Finding conversations (B4): full-text search over transcripts with snippets, combined with
filters, always within what the user may see.

The index holds one document per conversation, its transcript's text in order: an FTS5 table on
SQLite, a `tsvector` with a GIN index on PostgreSQL (the `simple` configuration, which lower-cases
without stemming, so English and Indonesian words are found as spoken). Queries are built from
the words and "quoted phrases" the user typed; no other syntax reaches the database.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, column, func, select, table, text
from sqlalchemy.orm import Session

from callscope.access import visible_conversations
from callscope.db.models import (
    Agent,
    Conversation,
    ConversationAnalysis,
    Queue,
    Segment,
    User,
)

START, STOP = "\x02", "\x03"  # snippet markers; transcript text never contains them
SNIPPET_WORDS = 16
# A common word is in most transcripts; counting every match would read them all, so a text
# search counts up to this many and says "more than" beyond.
COUNT_CAP = 1000
SORTS = {
    "started_at": Conversation.started_at,
    "duration": Conversation.duration_s,
    "sentiment": ConversationAnalysis.sentiment_score,
}
_TERM = re.compile(r'"([^"]*)"|(\S+)')
# the PostgreSQL index (made by a migration, not a model: FTS5 and tsvector have no common DDL)
_PG = table("conversation_search", column("conversation_id"), column("body"), column("document"))


@dataclass
class Filters:
    """What a list of conversations is narrowed to; every field is optional."""

    q: str | None = None
    external_id: str | None = None
    agent_id: int | None = None
    agent_external_id: str | None = None
    queue_id: int | None = None
    queue_name: str | None = None
    sentiment: str | None = None
    start: date | None = None
    end: date | None = None
    min_duration_s: float | None = None
    max_duration_s: float | None = None
    min_agent_talk_pct: float | None = None
    max_agent_talk_pct: float | None = None
    sort: str = "-started_at"


@dataclass
class Hit:
    conversation: Conversation
    analysis: ConversationAnalysis | None
    snippet: str | None = None  # HTML: the escaped transcript text, matches in <mark>


@dataclass
class Results:
    total: int  # with a text search, counted up to COUNT_CAP + 1 only
    hits: list[Hit] = field(default_factory=list)

    @property
    def total_is_exact(self) -> bool:
        return self.total <= COUNT_CAP


def terms(q: str | None) -> list[str]:
    """The words and "quoted phrases" of a query, lower-cased, punctuation dropped."""
    found = []
    for phrase, word in _TERM.findall(q or ""):
        words = re.findall(r"\w+", (phrase or word).lower())
        if words:
            found.append(" ".join(words))
    return found


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _tsquery(found: list[str]) -> ColumnElement[Any]:
    query = func.phraseto_tsquery("simple", found[0])
    for term in found[1:]:
        query = query.op("&&")(func.phraseto_tsquery("simple", term))
    return query


def _fts5(found: list[str]) -> str:
    return " ".join(f'"{term}"' for term in found)


def matching(session: Session, found: list[str]) -> ColumnElement[bool]:
    """A condition on Conversation: its transcript holds every term (a phrase in order)."""
    if _postgres(session):
        ids = select(_PG.c.conversation_id).where(_PG.c.document.op("@@")(_tsquery(found)))
    else:
        ids = (
            select(text("rowid"))
            .select_from(text("conversation_search"))
            .where(text("conversation_search MATCH :fts").bindparams(fts=_fts5(found)))
        )
    return Conversation.id.in_(ids)


def _day(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _filters_results(f: Filters) -> bool:
    return (
        bool(f.sentiment) or f.min_agent_talk_pct is not None or (f.max_agent_talk_pct is not None)
    )


def filtered(session: Session, user: User, f: Filters) -> Select[tuple[Conversation]]:
    """The conversations USER may see that pass F (with their analysis joined only when F
    filters on it)."""
    conditions: list[ColumnElement[bool]] = []
    if found := terms(f.q):
        conditions.append(matching(session, found))
    if f.external_id is not None:
        conditions.append(Conversation.external_id == f.external_id)
    # names are looked up first: an equality on the indexed id is what the planner uses best
    agent_id = f.agent_id
    if f.agent_external_id:
        agent_id = session.scalar(select(Agent.id).where(Agent.external_id == f.agent_external_id))
        agent_id = agent_id or -1  # no such agent: nothing matches
    if agent_id:
        conditions.append(Conversation.primary_agent_id == agent_id)
    queue_id = f.queue_id
    if f.queue_name:
        queue_id = session.scalar(select(Queue.id).where(Queue.name == f.queue_name)) or -1
    if queue_id:
        conditions.append(Conversation.queue_id == queue_id)
    results: list[ColumnElement[bool]] = []
    if f.sentiment:
        results.append(ConversationAnalysis.sentiment_label == f.sentiment)
    if f.start:
        conditions.append(Conversation.started_at >= _day(f.start))
    if f.end:
        conditions.append(Conversation.started_at < _day(f.end + timedelta(days=1)))
    if f.min_duration_s is not None:
        conditions.append(Conversation.duration_s >= f.min_duration_s)
    if f.max_duration_s is not None:
        conditions.append(Conversation.duration_s <= f.max_duration_s)
    if f.min_agent_talk_pct is not None:
        results.append(ConversationAnalysis.agent_talk_pct >= f.min_agent_talk_pct)
    if f.max_agent_talk_pct is not None:
        results.append(ConversationAnalysis.agent_talk_pct <= f.max_agent_talk_pct)
    query = visible_conversations(user)
    if results:  # joined only when filtered on: the join makes counting every row slow
        query = query.join(
            ConversationAnalysis, ConversationAnalysis.conversation_id == Conversation.id
        )
    return query.where(*conditions, *results)


def find(session: Session, user: User, f: Filters, limit: int, offset: int = 0) -> Results:
    """A page of the conversations USER may see that pass F, with snippets when F searches."""
    query = filtered(session, user, f)
    found = terms(f.q)
    if found:
        capped = query.with_only_columns(Conversation.id).limit(COUNT_CAP + 1).subquery()
        total = session.scalar(select(func.count()).select_from(capped)) or 0
    else:
        total = session.scalar(query.with_only_columns(func.count(Conversation.id))) or 0
    column = SORTS[f.sort.lstrip("-")]
    order = column.desc() if f.sort.startswith("-") else column.asc()
    if not _filters_results(f):
        query = query.outerjoin(
            ConversationAnalysis, ConversationAnalysis.conversation_id == Conversation.id
        )
    rows = session.execute(
        query.add_columns(ConversationAnalysis)
        .order_by(order.nulls_last(), Conversation.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    snippets = _snippets(session, found, [c.id for c, _a in rows]) if found else {}
    return Results(total, [Hit(c, a, snippets.get(c.id)) for c, a in rows])


def _snippets(session: Session, found: list[str], ids: list[int]) -> dict[int, str]:
    """The best passage of each conversation's transcript, matches marked, as safe HTML."""
    if not ids:
        return {}
    if _postgres(session):
        options = f"StartSel={START},StopSel={STOP},MaxWords={SNIPPET_WORDS},MinWords=6"
        rows = session.execute(
            select(
                _PG.c.conversation_id,
                func.ts_headline("simple", _PG.c.body, _tsquery(found), options),
            ).where(_PG.c.conversation_id.in_(ids))
        )
    else:
        rows = session.execute(
            text(
                "SELECT rowid, snippet(conversation_search, 0, :start, :stop, '…', :words)"
                " FROM conversation_search WHERE conversation_search MATCH :fts AND rowid IN :ids"
            ).bindparams(bindparam("ids", expanding=True)),
            {"start": START, "stop": STOP, "words": SNIPPET_WORDS, "fts": _fts5(found), "ids": ids},
        )
    return {
        conversation_id: html.escape(snippet).replace(START, "<mark>").replace(STOP, "</mark>")
        for conversation_id, snippet in rows
    }


def index(session: Session, conversation_id: int) -> None:
    """Put a conversation's transcript (its segments, in order) in the search index."""
    body = " ".join(
        session.scalars(
            select(Segment.text)
            .where(Segment.conversation_id == conversation_id)
            .order_by(Segment.position)
        )
    )
    remove(session, conversation_id)
    if _postgres(session):
        session.execute(
            text("INSERT INTO conversation_search (conversation_id, body) VALUES (:id, :body)"),
            {"id": conversation_id, "body": body},
        )
    else:
        session.execute(
            text("INSERT INTO conversation_search (rowid, body) VALUES (:id, :body)"),
            {"id": conversation_id, "body": body},
        )


def remove(session: Session, conversation_id: int) -> None:
    """Take a conversation out of the search index."""
    key = "conversation_id" if _postgres(session) else "rowid"
    session.execute(
        text(f"DELETE FROM conversation_search WHERE {key} = :id"), {"id": conversation_id}
    )
