"""Scorecards: an agent's (or a queue's) calls by week — handle time, talk share, non-talk,
customer sentiment and trend, categories matched, evaluations and their score — over the calls
the viewer may see; and a team's weeks beside an agent's own.

Weeks run Monday to Sunday, UTC; a range is widened to whole weeks. Supervisors' and
administrators' scorecards add up the weekly cells of `scorecells` (a row per agent and queue
and week, not per call), so a year of 100 000 calls reads a few thousand rows; an agent's own
calls — which include those they took over by a transfer, in any queue — are added up from the
calls themselves."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from callscope.db.models import (
    Agent,
    Category,
    Conversation,
    Queue,
    User,
    supervised_queues,
)
from callscope.errors import Refused
from callscope.governance import access
from callscope.governance.access import Action, visible_conversations
from callscope.review import scorecells
from callscope.review.search import day_end, day_start
from callscope.vocabulary import Status

DEFAULT_WEEKS = 12
MAX_WEEKS = 260  # five years: a scorecard's range, so no request makes cells without end
LAST_DAY = date(9000, 12, 31)  # (the weeks after it would pass the calendar's end)
# a team's week is shown to an agent only when it has this many calls, so that no single
# colleague's call can be read from it
TEAM_MIN_CALLS = 5
# the figures of a week that are means over its calls, in the order of the CSV's columns
MEANS = tuple(name for name, _prefix in scorecells.MEANS)


def _ratio(total: Any, count: Any) -> float | None:
    return round(float(total) / count, 2) if count else None


def _means(sums: dict[str, Any]) -> dict[str, float | None]:
    """The MEANS of some calls, from their sums (scorecells.sums)."""
    return {name: _ratio(sums[f"{p}_sum"], sums[f"{p}_n"]) for name, p in scorecells.MEANS}


def _week(number: int, sums: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    """A week as a scorecard shows it, from its sums (scorecells.add_up, or _live)."""
    return {
        "week_start": scorecells.monday(number).isoformat(),
        "calls": sums["calls"],
        **_means(sums),
        "categories": dict(sorted((names[i], n) for i, n in sums["categories"].items())),
        "evaluations": sums["evaluations"],
        "score_pct": _ratio(sums["score_sum"], sums["scored"]),
    }


def _live(
    session: Session, user: User, query: Select[Any], first: int, last: int
) -> dict[int, dict]:
    """The sums of scorecells.add_up, added up from the calls of QUERY themselves, for agent
    USER: the evaluations counted are those of USER's own calls (a call they took over by a
    transfer is evaluated as its first agent's)."""
    week = scorecells.week_number(session, Conversation.started_at).label("week")
    primary = Conversation.primary_agent_id.label("primary_agent_id")
    calls = (
        query.with_only_columns(Conversation.id, Conversation.duration_s, week, primary)
        .where(
            Conversation.processing_status == Status.PROCESSED,
            Conversation.started_at >= day_start(scorecells.monday(first)),
            Conversation.started_at < day_start(scorecells.monday(last + 1)),
        )
        .subquery()
    )
    own = calls.c.primary_agent_id == user.agent_id
    found = scorecells.sums(session, calls, [calls.c.week], evaluated=own)
    return {key[0]: figures for key, figures in found.items()}


def means(session: Session, query: Select[Any], by: Any = None) -> dict[int | None, dict[str, Any]]:
    """The processed calls of QUERY (a query of conversations) added up as a scorecard's week
    is — the number of calls and the MEANS — for all of them (key None), or per value of BY (a
    column of Conversation)."""
    key = [] if by is None else [by.label("key")]
    query = query.where(Conversation.processing_status == Status.PROCESSED)
    if by is not None:
        query = query.where(by.is_not(None))
    calls = query.with_only_columns(Conversation.id, Conversation.duration_s, *key).subquery()
    sums = scorecells.sums(session, calls, [calls.c.key] if by is not None else [])
    return {
        (found[0] if found else None): {
            "calls": figures["calls"],
            **{
                name: _ratio(figures[f"{p}_sum"], figures[f"{p}_n"]) for name, p in scorecells.MEANS
            },
        }
        for found, figures in sums.items()
    }


def _id(session: Session, column: Any, where: Any) -> int:
    """The id named (-1, which nothing has, when nothing is)."""
    found = session.scalar(select(column).where(where))
    return -1 if found is None else found


def scorecard(
    session: Session,
    user: User,
    agent: str | None = None,
    queue: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> dict[str, Any]:
    """The weeks from START to END (default: the last 12, widened to whole weeks) of the
    processed calls of AGENT (external id) or QUEUE (name) that USER may see."""
    end = end or date.today()
    start = start or end - timedelta(weeks=DEFAULT_WEEKS)
    if start > end:
        raise Refused("from: a day on or before `to`")
    if start < scorecells.FIRST_MONDAY or end > LAST_DAY:
        raise Refused(f"from, to: days from {scorecells.FIRST_MONDAY} to {LAST_DAY}")
    first, last = scorecells.week_of(start), scorecells.week_of(end)
    if last - first >= MAX_WEEKS:
        raise Refused(f"from: a scorecard spans at most {MAX_WEEKS} weeks (five years)")
    if not access.may(user, Action.SEE_COLLEAGUES):
        query = access.visible_conversations(user)
        if agent is not None:
            query = query.join(Agent, Agent.id == Conversation.primary_agent_id).where(
                Agent.external_id == agent
            )
        if queue is not None:
            query = query.join(Queue, Queue.id == Conversation.queue_id).where(Queue.name == queue)
        sums = _live(session, user, query, first, last)
    else:
        queues: Any = None
        if queue is not None:
            queues = [_id(session, Queue.id, Queue.name == queue)]
        mine = access.supervised(user)
        if mine is not None:
            queues = (
                mine if queues is None else mine.where(supervised_queues.c.queue_id.in_(queues))
            )
        agent_id = None if agent is None else _id(session, Agent.id, Agent.external_id == agent)
        sums = scorecells.add_up(session, first, last, agent_id, queues)
    names = {i: name for i, name in session.execute(select(Category.id, Category.name))}
    weeks = [_week(number, sums[number], names) for number in sorted(sums)]
    scored = sum(sums[n]["scored"] for n in sums)
    return {
        "agent": agent,
        "queue": queue,
        "from": scorecells.monday(first).isoformat(),
        "to": (scorecells.monday(last) + timedelta(days=6)).isoformat(),
        "calls": sum(w["calls"] for w in weeks),
        "evaluations": sum(w["evaluations"] for w in weeks),
        "score_pct": _ratio(sum(sums[n]["score_sum"] for n in sums), scored),
        "weeks": weeks,
    }


def _own_queues(user: User, since: datetime, until: datetime | None = None) -> Select[Any]:
    """The queues of agent USER's own calls from SINCE (until UNTIL): their team's."""
    found = (
        visible_conversations(user)
        .with_only_columns(Conversation.queue_id)
        .where(Conversation.primary_agent_id == user.agent_id, Conversation.started_at >= since)
    )
    return found if until is None else found.where(Conversation.started_at < until)


def team_weeks(session: Session, user: User, start: date, end: date) -> dict[str, dict[str, Any]]:
    """For agent USER, the weeks of their team — every call of the queues their own calls
    went to — as means only (no counts, categories or evaluations: the agent may not open
    those calls), and only for weeks of at least TEAM_MIN_CALLS calls."""
    first, last = scorecells.week_of(start), scorecells.week_of(end)
    own_queues = list(
        session.scalars(
            _own_queues(user, day_start(start), day_end(end))
            .where(Conversation.queue_id.is_not(None))
            .distinct()
        )
    )
    if not own_queues:
        return {}
    found = {}
    for number, sums in scorecells.add_up(session, first, last, queues=own_queues).items():
        if sums["calls"] >= TEAM_MIN_CALLS:
            week = _week(number, {**sums, "categories": {}}, {})
            found[week["week_start"]] = {name: week[name] for name in MEANS}
    return found


def team_means(session: Session, user: User, since: datetime) -> dict[str, Any] | None:
    """For agent USER, the means of their team's calls since SINCE — every call of the queues
    their own calls went to — without the count (the agent may not open those calls); None
    when there are fewer than TEAM_MIN_CALLS."""
    team = select(Conversation).where(
        Conversation.queue_id.in_(_own_queues(user, since)), Conversation.started_at >= since
    )
    figures = means(session, team)[None]
    if figures["calls"] < TEAM_MIN_CALLS:
        return None
    return {name: figures[name] for name in MEANS}
