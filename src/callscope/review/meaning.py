"""Finding lines by what they mean (docs/search.md#by-meaning).

Each line's sentence embedding (measures/embeddings.py: the same model reads English and
Indonesian, so a question in one finds lines in the other) is stored with the line as 384
int8 values (`segments.meaning`, 384 bytes a line), written with the line and gone with it.

A process that searches keeps a copy of every stored vector in memory, brought up to date
from the database before each search: lines written since (by segment id), and lines that
changed or went (the `line_changes` log, written through refresh.py in the same transaction
as the change). The copy is searched exactly with usearch (SIMD kernels on every core), so no
line is missed the way an approximate index can miss one; on 3 million lines (about 100 000
calls) a search reads 1.1 GB and takes about 0.2 s on two cores (docs/benchmarks.md).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session
from usearch.index import MetricKind
from usearch.index import search as exact_search

from callscope.db.models import LineChange, Segment
from callscope.measures import embeddings

DIMENSIONS = embeddings.DIMENSIONS
SPACE = Path(__file__).parent / "meaning_space"  # .npz and .json (scripts/meaning_space.py)
# A line less similar than this to a query is not shown as answering it. On tests/data/meaning
# (docs/benchmarks.md#search-by-meaning) 91 % of the lines that do not answer a query fall
# under it, and 69 % of those that do pass it: results are ranked, closest first, so the
# floor only ends the list.
FLOOR = 0.15
MAX_QUERY = 500  # characters of a query
FIRST_LOOK = 5_000  # nearest lines looked at first; ten times more while too few are visible
READ_BATCH = 20_000  # vectors read from the database at a time
LATE = 5_000  # ids under a mark looked at again (see _Copy)


@cache
def _space() -> tuple[np.ndarray, np.ndarray]:
    with np.load(SPACE.with_suffix(".npz")) as arrays:
        return arrays["centre"], arrays["direction"]


def projected(vectors: np.ndarray) -> np.ndarray:
    """Sentence embeddings in the space searched by meaning, unit length: the call-centre
    lines' mean and their strongest direction (largely the language) taken away
    (scripts/meaning_space.py)."""
    centre, direction = _space()
    vectors = vectors - centre
    vectors = vectors - np.outer(vectors @ direction, direction)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def quantised(vectors: np.ndarray) -> list[bytes]:
    """Sentence embeddings (measures/embeddings.py) as stored to be searched by meaning: int8
    bytes of each `projected` vector scaled so its largest value is ±127 (cosine similarity
    does not depend on a vector's length)."""
    vectors = projected(vectors)
    peaks = np.abs(vectors).max(axis=1, keepdims=True)
    scaled = np.rint(vectors / np.maximum(peaks, 1e-12) * 127)
    return [row.tobytes() for row in scaled.astype(np.int8)]


@dataclass
class _Copy:
    """One database's line vectors, in this process."""

    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, DIMENSIONS), np.int8))
    lines: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # segment ids
    calls: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    size: int = 0
    line_mark: int = 0  # the highest segment id read
    change_mark: int = 0  # the highest line_changes id applied
    # ids above the marks less LATE, read or applied: on PostgreSQL a transaction may commit
    # after a later one did, so ids just under a mark are looked at again
    recent_lines: set[int] = field(default_factory=set)
    recent_changes: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def catch_up(self, session: Session) -> None:
        """Read what changed in the database since the last call."""
        newest_change = session.scalar(select(func.max(LineChange.id))) or 0
        newest_line = session.scalar(select(func.max(Segment.id))) or 0
        if newest_change < self.change_mark or newest_line < self.line_mark:
            self._reset()  # (another database at the same address: a restore, a test's)
        changes = session.execute(
            select(LineChange.id, LineChange.conversation_id, LineChange.before_line).where(
                LineChange.id > self.change_mark - LATE
            )
        ).all()
        self._forget([c for c in changes if c[0] not in self.recent_changes])
        self.change_mark = max([self.change_mark, *(c[0] for c in changes)])
        self.recent_changes = {c[0] for c in changes if c[0] > self.change_mark - LATE}
        earlier = self.line_mark
        while newest_line > self.line_mark:
            rows = session.execute(
                select(Segment.id, Segment.conversation_id, Segment.meaning)
                .where(Segment.id > self.line_mark, Segment.meaning.is_not(None))
                .order_by(Segment.id)
                .limit(READ_BATCH)
            ).all()
            self._append(rows)
            self.line_mark = rows[-1][0] if rows else newest_line
        late = (
            set(
                session.scalars(
                    select(Segment.id).where(
                        Segment.id > earlier - LATE,
                        Segment.id <= earlier,
                        Segment.meaning.is_not(None),
                    )
                )
            )
            - self.recent_lines
        )
        if late:
            self._append(
                session.execute(
                    select(Segment.id, Segment.conversation_id, Segment.meaning).where(
                        Segment.id.in_(sorted(late))
                    )
                ).all()
            )
        read = self.lines[: self.size]
        self.recent_lines = set(read[read > self.line_mark - LATE].tolist())

    def _reset(self) -> None:
        self.vectors, self.lines, self.calls = _Copy().vectors, _Copy().lines, _Copy().calls
        self.size = self.line_mark = self.change_mark = 0
        self.recent_lines, self.recent_changes = set(), set()

    def _forget(self, changes: Sequence[Any]) -> None:
        """Drop the lines the CHANGES say went: each (id, call, before) the call's lines
        numbered below BEFORE (all, when None)."""
        if not changes or not self.size:
            return
        before = {call: (b if b is not None else 2**62) for _i, call, b in changes}
        calls, lines = self.calls[: self.size], self.lines[: self.size]
        touched = np.isin(calls, list(before))
        limits = np.array([before.get(int(c), 0) for c in calls[touched]], dtype=np.int64)
        gone = np.zeros(self.size, dtype=bool)
        gone[touched] = lines[touched] < limits
        if gone.any():
            kept = ~gone
            count = int(kept.sum())
            self.vectors[:count] = self.vectors[: self.size][kept]
            self.lines[:count] = lines[kept]
            self.calls[:count] = calls[kept]
            self.vectors[count : self.size] = 0  # (what was said goes from memory too)
            self.size = count

    def _append(self, rows: Sequence[Any]) -> None:
        if not rows:
            return
        needed = self.size + len(rows)
        if needed > len(self.lines):
            capacity = max(needed, 2 * len(self.lines), 1024)
            self.vectors = _grown(self.vectors, capacity)
            self.lines = _grown(self.lines, capacity)
            self.calls = _grown(self.calls, capacity)
        at = slice(self.size, needed)
        self.lines[at] = [r[0] for r in rows]
        self.calls[at] = [r[1] for r in rows]
        self.vectors[at] = np.frombuffer(b"".join(r[2] for r in rows), np.int8).reshape(
            -1, DIMENSIONS
        )
        self.size = needed

    def nearest(self, query: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The segment ids of the COUNT lines closest to QUERY (int8), with their similarity,
        closest first."""
        count = min(count, self.size)
        if not count:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        found = exact_search(
            self.vectors[: self.size], query, count, MetricKind.Cos, exact=True, threads=0
        )
        return self.lines[found.keys.astype(np.int64)], 1.0 - found.distances.astype(np.float32)


def _grown(array: np.ndarray, capacity: int) -> np.ndarray:
    grown = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown


_copies: weakref.WeakKeyDictionary[Engine, _Copy] = weakref.WeakKeyDictionary()
_copies_lock = threading.Lock()


def _copy(session: Session) -> _Copy:
    engine = session.get_bind().engine
    with _copies_lock:
        return _copies.setdefault(engine, _Copy())


def vector(text: str) -> np.ndarray:
    """The int8 vector of TEXT (`errors.Unavailable` where sentence meaning cannot be read)."""
    return np.frombuffer(quantised(embeddings.embed([text]))[0], np.int8)


@dataclass(frozen=True)
class Near:
    """A line close in meaning to a query."""

    line: int  # its segment id
    similarity: float


def closest(session: Session, query: np.ndarray, count: int) -> list[Near]:
    """The COUNT stored lines closest in meaning to QUERY (an int8 vector), those at least
    FLOOR similar, closest first."""
    copy = _copy(session)
    with copy.lock:
        copy.catch_up(session)
        lines, similarities = copy.nearest(query, count)
    return [
        Near(int(line), round(float(s), 4))
        for line, s in zip(lines, similarities, strict=True)
        if s >= FLOOR
    ]


def changed(session: Session, conversation_ids: list[int]) -> None:
    """The calls' lines were written again (or removed, when they have none): every copy drops
    the earlier ones."""
    if not conversation_ids:
        return
    firsts = dict(
        session.execute(
            select(Segment.conversation_id, func.min(Segment.id))
            .where(Segment.conversation_id.in_(conversation_ids))
            .group_by(Segment.conversation_id)
        ).all()
    )
    session.execute(
        insert(LineChange),
        [{"conversation_id": i, "before_line": firsts.get(i)} for i in conversation_ids],
    )


def removed(session: Session, conversation_ids: list[int]) -> None:
    """The calls' lines are gone: every copy drops all of them."""
    if not conversation_ids:
        return
    session.execute(
        insert(LineChange),
        [{"conversation_id": i, "before_line": None} for i in conversation_ids],
    )
