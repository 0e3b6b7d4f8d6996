"""Themes: why customers call (docs/metrics.md#themes).

Each call of a period has a reason — the line of the summary's reason, else the customer's first
line of four words or more — and that line's stored meaning (review/meaning.py). The reasons
are grouped by k-means over those vectors (the same calls give the same themes: the calls are
read in id order and the seed is fixed); a theme is named by its most central reason and the
words its reasons use more than the others do, with its share of the calls, its share in the
period before (those calls put in the theme whose centre is nearest), its customers' sentiment
and the calls closest to its centre.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from callscope import errors
from callscope.db.models import Conversation, ConversationAnalysis, Segment, User
from callscope.governance import policy
from callscope.governance.access import VIEWING_OFF, visible_conversations
from callscope.review import meaning
from callscope.review.search import day_end, day_start
from callscope.vocabulary import Status

MAX_CALLS = 20_000  # the most recent calls of a period that are read
MOST_THEMES = 12
EXAMPLES = 3
WORDS = 3
REASON_WORDS = 4  # a customer's line of at least this many words may say why they called
THEMES_OFF = f"themes quote what customers said: {VIEWING_OFF}"
MAX_DAYS = 366


def period(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """The days asked for: by default the 30 days to TODAY; refused, naming the field, when
    FROM is after TO or the period is longer than a year."""
    end = end or today
    start = start or end - timedelta(days=29)
    if start > end:
        raise errors.Refused(f"from: {start} is after to ({end})", field="from")
    if (end - start).days >= MAX_DAYS:
        raise errors.Refused(f"from: a period is at most {MAX_DAYS} days", field="from")
    return start, end


class ThemesWithheld(errors.NotAllowed):
    """Themes while viewing transcripts is switched off: their names quote what was said."""


@dataclass
class Example:
    conversation_id: int
    text: str


@dataclass
class Theme:
    name: str  # the most central reason
    words: list[str]  # the words its reasons use more than the others' do
    calls: int
    share: float  # of the period's calls with a reason (0–1)
    previous_share: float | None  # in the period before, when it had calls with a reason
    sentiment: dict[str, int]  # the customers' sentiment: label → calls
    examples: list[Example] = field(default_factory=list)


@dataclass
class Themes:
    start: date
    end: date
    calls: int  # with a reason
    without_reason: int  # calls without one (no customer line, or no meaning stored)
    themes: list[Theme] = field(default_factory=list)


@dataclass
class _Reasons:
    ids: list[int]
    texts: list[str]
    vectors: np.ndarray  # unit rows
    sentiment: list[str | None]
    without: int


def _reasons(session: Session, calls: Select[Any]) -> _Reasons:
    """Each call's reason line and its meaning, in id order."""
    rows = session.execute(
        calls.with_only_columns(
            Conversation.id,
            ConversationAnalysis.summary,
            ConversationAnalysis.sentiment,
        )
        .join(ConversationAnalysis, ConversationAnalysis.conversation_id == Conversation.id)
        .where(Conversation.processing_status == Status.PROCESSED)
        .order_by(Conversation.started_at.desc(), Conversation.id.desc())
        .limit(MAX_CALLS)
    ).all()
    rows = sorted(rows, key=lambda r: r[0])
    lines: dict[int, list[tuple[str, float, float, str, bytes | None]]] = {}
    ids = [r[0] for r in rows]
    for at in range(0, len(ids), 1000):
        for call, speaker, start, end, text, stored in session.execute(
            select(
                Segment.conversation_id, Segment.speaker, Segment.start_s, Segment.end_s,
                Segment.text, Segment.meaning,
            )
            .where(Segment.conversation_id.in_(ids[at : at + 1000]))
            .order_by(Segment.conversation_id, Segment.position)
        ):  # fmt: skip
            lines.setdefault(call, []).append((speaker, start, end, text, stored))
    found = _Reasons([], [], np.zeros((0, 0)), [], 0)
    vectors = []
    for call, summary, sentiment in rows:
        line = _reason_line(summary, lines.get(call, []))
        if line is None:
            found.without += 1
            continue
        found.ids.append(call)
        found.texts.append(line[0])
        vectors.append(np.frombuffer(line[1], np.int8))
        found.sentiment.append(((sentiment or {}).get("customer") or {}).get("label"))
    if vectors:
        found.vectors = meaning.unit_rows(np.stack(vectors))
    return found


def _reason_line(
    summary: dict[str, Any] | None, lines: list[tuple[str, float, float, str, bytes | None]]
) -> tuple[str, bytes] | None:
    """The text and meaning of the line that says why the customer called."""
    reason = (summary or {}).get("reason")
    if reason:
        at = reason.get("start_s", -1.0)
        for speaker, start, end, text, stored in lines:
            if stored is not None and speaker == reason.get("speaker") and start <= at < end:
                return text, stored
    for speaker, _start, _end, text, stored in lines:
        if speaker == "customer" and stored is not None and len(text.split()) >= REASON_WORDS:
            return text, stored
    return None


def _tokens(text: str) -> set[str]:
    return {w for w in re.findall(r"[^\W\d_]{4,}", text.lower())}


def _distinctive(texts: list[str], everyone: Counter[str], total: int) -> list[str]:
    """The words these TEXTS use more than all the reasons do (said in two at least)."""
    own = Counter(w for t in texts for w in _tokens(t))
    scored = [
        (count / len(texts) - everyone[w] / total, w) for w, count in own.items() if count >= 2
    ]
    return [w for lift, w in sorted(scored, key=lambda s: (-s[0], s[1])) if lift > 0][:WORDS]


def grouped(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The theme of each of VECTORS (unit rows, in a fixed order) and each theme's centre:
    k-means with as many themes as the square root of the calls (at most MOST_THEMES), a fixed
    seed, so the same calls give the same themes."""
    from sklearn.cluster import KMeans  # (here: the web layer loads no learning library)

    count = min(MOST_THEMES, max(1, round(len(vectors) ** 0.5)))
    fitted = KMeans(n_clusters=count, n_init=4, random_state=0).fit(vectors)
    return fitted.labels_, fitted.cluster_centers_


def themes(session: Session, user: User, queue_id: int | None, start: date, end: date) -> Themes:
    """The themes of the calls USER may see in QUEUE (all, when None) started from START to END
    (whole days), against the period of the same length before."""
    if not policy.get(session, "recordings.enabled"):
        raise ThemesWithheld(THEMES_OFF)

    def started(first: date, last: date) -> Select[Any]:
        query = visible_conversations(user).where(
            Conversation.started_at >= day_start(first), Conversation.started_at < day_end(last)
        )
        return query.where(Conversation.queue_id == queue_id) if queue_id else query

    now = _reasons(session, started(start, end))
    found = Themes(start, end, len(now.ids), now.without)
    if not now.ids:
        return found
    labels, centres = grouped(now.vectors)
    count = len(centres)
    days = (end - start).days + 1
    before = _reasons(session, started(start - timedelta(days=days), start - timedelta(days=1)))
    earlier = (
        Counter(np.argmax(before.vectors @ centres.T, axis=1).tolist()) if before.ids else None
    )
    everyone = Counter(w for t in now.texts for w in _tokens(t))
    for theme in range(count):
        members = np.flatnonzero(labels == theme)
        closeness = now.vectors[members] @ centres[theme]
        ranked = members[np.argsort(-closeness, kind="stable")]
        texts = [now.texts[i] for i in members]
        found.themes.append(
            Theme(
                name=now.texts[ranked[0]],
                words=_distinctive(texts, everyone, len(now.texts)),
                calls=len(members),
                share=round(len(members) / len(now.ids), 4),
                previous_share=(
                    round(earlier[theme] / len(before.ids), 4) if earlier is not None else None
                ),
                sentiment=dict(Counter(now.sentiment[i] or "none" for i in members)),
                examples=[Example(now.ids[i], now.texts[i]) for i in ranked[:EXAMPLES]],
            )
        )
    found.themes.sort(key=lambda t: (-t.calls, t.name))
    return found


def as_dict(found: Themes) -> dict[str, Any]:
    """The themes as the API gives them."""
    return {
        "from": found.start.isoformat(),
        "to": found.end.isoformat(),
        "calls": found.calls,
        "calls_without_reason": found.without_reason,
        "themes": [
            {
                "name": t.name,
                "words": t.words,
                "calls": t.calls,
                "share": t.share,
                "previous_share": t.previous_share,
                "change": (
                    round(t.share - t.previous_share, 4) if t.previous_share is not None else None
                ),
                "customer_sentiment": t.sentiment,
                "examples": [
                    {
                        "conversation_id": e.conversation_id,
                        "text": e.text,
                        "url": f"/conversations/{e.conversation_id}",
                    }
                    for e in t.examples
                ],
            }
            for t in found.themes
        ],
    }
