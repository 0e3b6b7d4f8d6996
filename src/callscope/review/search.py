"""Finding conversations: full-text search over transcripts with snippets, combined with
filters, always within what the user may see.

The index holds one document per conversation, its transcript's text in order: an FTS5 table on
SQLite, a `tsvector` with a GIN index on PostgreSQL (the `simple` configuration, which lower-cases
without stemming, so English and Indonesian words are found as spoken). Queries are built from
the words and "quoted phrases" the user typed, a trailing `*` making the last word a prefix; no
other syntax reaches the database. The conversation page's own search (conversation.js) reads a
query the same way.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    column,
    func,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.orm import Session, selectinload

from callscope import errors, telemetry
from callscope.db.models import (
    Agent,
    Category,
    CategoryMatch,
    Conversation,
    ConversationAnalysis,
    Queue,
    Segment,
    User,
    category_named,
)
from callscope.governance import policy
from callscope.governance.access import VIEWING_OFF, visible_conversations
from callscope.review import meaning

SNIPPET_WORDS = 16
SEARCH_OFF = f"searching the transcripts' words is not possible: {VIEWING_OFF}"
MEANING_OFF = f"searching the transcripts by meaning is not possible: {VIEWING_OFF}"
MEANING_LINES = 3  # a call found by meaning shows its closest lines, up to this many
ASK_BATCH = 1_000  # calls found by meaning asked about at once (whether the user sees them)
# A common word is in most transcripts; counting every match would read them all, so a text
# search counts up to this many and says "more than" beyond.
COUNT_CAP = 1000
SORTS = {
    "started_at": Conversation.started_at,
    "duration": Conversation.duration_s,
    "sentiment": ConversationAnalysis.sentiment_score,
}
# what the list page, the API list and the CSV export show of each conversation
SHOWN = (
    Conversation.primary_agent,
    Conversation.contact,
    Conversation.queue,
    Conversation.workstream,
    Conversation.recording,
)
_TERM = re.compile(r'"([^"]*)"|(\S+)')
# the PostgreSQL index (made by a migration, not a model: FTS5 and tsvector have no common DDL)
_PG = table("conversation_search", column("conversation_id"), column("document"))


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
    category: str | None = None  # a category's name: only the calls that matched it
    like: str | None = None  # calls with lines close in meaning to this, closest first
    sort: str = "-started_at"


@dataclass(frozen=True)
class Line:
    """A line of a conversation close in meaning to what was searched for."""

    position: int  # its place in the transcript
    start_s: float
    speaker: str
    text: str
    similarity: float


@dataclass
class Hit:
    conversation: Conversation
    analysis: ConversationAnalysis | None
    snippet: str | None = None  # HTML: the escaped transcript text, matches in <mark>
    categories: list[str] = field(default_factory=list)  # the names of those it matched
    lines: list[Line] = field(default_factory=list)  # searched by meaning: the closest lines
    matched: list[str] = field(default_factory=list)  # by "meaning", "words" (a search's)


@dataclass
class Results:
    # with a text search, counted up to COUNT_CAP + 1 only; by meaning, the calls found among
    # the lines looked at, and one more when there may be more (`more`)
    total: int
    hits: list[Hit] = field(default_factory=list)
    more: bool = False

    @property
    def total_is_exact(self) -> bool:
        return self.total <= COUNT_CAP and not self.more


def terms(q: str | None) -> list[str]:
    """The words and "quoted phrases" of a query, lower-cased, punctuation dropped; a term
    typed with a trailing `*` keeps it (its last word is a prefix)."""
    found = []
    for phrase, word in _TERM.findall(q or ""):
        raw = phrase or word
        words = re.findall(r"[^\W_]+", raw.lower())
        if words:
            found.append(" ".join(words) + ("*" if raw.strip().endswith("*") else ""))
    return found


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _tsquery(found: list[str]) -> ColumnElement[Any]:
    """The terms as a tsquery constant ('a' <-> 'b' for a phrase, & between terms).

    Written into the statement rather than built by phraseto_tsquery() at run time, so the
    planner sees the words and estimates from the column's statistics how many documents have
    them: a rare word is then looked up in the index instead of checked row by row."""
    lexemes = (
        " <-> ".join(f"'{w.rstrip('*')}'" + (":*" if w.endswith("*") else "") for w in term.split())
        for term in found
    )
    query = " & ".join(f"({phrase})" for phrase in lexemes).replace("\\", "").replace("'", "''")
    return literal_column(f"'{query}'::tsquery")


def _fts5(found: list[str]) -> str:
    return " ".join(f'"{term.rstrip("*")}"' + ("*" if term.endswith("*") else "") for term in found)


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


def day_start(day: date) -> datetime:
    """The first instant (UTC) of DAY: date filters cover whole days."""
    return datetime.combine(day, time(), tzinfo=UTC)


def day_end(day: date) -> datetime:
    """The first instant (UTC) after DAY (for the last day there is, the last instant)."""
    if day == date.max:
        return datetime.max.replace(tzinfo=UTC)
    return day_start(day + timedelta(days=1))


def _narrowed(session: Session, user: User, f: Filters) -> tuple[Select[Any], bool]:
    """The conversations USER may see that pass F's filters (not its text search), and whether
    their analysis is joined (only when filtered on: the join makes counting every row slow)."""
    conditions: list[ColumnElement[bool]] = []
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
    if f.start:
        conditions.append(Conversation.started_at >= day_start(f.start))
    if f.end:
        conditions.append(Conversation.started_at < day_end(f.end))
    if f.category:
        named = category_named(session, f.category)
        category_id = named.id if named else None
        conditions.append(
            Conversation.id.in_(
                select(CategoryMatch.conversation_id).where(
                    CategoryMatch.category_id == (category_id or -1)
                )
            )
        )
    if f.min_duration_s is not None:
        conditions.append(Conversation.duration_s >= f.min_duration_s)
    if f.max_duration_s is not None:
        conditions.append(Conversation.duration_s <= f.max_duration_s)
    results: list[ColumnElement[bool]] = []
    if f.sentiment:
        results.append(ConversationAnalysis.sentiment_label == f.sentiment)
    if f.min_agent_talk_pct is not None:
        results.append(ConversationAnalysis.agent_talk_pct >= f.min_agent_talk_pct)
    if f.max_agent_talk_pct is not None:
        results.append(ConversationAnalysis.agent_talk_pct <= f.max_agent_talk_pct)
    query = visible_conversations(user)
    if results:
        query = query.join(
            ConversationAnalysis, ConversationAnalysis.conversation_id == Conversation.id
        )
    return query.where(*conditions, *results), bool(results)


class SearchWithheld(errors.NotAllowed):
    """A search by the transcripts' words while viewing them is switched off: which calls hold
    a word would tell what was said."""


@telemetry.SEARCH_SECONDS.time()
def find(session: Session, user: User, f: Filters, limit: int, offset: int = 0) -> Results:
    """A page of the conversations USER may see that pass F, with a passage of each when F
    searches the words (refused while viewing transcripts is switched off)."""
    found = terms(f.q)
    if (found or f.like) and not policy.get(session, "recordings.enabled"):
        raise SearchWithheld(SEARCH_OFF if found else MEANING_OFF)
    narrowed, joined = _narrowed(session, user, f)
    if f.like:
        return _by_meaning(session, narrowed, joined, f.like, found, limit, offset)
    query = narrowed
    if found:
        query = narrowed.where(matching(session, found))
        ids = session.scalars(query.with_only_columns(Conversation.id).limit(COUNT_CAP + 1)).all()
        total = len(ids)
        if total <= COUNT_CAP:
            # few matches, all known: the page is read by id (the planner cannot tell a rare
            # word from a common one, and scanning in date order for a rare one reads them all)
            query = narrowed.where(Conversation.id.in_(ids))
    else:
        total = session.scalar(query.with_only_columns(func.count(Conversation.id))) or 0
    column = SORTS[f.sort.lstrip("-")]
    order = column.desc() if f.sort.startswith("-") else column.asc()
    if f.sort.endswith("sentiment"):  # the only sort key a conversation may lack
        order = order.nulls_last()
    if not joined:
        query = query.outerjoin(
            ConversationAnalysis, ConversationAnalysis.conversation_id == Conversation.id
        )
    rows = session.execute(
        query.add_columns(ConversationAnalysis)
        .options(*(selectinload(r) for r in SHOWN))  # every caller shows them, per row
        .order_by(order, Conversation.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    ids = [c.id for c, _a in rows]
    passages = _snippets(session, found, ids) if found else {}
    matched = categories_of(session, ids)
    return Results(total, [Hit(c, a, passages.get(c.id), matched.get(c.id, [])) for c, a in rows])


def _by_meaning(
    session: Session,
    narrowed: Select[Any],
    joined: bool,
    like: str,
    found: list[str],
    limit: int,
    offset: int,
) -> Results:
    """The page of NARROWED's conversations with a line close in meaning to LIKE, closest
    first, each with its closest lines; with word terms FOUND, the calls holding them follow
    those found by meaning (newest first), and each hit says which matched."""
    query = meaning.vector(like)
    visible = narrowed.with_only_columns(Conversation.id)
    count = meaning.FIRST_LOOK
    seen: set[int] = set()  # the calls found that the user may see
    asked: set[int] = set()
    wanted = offset + limit
    with meaning.ranking(session, query) as closest:
        while True:  # (more lines looked at while too few of those found are visible)
            near = closest(count)
            _calls, firsts = np.unique(near.calls, return_index=True)
            calls = [c for c in near.calls[np.sort(firsts)].tolist() if c not in asked]
            unasked = False
            for at in range(0, len(calls), ASK_BATCH):  # (closest first, until enough)
                batch = calls[at : at + ASK_BATCH]
                asked.update(batch)
                seen.update(session.scalars(visible.where(Conversation.id.in_(batch))))
                if len(seen) >= wanted:
                    unasked = at + ASK_BATCH < len(calls)
                    break
            # more may be close: lines over the floor not looked at, or calls not asked about
            more = len(near) == count or unasked
            if len(seen) >= wanted or not more:
                break
            count *= 10
    close = near.where(np.isin(near.calls, list(seen)))  # (closest first)
    ranked = list(dict.fromkeys(close.calls.tolist()))
    by_words: list[int] = []
    if found:
        by_words = list(
            session.scalars(
                visible.where(matching(session, found))
                .order_by(Conversation.started_at.desc(), Conversation.id.desc())
                .limit(COUNT_CAP + 1)
            )
        )
    ordered = [*ranked, *(i for i in by_words if i not in seen)]
    page = ordered[offset : offset + limit]
    shown_lines = _lines(session, close.where(np.isin(close.calls, page)).each())
    query_ = narrowed.where(Conversation.id.in_(page))
    if not joined:
        query_ = query_.outerjoin(
            ConversationAnalysis, ConversationAnalysis.conversation_id == Conversation.id
        )
    shown: dict[int, tuple[Conversation, ConversationAnalysis | None]] = {}
    for c, a in session.execute(
        query_.add_columns(ConversationAnalysis).options(*(selectinload(r) for r in SHOWN))
    ):
        shown[c.id] = (c, a)
    worded = set(by_words)
    passages = _snippets(session, found, [i for i in page if i in worded]) if found else {}
    matched = categories_of(session, page)
    return Results(
        len(ordered) + more,
        [
            Hit(
                *shown[i],
                snippet=passages.get(i),
                categories=matched.get(i, []),
                lines=shown_lines.get(i, []),
                matched=[
                    *(["meaning"] if i in seen else []),
                    *(["words"] if i in worded else []),
                ],
            )
            for i in page
            if i in shown  # (a call deleted meanwhile is left out)
        ],
        more,
    )


def _lines(session: Session, near: list[meaning.Near]) -> dict[int, list[Line]]:
    """Each call's closest lines of NEAR (closest first), up to MEANING_LINES a call."""
    kept: dict[int, list[meaning.Near]] = {}
    for n in near:
        if len(kept.setdefault(n.call, [])) < MEANING_LINES:
            kept[n.call].append(n)
    similarity = {n.line: n.similarity for ns in kept.values() for n in ns}
    found: dict[int, list[Line]] = {}
    for line, call, position, start, speaker, said in session.execute(
        select(
            Segment.id, Segment.conversation_id, Segment.position, Segment.start_s,
            Segment.speaker, Segment.text,
        ).where(Segment.id.in_(list(similarity)))
    ):  # fmt: skip
        found.setdefault(call, []).append(Line(position, start, speaker, said, similarity[line]))
    return {call: sorted(lines, key=lambda n: -n.similarity) for call, lines in found.items()}


def categories_of(session: Session, ids: list[int]) -> dict[int, list[str]]:
    """The names of the categories each of the conversations IDS matched."""
    matched: dict[int, list[str]] = {}
    for conversation_id, name in session.execute(
        select(CategoryMatch.conversation_id, Category.name)
        .join(Category, Category.id == CategoryMatch.category_id)
        .where(CategoryMatch.conversation_id.in_(ids))
        .order_by(Category.name)
    ):
        matched.setdefault(conversation_id, []).append(name)
    return matched


def _snippets(session: Session, found: list[str], ids: list[int]) -> dict[int, str]:
    """A passage of each conversation's transcript around its first match, as safe HTML.

    Made here rather than by the database: PostgreSQL's ts_headline re-parses every document
    and took ~10 ms per transcript, and one way for both databases marks the same words."""
    if not ids:
        return {}
    key = _key(session)
    rows = session.execute(
        text(f"SELECT {key}, body FROM conversation_search WHERE {key} IN :ids").bindparams(
            bindparam("ids", expanding=True)
        ),
        {"ids": ids},
    )
    return {conversation_id: snippet(body, found) for conversation_id, body in rows}


def _fold(word: str) -> str:
    """A word as the index compares it: lower case, without diacritics."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _same(word: str, query_word: str) -> bool:
    """Whether a folded WORD is QUERY_WORD (or starts with it, when that ends in `*`)."""
    if query_word.endswith("*"):
        return word.startswith(query_word[:-1])
    return word == query_word


def snippet(body: str, found: list[str]) -> str:
    """SNIPPET_WORDS words of BODY around the first match of the first term, every query word
    in <mark>, everything escaped."""
    words = [(m.start(), m.end(), _fold(m.group())) for m in re.finditer(r"[^\W_]+", body)]
    if not words:
        return ""
    wanted = [_fold(w) for term in found for w in term.split()]
    first = [_fold(w) for w in found[0].split()]
    at = next(
        (
            i
            for i in range(len(words) - len(first) + 1)
            if all(_same(w[2], q) for w, q in zip(words[i : i + len(first)], first, strict=True))
        ),
        0,
    )
    low = max(0, at - SNIPPET_WORDS // 3)
    high = min(len(words), low + SNIPPET_WORDS)
    parts = ["…" if low > 0 else ""]
    cursor = words[low][0]
    for start, end, folded in words[low:high]:
        parts.append(html.escape(body[cursor:start]))
        text_ = html.escape(body[start:end])
        marked = any(_same(folded, q) for q in wanted)
        parts.append(f"<mark>{text_}</mark>" if marked else text_)
        cursor = end
    parts.append("…" if high < len(words) else html.escape(body[cursor:]))
    return "".join(parts)


def _key(session: Session) -> str:
    """The index's column of conversation ids."""
    return "conversation_id" if _postgres(session) else "rowid"


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
    session.execute(
        text(f"INSERT INTO conversation_search ({_key(session)}, body) VALUES (:id, :body)"),
        {"id": conversation_id, "body": body},
    )


def remove(session: Session, conversation_id: int) -> None:
    """Take a conversation out of the search index."""
    session.execute(
        text(f"DELETE FROM conversation_search WHERE {_key(session)} = :id"),
        {"id": conversation_id},
    )


def compact(session: Session) -> None:
    """Rewrite the index without what was removed from it. An FTS5 index keeps a deleted
    document's words in its segments until they are merged: after an erasure they must go
    (with `secure_delete`, the freed pages are zeroed). PostgreSQL's index has no such copy."""
    if not _postgres(session):
        session.execute(
            text("INSERT INTO conversation_search (conversation_search) VALUES ('optimize')")
        )
