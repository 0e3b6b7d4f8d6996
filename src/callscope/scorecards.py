"""Scorecards: an agent's (or a queue's) calls by week — handle time, talk share, non-talk,
customer sentiment and trend, categories matched, evaluations and their score — over the calls
the viewer may see; and a team's trend beside an agent's own.

The database adds the figures up (one grouped query per kind), so a scorecard over a year of
calls reads a row per week, not a row per call. Weeks start on Monday, UTC."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from callscope import evaluations
from callscope.access import visible_conversations
from callscope.db.models import (
    Agent,
    Category,
    CategoryMatch,
    Conversation,
    ConversationAnalysis,
    Evaluation,
    Queue,
    User,
)
from callscope.errors import Refused
from callscope.search import day_end, day_start
from callscope.vocabulary import Status

DEFAULT_WEEKS = 12
# a team's week is shown to an agent only when it has this many calls, so that no single
# colleague's call can be read from it
TEAM_MIN_CALLS = 5
# the figures of a week that are means over its calls, in the order of the CSV's columns
MEANS = (
    "average_handle_s",
    "agent_talk_pct",
    "non_talk_s",
    "customer_sentiment",
    "customer_trend",
)


def _week_start(session: Session, column: Any) -> ColumnElement[Any]:
    """The Monday (UTC) of COLUMN's week, as the database works it out."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.date_trunc("week", func.timezone("UTC", column)))
    return func.date(column, "-6 days", "weekday 1")


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def _calls(query: Select[Any], start: date, end: date) -> Any:
    """The processed calls of QUERY (a select of conversations) started from START to END."""
    return (
        query.with_only_columns(Conversation.id, Conversation.started_at, Conversation.duration_s)
        .where(
            Conversation.processing_status == Status.PROCESSED,
            Conversation.started_at >= day_start(start),
            Conversation.started_at < day_end(end),
        )
        .subquery()
    )


def _weeks(session: Session, calls: Any, detail: bool = True) -> dict[str, dict[str, Any]]:
    """The figures of CALLS by week (ISO date of its Monday); with DETAIL, also the categories
    matched and the evaluations."""
    week = _week_start(session, calls.c.started_at).label("week")
    weeks: dict[str, dict[str, Any]] = {}
    for row in session.execute(
        select(
            week,
            func.count(),
            func.avg(calls.c.duration_s),
            func.avg(ConversationAnalysis.agent_talk_pct),
            func.avg(ConversationAnalysis.non_talk_s),
            func.avg(ConversationAnalysis.customer_sentiment),
            func.avg(ConversationAnalysis.customer_trend),
        )
        .join(ConversationAnalysis, ConversationAnalysis.conversation_id == calls.c.id)
        .group_by(week)
    ):
        weeks[str(row[0])[:10]] = {
            "week_start": str(row[0])[:10],
            "calls": row[1],
            **{name: _rounded(value) for name, value in zip(MEANS, row[2:], strict=True)},
            "categories": {},
            "evaluations": 0,
            "score_pct": None,
            "score_sum": 0.0,
            "scored": 0,
        }
    if not detail:
        return weeks
    for monday, name, count in session.execute(
        select(week, Category.name, func.count())
        .join(CategoryMatch, CategoryMatch.conversation_id == calls.c.id)
        .join(Category, Category.id == CategoryMatch.category_id)
        .group_by(week, Category.name)
        .order_by(Category.name)
    ):
        weeks[str(monday)[:10]]["categories"][name] = count
    for monday, count, scored, total in session.execute(
        select(week, func.count(), func.count(Evaluation.score_pct), func.sum(Evaluation.score_pct))
        .join(Evaluation, Evaluation.conversation_id == calls.c.id)
        .where(Evaluation.status != evaluations.DRAFT)
        .group_by(week)
    ):
        figures = weeks[str(monday)[:10]]
        figures.update(evaluations=count, scored=scored, score_sum=float(total or 0))
        figures["score_pct"] = _rounded(total / scored) if scored else None
    return weeks


def scorecard(
    session: Session,
    user: User,
    agent: str | None = None,
    queue: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> dict[str, Any]:
    """The weeks from START to END (default: the last 12) of the processed calls of AGENT
    (external id) or QUEUE (name) that USER may see."""
    end = end or date.today()
    start = start or end - timedelta(weeks=DEFAULT_WEEKS)
    if start > end:
        raise Refused("from: a day on or before `to`")
    query = visible_conversations(user)
    if agent is not None:
        query = query.join(Agent, Agent.id == Conversation.primary_agent_id).where(
            Agent.external_id == agent
        )
    if queue is not None:
        query = query.join(Queue, Queue.id == Conversation.queue_id).where(Queue.name == queue)
    by_week = _weeks(session, _calls(query, start, end))
    weeks = [by_week[monday] for monday in sorted(by_week)]
    scored = sum(w.pop("scored") for w in weeks)
    total = sum(w.pop("score_sum") for w in weeks)
    return {
        "agent": agent,
        "queue": queue,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "calls": sum(w["calls"] for w in weeks),
        "evaluations": sum(w["evaluations"] for w in weeks),
        "score_pct": _rounded(total / scored) if scored else None,
        "weeks": weeks,
    }


def team_weeks(session: Session, user: User, start: date, end: date) -> dict[str, dict[str, Any]]:
    """For agent USER, the weeks of their team — every call of the queues their own calls
    went to — as means only (no counts, categories or evaluations: the agent may not open
    those calls), and only for weeks of at least TEAM_MIN_CALLS calls."""
    own_queues = (
        visible_conversations(user)
        .with_only_columns(Conversation.queue_id)
        .where(Conversation.primary_agent_id == user.agent_id, Conversation.queue_id.is_not(None))
    )
    team = select(Conversation).where(Conversation.queue_id.in_(own_queues))
    return {
        monday: {name: week[name] for name in MEANS}
        for monday, week in _weeks(session, _calls(team, start, end), detail=False).items()
        if week["calls"] >= TEAM_MIN_CALLS
    }
