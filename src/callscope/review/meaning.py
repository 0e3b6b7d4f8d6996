"""Finding lines by what they mean (docs/architecture.md#by-meaning).

Each line's sentence embedding (measures/embeddings.py: the same model reads English and
Indonesian, so a question in one finds lines in the other) is stored with the line as 192
int8 values in the space of scripts/meaning_space.py (`segments.meaning`, 192 bytes a line),
written with the line and gone with it.

A process that searches keeps a copy of every stored vector in memory, brought up to date
from the database before each search: lines written since (by segment id), and lines that
changed or went (the `line_changes` log, written through refresh.py in the same transaction
as the change). The copy is searched exactly, every line compared, by NumKong's SIMD kernels
(the library usearch is built on) on every core, so no line is missed the way an approximate
index can miss one; on 3 million lines (about 100 000 calls) a search compares 0.55 GB and
takes about 0.1 s on two cores (docs/benchmarks.md#search-by-meaning).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numkong
import numpy as np
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from callscope.db import Database
from callscope.db.models import LineChange, Segment
from callscope.measures import embeddings

DIMENSIONS = 192  # numbers stored a line (the space of scripts/meaning_space.py)
SPACE = Path(__file__).parent / "meaning_space"  # .npz and .json (scripts/meaning_space.py)
# A line less similar than this to a query is not shown as answering it. On tests/data/meaning
# (docs/benchmarks.md#search-by-meaning) 94 % of the lines that do not answer a query fall
# under it, and 65 % of those that do pass it: results are ranked, closest first, so the
# floor only ends the list.
FLOOR = 0.20
MAX_QUERY = 500  # characters of a query
FIRST_LOOK = 1_000  # nearest lines looked at first; ten times more while too few are visible
READ_BATCH = 20_000  # vectors read from the database at a time
LATE = 5_000  # ids under a mark looked at again (see _Copy)
THREADS = os.cpu_count() or 1  # a search compares on every core


@cache
def _space() -> tuple[np.ndarray, np.ndarray]:
    with np.load(SPACE.with_suffix(".npz")) as arrays:
        return arrays["centre"], arrays["basis"]


def projected(vectors: np.ndarray) -> np.ndarray:
    """Sentence embeddings in the space searched by meaning, unit length: the call-centre
    lines' mean taken away, along the DIMENSIONS directions in which they differ most but the
    first, which is largely the language (scripts/meaning_space.py)."""
    centre, basis = _space()
    vectors = (vectors - centre) @ basis.T
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def quantised(vectors: np.ndarray) -> list[bytes]:
    """Sentence embeddings (measures/embeddings.py) as stored to be searched by meaning: int8
    bytes of each `projected` vector scaled so its largest value is ±127 (cosine similarity
    does not depend on a vector's length)."""
    vectors = projected(vectors)
    peaks = np.abs(vectors).max(axis=1, keepdims=True)
    scaled = np.rint(vectors / np.maximum(peaks, 1e-12) * 127)
    return [row.tobytes() for row in scaled.astype(np.int8)]


def unit_rows(stored: np.ndarray) -> np.ndarray:
    """Stored meanings (int8 rows) as unit float rows, to compare by their product."""
    rows = stored.astype(np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class Near:
    """A line close in meaning to a query."""

    line: int  # its segment id
    call: int  # its conversation's id
    similarity: float


@dataclass(frozen=True)
class Nearest:
    """Lines close in meaning to a query, closest first, as arrays."""

    lines: np.ndarray  # segment ids
    calls: np.ndarray  # their conversations' ids
    similarities: np.ndarray

    def __len__(self) -> int:
        return len(self.lines)

    def where(self, kept: np.ndarray) -> Nearest:
        """Those KEPT (a mask)."""
        return Nearest(self.lines[kept], self.calls[kept], self.similarities[kept])

    def each(self) -> list[Near]:
        return [
            Near(int(line), int(call), round(float(similarity), 4))
            for line, call, similarity in zip(
                self.lines, self.calls, self.similarities, strict=True
            )
        ]


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
        if not self.size and newest_line > self.line_mark:
            # a first read: room for all, and a quarter more for the calls that follow (growing
            # copies every vector: a second at 3 million lines)
            stored = session.scalar(
                select(func.count()).where(
                    Segment.id > self.line_mark, Segment.meaning.is_not(None)
                )
            )
            self._reserve((stored or 0) * 5 // 4)
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
            self._reserve(max(needed, len(self.lines) * 5 // 4, 1024))
        at = slice(self.size, needed)
        self.lines[at] = [r[0] for r in rows]
        self.calls[at] = [r[1] for r in rows]
        self.vectors[at] = np.frombuffer(b"".join(r[2] for r in rows), np.int8).reshape(
            -1, DIMENSIONS
        )
        self.size = needed

    def _reserve(self, capacity: int) -> None:
        """Room for CAPACITY lines."""
        if capacity > len(self.lines):
            self.vectors = _grown(self.vectors, capacity)
            self.lines = _grown(self.lines, capacity)
            self.calls = _grown(self.calls, capacity)

    def distances(self, query: np.ndarray) -> np.ndarray:
        """Every line's distance from QUERY (int8): 1 − cosine similarity, compared on every
        core (float64: asking NumKong for float32 is slower)."""
        if not self.size:
            return np.zeros(0)
        return np.asarray(
            numkong.cdist(
                query[None, :], self.vectors[: self.size], metric="angular", threads=THREADS
            )
        )[0]

    def nearest(self, rows: np.ndarray, distances: np.ndarray, count: int) -> Nearest:
        """The COUNT lines of ROWS (of the copy) with the smallest DISTANCES, closest first."""
        count = min(count, len(rows))
        first = np.argpartition(distances, count - 1)[:count] if count else rows[:0]
        first = first[np.argsort(distances[first], kind="stable")]
        return Nearest(self.lines[rows[first]], self.calls[rows[first]], 1.0 - distances[first])


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


def vectors(texts: list[str]) -> np.ndarray:
    """The int8 vectors of TEXTS as lines are stored, a row each (`errors.Unavailable` where
    sentence meaning cannot be read)."""
    return np.stack([np.frombuffer(b, np.int8) for b in quantised(embeddings.embed(texts))])


def vector(text: str) -> np.ndarray:
    """The int8 vector of TEXT, as `vectors`."""
    return vectors([text])[0]


def warm(db: Database) -> None:
    """Read every stored line's vector into this process's copy (a web server does so as it
    starts, so that its first search does not wait for them)."""
    with db.session() as session:
        copy = _copy(session)
        with copy.lock:
            copy.catch_up(session)


@contextmanager
def ranking(session: Session, query: np.ndarray) -> Iterator[Callable[[int], Nearest]]:
    """Every stored line compared with QUERY (an int8 vector) once: gives `closest(COUNT)`,
    of the COUNT lines closest in meaning those at least FLOOR similar, closest first. The
    process's copy is held (and no other search runs in it) until the block ends."""
    copy = _copy(session)
    with copy.lock:
        copy.catch_up(session)
        distances = copy.distances(query)
        rows = np.flatnonzero(distances <= 1 - FLOOR)  # (those under the floor never count)
        yield lambda count: copy.nearest(rows, distances[rows], count)


def closest(session: Session, query: np.ndarray, count: int) -> list[Near]:
    """Of the COUNT stored lines closest in meaning to QUERY (an int8 vector), those at least
    FLOOR similar, closest first."""
    with ranking(session, query) as ranked:
        return ranked(count).each()


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
