"""Scorecards: an agent's (or a queue's) calls by week — handle time, talk share, non-talk,
customer sentiment and trend, categories matched, evaluations and their score — over the calls
the viewer may see."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from statistics import fmean
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

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
from callscope.search import day_end, day_start
from callscope.vocabulary import Status

DEFAULT_WEEKS = 12


def _mean(values: list[float]) -> float | None:
    return round(fmean(values), 2) if values else None


def _week(when: datetime) -> date:
    """The Monday of WHEN's week (UTC)."""
    day = when.date()
    return day - timedelta(days=day.weekday())


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
    query = (
        visible_conversations(user)
        .with_only_columns(
            Conversation.id,
            Conversation.started_at,
            Conversation.duration_s,
            ConversationAnalysis.agent_talk_pct,
            ConversationAnalysis.metrics,
            ConversationAnalysis.sentiment,
        )
        .join(ConversationAnalysis, ConversationAnalysis.conversation_id == Conversation.id)
        .where(
            Conversation.processing_status == Status.PROCESSED,
            Conversation.started_at >= day_start(start),
            Conversation.started_at < day_end(end),
        )
    )
    if agent is not None:
        query = query.join(Agent, Agent.id == Conversation.primary_agent_id).where(
            Agent.external_id == agent
        )
    if queue is not None:
        query = query.join(Queue, Queue.id == Conversation.queue_id).where(Queue.name == queue)
    calls = session.execute(query).all()
    week_of = {c.id: _week(c.started_at) for c in calls if c.started_at}
    scores: dict[date, list[float]] = defaultdict(list)
    for conversation_id, score in session.execute(
        select(Evaluation.conversation_id, Evaluation.score_pct).where(
            Evaluation.conversation_id.in_(list(week_of))
        )
    ):
        if score is not None:
            scores[week_of[conversation_id]].append(score)
    matched: dict[date, Counter[str]] = defaultdict(Counter)
    for conversation_id, name in session.execute(
        select(CategoryMatch.conversation_id, Category.name)
        .join(Category, Category.id == CategoryMatch.category_id)
        .where(CategoryMatch.conversation_id.in_(list(week_of)))
    ):
        matched[week_of[conversation_id]][name] += 1
    by_week: dict[date, list[Any]] = defaultdict(list)
    for call in calls:
        if call.id in week_of:
            by_week[week_of[call.id]].append(call)
    weeks = []
    for monday in sorted(by_week):
        rows = by_week[monday]
        customer = [
            s["customer"]["score"]
            for r in rows
            if (s := r.sentiment or {}).get("customer") and s["customer"].get("score") is not None
        ]
        trends = [
            r.sentiment["trend"] for r in rows if (r.sentiment or {}).get("trend") is not None
        ]
        weeks.append(
            {
                "week_start": monday.isoformat(),
                "calls": len(rows),
                "average_handle_s": _mean([r.duration_s for r in rows if r.duration_s is not None]),
                "agent_talk_pct": _mean(
                    [r.agent_talk_pct for r in rows if r.agent_talk_pct is not None]
                ),
                "non_talk_s": _mean(
                    [
                        r.metrics["non_talk"]["total_s"]
                        for r in rows
                        if (r.metrics or {}).get("non_talk", {}).get("total_s") is not None
                    ]
                ),
                "customer_sentiment": _mean(customer),
                "customer_trend": _mean(trends),
                "categories": dict(sorted(matched[monday].items())),
                "evaluations": len(scores[monday]),
                "score_pct": _mean(scores[monday]),
            }
        )
    every_score = [s for values in scores.values() for s in values]
    return {
        "agent": agent,
        "queue": queue,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "calls": len(calls),
        "evaluations": len(every_score),
        "score_pct": _mean(every_score),
        "weeks": weeks,
    }
