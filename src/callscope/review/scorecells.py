"""The weekly cells scorecards add up: a week's processed calls of each agent in each queue,
as counts and sums (models.ScorecardCell, ScorecardCategoryCell).

A week's cells are made when a scorecard first reads the week, and made again when read after
one of its calls changed. Whatever changes a call's figures — its results, its processing
state, its evaluations, its categories, its deletion — goes through `review/refresh.py`, which
calls `mark` in the same transaction and raises the week's version; a week is fresh while the
version its cells were made from is the current one. (A change committed while cells are
being made leaves the week stale, so it is made again on the next read.)"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, cast, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from callscope.db.models import (
    CategoryMatch,
    Conversation,
    ConversationAnalysis,
    Evaluation,
    ScorecardCategoryCell,
    ScorecardCell,
    ScorecardWeek,
)
from callscope.vocabulary import Review, Status

FIRST_MONDAY = date(1970, 1, 5)  # weeks are numbered from the first Monday of the epoch
WEEK_S, FIRST_MONDAY_S = 7 * 86400, 4 * 86400
# a scorecard's means and the columns of a cell they come from (PREFIX_sum / PREFIX_n)
MEANS = (
    ("average_handle_s", "handle"),
    ("agent_talk_pct", "talk"),
    ("non_talk_s", "non_talk"),
    ("customer_sentiment", "sentiment"),
    ("customer_trend", "trend"),
)


def week_number(session: Session, column: Any) -> ColumnElement[Any]:
    """The number of COLUMN's week (UTC) since FIRST_MONDAY, as the database works it out: a
    sum on the seconds, cheaper per call than the calendar functions."""
    if session.get_bind().dialect.name == "postgresql":
        seconds: Any = func.date_part("epoch", column)
        return func.floor((seconds - FIRST_MONDAY_S) / WEEK_S)
    return cast((func.strftime("%s", column) - FIRST_MONDAY_S) / WEEK_S, Integer)


def week_of(day: date) -> int:
    return (day - FIRST_MONDAY).days // 7


def monday(week: Any) -> date:
    return FIRST_MONDAY + timedelta(weeks=int(week))


def _start(week: int) -> datetime:
    return datetime.combine(monday(week), datetime.min.time(), UTC)


def _insert(session: Session) -> Any:
    return postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


# --- marking -----------------------------------------------------------------------------


def mark(session: Session, conversation_ids: Iterable[int]) -> None:
    """The weeks of these calls are to be made again (their figures change in this
    transaction)."""
    ids = list(conversation_ids)
    weeks: set[int] = set()
    for first in range(0, len(ids), 1000):
        weeks.update(
            week_of(started.date())
            for started in session.scalars(
                select(Conversation.started_at).where(
                    Conversation.id.in_(ids[first : first + 1000]),
                    Conversation.started_at.is_not(None),
                )
            )
            if started is not None
        )
    if weeks:
        statement = _insert(session)(ScorecardWeek).values(
            [{"week": w, "version": 1, "made": -1} for w in sorted(weeks)]
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["week"], set_={"version": ScorecardWeek.version + 1}
            )
        )


def mark_all(session: Session) -> None:
    """Every week is to be made again (a category's matches were all replaced)."""
    session.execute(update(ScorecardWeek).values(version=ScorecardWeek.version + 1))


# --- making ------------------------------------------------------------------------------


def fresh(session: Session, first: int, last: int) -> None:
    """Make the cells of the weeks FIRST to LAST that are stale or were never made."""
    known = {
        week: (version, made)
        for week, version, made in session.execute(
            select(ScorecardWeek.week, ScorecardWeek.version, ScorecardWeek.made).where(
                ScorecardWeek.week.between(first, last)
            )
        )
    }
    wanted = {
        week: known[week][0] if week in known else None
        for week in range(first, last + 1)
        if week not in known or known[week][0] != known[week][1]
    }
    if wanted:
        _make(session, wanted)


def _make(session: Session, weeks: dict[int, int | None]) -> None:
    """Make the cells of WEEKS (week → the version read, None where it had no row yet)."""
    numbers = sorted(weeks)
    session.execute(delete(ScorecardCell).where(ScorecardCell.week.in_(numbers)))
    session.execute(delete(ScorecardCategoryCell).where(ScorecardCategoryCell.week.in_(numbers)))
    week = week_number(session, Conversation.started_at).label("week")
    agent = func.coalesce(Conversation.primary_agent_id, 0).label("agent")
    queue = func.coalesce(Conversation.queue_id, 0).label("queue")
    calls = (
        select(Conversation.id, Conversation.duration_s, week, agent, queue)
        .where(
            Conversation.processing_status == Status.PROCESSED,
            Conversation.started_at >= _start(numbers[0]),
            Conversation.started_at < _start(numbers[-1] + 1),
            week.in_(numbers),
        )
        .subquery()
    )
    found = sums(session, calls, [calls.c.week, calls.c.agent, calls.c.queue])
    rows, matched = [], []
    for (number, agent_id, queue_id), figures in found.items():
        cell = {"week": number, "agent_id": agent_id, "queue_id": queue_id}
        rows.append({**cell, **{k: v for k, v in figures.items() if k != "categories"}})
        matched += [
            {**cell, "category_id": category_id, "calls": n}
            for category_id, n in figures["categories"].items()
        ]
    _upsert(session, ScorecardCell, rows, ["week", "agent_id", "queue_id"])
    _upsert(
        session, ScorecardCategoryCell, matched, ["week", "agent_id", "queue_id", "category_id"]
    )
    insert = _insert(session)
    for number, version in weeks.items():
        if version is None:  # (a change marked meanwhile keeps its row: still stale)
            session.execute(
                insert(ScorecardWeek)
                .values(week=number, version=0, made=0)
                .on_conflict_do_nothing(index_elements=["week"])
            )
        else:
            session.execute(
                update(ScorecardWeek).where(ScorecardWeek.week == number).values(made=version)
            )


def sums(
    session: Session, calls: Any, key: list[Any], evaluated: Any = True
) -> dict[tuple[int, ...], dict[str, Any]]:
    """The calls of CALLS (a subquery of their `id`, `duration_s` and the KEY columns) added
    up by KEY: `calls`, the sum and the count behind each mean (MEANS), `evaluations`,
    `score_sum`, `scored` (the submitted evaluations of the calls EVALUATED says — a condition
    on CALLS' columns —, those with a score, and their sum), and `categories` (category id →
    calls matching it)."""
    a = ConversationAnalysis
    columns = {  # (as MEANS)
        "handle": calls.c.duration_s,
        "talk": a.agent_talk_pct,
        "non_talk": a.non_talk_s,
        "sentiment": a.customer_sentiment,
        "trend": a.customer_trend,
    }
    found: dict[tuple[int, ...], dict[str, Any]] = {}
    for row in session.execute(
        select(
            *key,
            func.count().label("calls"),
            *(func.coalesce(func.sum(c), 0).label(f"{p}_sum") for p, c in columns.items()),
            *(func.count(c).label(f"{p}_n") for p, c in columns.items()),
        )
        .select_from(calls)
        .join(a, a.conversation_id == calls.c.id)
        .group_by(*key)
    ):
        figures = row._asdict()
        found[tuple(int(v) for v in row[: len(key)])] = {
            "calls": row.calls,
            **{f"{p}_sum": float(figures[f"{p}_sum"]) for p in columns},
            **{f"{p}_n": figures[f"{p}_n"] for p in columns},
            "evaluations": 0,
            "score_sum": 0.0,
            "scored": 0,
            "categories": {},
        }
    for *values, count, total, scored in session.execute(
        select(*key, func.count(), func.sum(Evaluation.score_pct), func.count(Evaluation.score_pct))
        .select_from(calls)
        .join(Evaluation, Evaluation.conversation_id == calls.c.id)
        .where(Evaluation.status != Review.DRAFT, evaluated)
        .group_by(*key)
    ):
        cell = found.get(tuple(int(v) for v in values))
        if cell is not None:  # (an evaluated call has its results)
            cell.update(evaluations=count, score_sum=float(total or 0), scored=scored)
    for *values, category_id, count in session.execute(
        select(*key, CategoryMatch.category_id, func.count())
        .select_from(calls)
        .join(CategoryMatch, CategoryMatch.conversation_id == calls.c.id)
        .group_by(*key, CategoryMatch.category_id)
    ):
        cell = found.get(tuple(int(v) for v in values))
        if cell is not None:
            cell["categories"][category_id] = count
    return found


def _upsert(session: Session, table: Any, rows: list[dict[str, Any]], key: list[str]) -> None:
    """Write ROWS, replacing those of the same KEY: two readers may make a week at once."""
    if not rows:
        return
    statement = _insert(session)(table)
    values = {c: statement.excluded[c] for c in rows[0] if c not in key}
    session.execute(statement.on_conflict_do_update(index_elements=key, set_=values), rows)


# --- adding up ---------------------------------------------------------------------------


def add_up(
    session: Session, first: int, last: int, agent_id: int | None = None, queues: Any = None
) -> dict[int, dict[str, Any]]:
    """The cells of the weeks FIRST to LAST (made first where stale) added up by week, of one
    agent (AGENT_ID) and of QUEUES (queue ids, or a query of them) where given: the sums of
    `sums`."""
    fresh(session, first, last)

    def where(table: Any) -> list[ColumnElement[bool]]:
        found = [table.week.between(first, last)]
        if agent_id is not None:
            found.append(table.agent_id == agent_id)
        if queues is not None:
            found.append(table.queue_id.in_(queues))
        return found

    c = ScorecardCell
    columns = ["calls", "evaluations", "score_sum", "scored"]
    columns += [f"{p}_{part}" for _name, p in MEANS for part in ("sum", "n")]
    weeks: dict[int, dict[str, Any]] = {}
    for row in session.execute(
        select(c.week, *(func.sum(getattr(c, name)).label(name) for name in columns))
        .where(*where(c))
        .group_by(c.week)
    ):
        weeks[row.week] = {**row._asdict(), "categories": {}}
    k = ScorecardCategoryCell
    for week, category_id, calls in session.execute(
        select(k.week, k.category_id, func.sum(k.calls))
        .where(*where(k))
        .group_by(k.week, k.category_id)
    ):
        if week in weeks:
            weeks[week]["categories"][category_id] = calls
    return weeks
