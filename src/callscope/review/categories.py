"""Categories (docs/metrics.md#categories): rules administrators define that calls match, by
what is said (or not said), by whom and when, and by metrics and sentiment; matched when a call
is processed or imported, and applied to stored calls in batches, with progress, when a
category is added or changed.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import Select, delete, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from callscope import errors
from callscope.db import Database
from callscope.db.models import (
    Category,
    CategoryMatch,
    Conversation,
    ConversationAnalysis,
    EvaluationForm,
    Recording,
    Segment,
    category_named,
)
from callscope.governance import audit
from callscope.measures import embeddings
from callscope.measures.sentiment import TREND_STEP
from callscope.review import meaning, scorecells, search
from callscope.vocabulary import Status

MAX_PHRASES = 50
MAX_PHRASE_CHARS = 200
MAX_EXAMPLES = 20  # example sentences of a category matched by meaning
# how similar in meaning (review/meaning.py) a line must be to one of a category's examples,
# unless the category says: chosen on tests/data/meaning (docs/benchmarks.md#search-by-meaning)
SIMILARITY = 0.35
MIN_PREFIX = 3  # letters before `*`: "a*" would match a quarter of any call's words
MAX_MOMENTS = 100  # moments a category keeps of one call (the first): pages and writes stay small
BATCH = 500  # stored calls matched against changed categories per step


class CategoryError(errors.Refused):
    """A category definition that cannot be used; the message names the field."""


class UnknownCategory(CategoryError, errors.NotFound):
    """No category with that id or name."""


class CategoryInUse(CategoryError, errors.Conflict):
    """An evaluation form answers a question from the category."""


class Conditions(BaseModel):
    """Conditions on a call's metrics and sentiment; every one given must hold."""

    model_config = ConfigDict(extra="forbid")
    non_talk_over_s: float | None = Field(None, ge=0, description="non-talk time over N seconds")
    interruptions_at_least: int | None = Field(None, ge=1, description="at least N interruptions")
    customer_sentiment: Literal["negative", "neutral", "positive"] | None = None
    customer_trend: Literal["falling", "rising"] | None = None

    def given(self) -> bool:
        return any(v is not None for v in self.model_dump().values())


class Definition(BaseModel):
    """What a category matches: PHRASES said, or lines that mean what one of the examples
    (LIKE) says (at least SIMILARITY similar), by SPEAKER in the first FIRST_S or last LAST_S
    seconds (or, ABSENT, the phrases not said there), and the CONDITIONS."""

    model_config = ConfigDict(extra="forbid")
    phrases: list[str] = Field(default_factory=list, max_length=MAX_PHRASES)
    like: list[str] = Field(default_factory=list, max_length=MAX_EXAMPLES)
    similarity: float | None = Field(None, ge=0, le=1)
    speaker: Literal["agent", "customer", "any"] = "any"
    first_s: float | None = Field(None, gt=0)
    last_s: float | None = Field(None, gt=0)
    absent: bool = False
    conditions: Conditions = Field(default_factory=Conditions)

    @field_validator("phrases")
    @classmethod
    def _phrases(cls, phrases: list[str]) -> list[str]:
        cleaned = []
        for phrase in phrases:
            words = phrase.split()
            if not words:
                raise ValueError("a phrase is empty")
            if len(phrase) > MAX_PHRASE_CHARS:
                raise ValueError(f"a phrase is longer than {MAX_PHRASE_CHARS} characters")
            if any("*" in w.rstrip("*") or w.strip("*") == "" for w in words):
                raise ValueError(f"{phrase!r}: `*` may only end a word (a prefix), as in refund*")
            if not all(_tokens(w.rstrip("*")) for w in words):
                raise ValueError(f"{phrase!r} has a word without letters or digits")
            cleaned.append(" ".join(words))
        return cleaned

    @field_validator("like")
    @classmethod
    def _examples(cls, examples: list[str]) -> list[str]:
        cleaned = []
        for example in examples:
            if not example.split():
                raise ValueError("an example is empty")
            if len(example) > MAX_PHRASE_CHARS:
                raise ValueError(f"an example is longer than {MAX_PHRASE_CHARS} characters")
            cleaned.append(" ".join(example.split()))
        return cleaned

    @model_validator(mode="after")
    def _complete(self) -> Definition:
        if not self.phrases and not self.like and not self.conditions.given():
            raise ValueError("give at least one phrase, example (like) or condition")
        if self.similarity is not None and not self.like:
            raise ValueError("similarity needs examples (like) to be similar to")
        if self.first_s is not None and self.last_s is not None:
            raise ValueError("give first_s or last_s, not both")
        if self.absent and not self.phrases:
            raise ValueError("absent needs the phrases that must not be said")
        return self

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_defaults=False)


def parse(fields: dict[str, Any]) -> Definition:
    """A definition from FIELDS (a new or changed category's); CategoryError naming the field
    otherwise."""
    try:
        definition = Definition.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            (".".join(map(str, e["loc"])) + ": " if e["loc"] else "")
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise CategoryError(f"invalid category: {problems}") from exc
    for phrase in definition.phrases:
        short = [w for w in phrase.split() if w.endswith("*") and len(w.rstrip("*")) < MIN_PREFIX]
        if short:
            raise CategoryError(
                f"invalid category: phrases: {phrase!r}: a prefix needs at least {MIN_PREFIX}"
                f" letters before `*` ({short[0]!r} would match most of a call)"
            )
    return definition


# --- matching -----------------------------------------------------------------------------


def fold(text: str) -> str:
    """TEXT lower-cased without diacritics (café → cafe)."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def _tokens(text: str) -> list[str]:
    """The words of TEXT as matched: folded, split at anything but letters, digits and '."""
    return TOKEN.findall(fold(text))


@dataclass(frozen=True)
class Pattern:
    """A phrase as tokens, each matched whole or, ending in `*`, as a prefix."""

    tokens: tuple[tuple[str, bool], ...]

    @classmethod
    @lru_cache(maxsize=4096)
    def of(cls, phrase: str) -> Pattern:
        tokens: list[tuple[str, bool]] = []
        for word in phrase.split():
            parts = _tokens(word.rstrip("*"))
            tokens += [(p, False) for p in parts[:-1]]
            tokens.append((parts[-1], word.endswith("*")))
        return cls(tuple(tokens))

    def at(self, words: list[str], i: int) -> bool:
        if i + len(self.tokens) > len(words):
            return False
        return all(
            words[i + k].startswith(t) if prefix else words[i + k] == t
            for k, (t, prefix) in enumerate(self.tokens)
        )


@dataclass(frozen=True)
class Line:
    """A transcript line as matching reads it: its speaker, and its words' tokens, each with
    the word it came from (a word like "e-mail" gives two), and where each token stands."""

    speaker: str
    tokens: list[str]
    words: list[dict[str, Any]]
    text: str = ""
    start_s: float = 0.0
    end_s: float = 0.0
    at: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i, token in enumerate(self.tokens):
            self.at.setdefault(token, []).append(i)


@dataclass(frozen=True)
class Spoken:
    """A call's transcript as matching reads it: its lines, and every token said in it."""

    lines: list[Line]
    vocabulary: frozenset[str]

    def firsts(self, pattern: Pattern) -> list[str]:
        """The tokens said in the call that may begin PATTERN (none: it is not said)."""
        first, prefix = pattern.tokens[0]
        if not prefix:
            return [first] if first in self.vocabulary else []
        return [token for token in self.vocabulary if token.startswith(first)]


def lines_of(segments: list[dict[str, Any]]) -> Spoken:
    """The transcript (the stored segments with their words), tokenised once."""
    lines = []
    for seg in segments:
        spoken = [(t, w) for w in seg["words"] for t in _tokens(w["text"])]
        lines.append(
            Line(
                seg["speaker"],
                [t for t, _w in spoken],
                [w for _t, w in spoken],
                seg.get("text", ""),
                seg.get("start_s", 0.0),
                seg.get("end_s", 0.0),
            )
        )
    return Spoken(lines, frozenset(t for line in lines for t in line.at))


def find(definition: Definition, spoken: Spoken, end_s: float) -> list[dict]:
    """Every moment in the call where one of the phrases is said by the speaker in the window
    (the first MAX_MOMENTS); END_S is when the call ends."""
    candidates = [
        (pattern, firsts)
        for pattern in map(Pattern.of, definition.phrases)
        if (firsts := spoken.firsts(pattern))
    ]
    found: list[dict] = []
    if not candidates:
        return found
    for line in spoken.lines:
        if definition.speaker != "any" and line.speaker != definition.speaker:
            continue
        # each place a phrase starts, the first phrase (in the order given) that is said there
        places: dict[int, Pattern] = {}
        for pattern, firsts in candidates:
            for token in firsts:
                for i in line.at.get(token, ()):
                    if i not in places and pattern.at(line.tokens, i):
                        places[i] = pattern
        for i in sorted(places):
            if len(found) == MAX_MOMENTS:
                return found
            words = line.words[i : i + len(places[i].tokens)]
            first, last = words[0], words[-1]
            if definition.first_s is not None and first["start_s"] >= definition.first_s:
                continue
            if definition.last_s is not None and last["end_s"] <= end_s - definition.last_s:
                continue
            found.append(
                {
                    "speaker": line.speaker,
                    "start_s": round(first["start_s"], 3),
                    "end_s": round(last["end_s"], 3),
                    "text": " ".join(dict.fromkeys(w["text"] for w in words)),  # (a word once)
                }
            )
    return found


@lru_cache(maxsize=256)
def examples_meaning(examples: tuple[str, ...]) -> np.ndarray:
    """The EXAMPLES' meanings as lines are stored (int8), as unit rows."""
    return meaning.unit_rows(meaning.vectors(list(examples)))


def alike(definition: Definition, spoken: Spoken, meanings: np.ndarray, end_s: float) -> list[dict]:
    """Every line in the call, by the speaker in the window, whose meaning (MEANINGS: a unit
    row a line, as `meaning.unit_rows` gives them) is at least the definition's similarity to one of
    its examples, with that similarity and the example."""
    if not len(meanings):
        return []
    similar = meanings @ examples_meaning(tuple(definition.like)).T
    least = definition.similarity if definition.similarity is not None else SIMILARITY
    found = []
    for line, row in zip(spoken.lines, similar, strict=False):
        best = int(row.argmax())
        if row[best] < least:
            continue
        if definition.speaker != "any" and line.speaker != definition.speaker:
            continue
        if definition.first_s is not None and line.start_s >= definition.first_s:
            continue
        if definition.last_s is not None and line.end_s <= end_s - definition.last_s:
            continue
        found.append(
            {
                "speaker": line.speaker,
                "start_s": round(line.start_s, 3),
                "end_s": round(line.end_s, 3),
                "text": line.text,
                "similarity": round(float(row[best]), 3),
                "like": definition.like[best],
            }
        )
    return found


def holds(conditions: Conditions, metrics: dict[str, Any], sentiment: dict[str, Any]) -> bool:
    """Whether the call's METRICS and SENTIMENT meet every condition given."""
    if conditions.non_talk_over_s is not None:
        if ((metrics.get("non_talk") or {}).get("total_s") or 0) <= conditions.non_talk_over_s:
            return False
    if conditions.interruptions_at_least is not None:
        counted = sum(v.get("count", 0) for v in (metrics.get("interruptions") or {}).values())
        if counted < conditions.interruptions_at_least:
            return False
    if conditions.customer_sentiment is not None:
        if ((sentiment.get("customer") or {}).get("label")) != conditions.customer_sentiment:
            return False
    if conditions.customer_trend is not None:
        trend = sentiment.get("trend")
        if trend is None:
            return False
        if conditions.customer_trend == "falling" and trend > -TREND_STEP:
            return False
        if conditions.customer_trend == "rising" and trend < TREND_STEP:
            return False
    return True


def match(
    definition: Definition,
    spoken: Spoken,
    end_s: float,
    metrics: dict[str, Any],
    sentiment: dict[str, Any],
    meanings: np.ndarray | None = None,
) -> list[dict] | None:
    """The moments a call matches DEFINITION at ([] for a match by absence or by conditions
    alone), or None when it does not match. MEANINGS: its lines' (`alike`), where the
    definition has examples."""
    if not holds(definition.conditions, metrics, sentiment):
        return None
    if definition.absent:
        return None if find(definition, spoken, end_s) else []
    if not definition.phrases and not definition.like:
        return []
    found = find(definition, spoken, end_s) if definition.phrases else []
    if definition.like and meanings is not None:
        found += alike(definition, spoken, meanings, end_s)
        found.sort(key=lambda m: m["start_s"])
    return found[:MAX_MOMENTS] or None


def live(definition: Definition) -> bool:
    """Whether a line can make DEFINITION match while the call goes on: by phrases or examples,
    not by absence, the call's last seconds or its metrics (known only when it ends)."""
    return bool(
        (definition.phrases or definition.like)
        and not definition.absent
        and definition.last_s is None
        and not definition.conditions.given()
    )


def live_matches(
    session: Session, line: dict[str, Any], skip: set[str | None]
) -> list[tuple[str, dict]]:
    """The categories (but those named in SKIP) that LINE of a live call (a stored segment's
    shape, with its words) matches, each with its first moment."""
    every = [
        (c.name, d)
        for c in session.scalars(select(Category).order_by(Category.name))
        if c.name not in skip and live(d := Definition.model_validate(c.definition))
    ]
    if not every:
        return []
    spoken = lines_of([line])
    meanings = (
        meaning.unit_rows(meaning.vectors([line["text"]]))
        if any(d.like for _n, d in every) and embeddings.available()
        else None
    )
    found = []
    for name, definition in every:
        moments = match(definition, spoken, line["end_s"], {}, {}, meanings)
        if moments:
            found.append((name, moments[0]))
    return found


# --- stored calls -------------------------------------------------------------------------


@dataclass
class Call:
    """What matching reads of a stored call."""

    conversation_id: int
    spoken: Spoken
    end_s: float
    metrics: dict[str, Any]
    sentiment: dict[str, Any]
    meanings: np.ndarray | None = None  # its lines' meanings (unit rows), when read

    def match(self, definition: Definition) -> list[dict] | None:
        return match(
            definition, self.spoken, self.end_s, self.metrics, self.sentiment, self.meanings
        )


def _meanings(session: Session, ids: list[int]) -> dict[int, np.ndarray]:
    """The stored meanings of the calls' lines, in order (unit rows); a call whose lines have
    none (stored before they were kept, or where the model could not load) has none."""
    found: dict[int, list[bytes | None]] = {}
    for conversation_id, stored in session.execute(
        select(Segment.conversation_id, Segment.meaning)
        .where(Segment.conversation_id.in_(ids))
        .order_by(Segment.conversation_id, Segment.position)
    ):
        found.setdefault(conversation_id, []).append(stored)
    return {
        call: meaning.unit_rows(np.frombuffer(b"".join(kept), np.int8).reshape(len(kept), -1))
        for call, rows in found.items()
        if len(kept := [r for r in rows if r is not None]) == len(rows)
    }


def _calls(session: Session, ids: Iterable[int], meant: bool = False) -> list[Call]:
    """What matching reads of the calls IDS (MEANT: with their lines' meanings)."""
    ids = list(ids)
    rows = session.execute(
        select(
            ConversationAnalysis.conversation_id,
            ConversationAnalysis.transcript,
            ConversationAnalysis.metrics,
            ConversationAnalysis.sentiment,
            Recording.duration_s,
        )
        .outerjoin(Recording, Recording.conversation_id == ConversationAnalysis.conversation_id)
        .where(ConversationAnalysis.conversation_id.in_(ids))
    ).all()
    meanings = _meanings(session, ids) if meant else {}
    calls = []
    for conversation_id, transcript, metrics, sentiment, duration in rows:
        segments = json.loads(transcript) if transcript else []
        spoken_end = max((s["end_s"] for s in segments), default=0.0)
        calls.append(
            Call(
                conversation_id,
                lines_of(segments),
                duration or spoken_end,
                metrics or {},
                sentiment or {},
                meanings.get(conversation_id),
            )
        )
    return calls


def _keep(session: Session, rows: list[dict[str, Any]]) -> None:
    """Write matches, replacing one of the same call and category: a worker applying a
    category and a worker processing the call may both write it, and neither may fail."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    for first in range(0, len(rows), 1000):  # (a statement's parameters are limited)
        statement = insert(CategoryMatch).values(rows[first : first + 1000])
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["conversation_id", "category_id"],
                set_={"matches": statement.excluded.matches},
            )
        )


def _definitions(categories: Iterable[Category]) -> list[tuple[int, Definition]]:
    return [(c.id, Definition.model_validate(c.definition)) for c in categories]


def evaluate(session: Session, conversation_id: int) -> None:
    """Match the conversation against every category, replacing its earlier matches (its
    results have just been made)."""
    every = _definitions(session.scalars(select(Category)))
    session.execute(delete(CategoryMatch).where(CategoryMatch.conversation_id == conversation_id))
    if not every:
        return
    session.flush()
    meant = any(d.like for _i, d in every)
    _keep(session, _matches(_calls(session, [conversation_id], meant), every))


def _matches(calls: list[Call], definitions: list[tuple[int, Definition]]) -> list[dict]:
    """The match rows of CALLS against DEFINITIONS."""
    return [
        {"conversation_id": call.conversation_id, "category_id": category_id, "matches": found}
        for call in calls
        for category_id, definition in definitions
        if (found := call.match(definition)) is not None
    ]


def apply_step(db: Database, batch: int = BATCH) -> tuple[int, int] | None:
    """Match the next BATCH stored calls against the categories added or changed since, all
    in one pass (each call is read once for all of them); returns (calls done so far, calls in
    all) of this pass, or None when every category is applied.

    The categories furthest behind go first; once they reach the others, they go on together."""
    with db.session() as session:
        behind = session.scalars(
            select(Category).where(Category.applied_version < Category.version)
        ).all()
        if not behind:
            return None
        cursor = min(c.applied_through for c in behind)
        group = [c for c in behind if c.applied_through == cursor]
        # (up to where the next group has got: there the two go on as one)
        ahead = min((c.applied_through for c in behind if c.applied_through > cursor), default=None)
        if cursor == 0:  # a fresh run: the matches of their old versions go
            session.execute(
                delete(CategoryMatch).where(CategoryMatch.category_id.in_([c.id for c in group]))
            )
            scorecells.mark_all(session)
        definitions = _definitions(group)
        query = select(Conversation.id).where(
            Conversation.id > cursor, Conversation.processing_status == Status.PROCESSED
        )
        if ahead is not None:
            query = query.where(Conversation.id <= ahead)
        ids = list(session.scalars(query.order_by(Conversation.id).limit(batch)))
        meant = any(d.like for _i, d in definitions)
        calls = _calls(session, _prefilter(session, [d for _i, d in definitions], ids), meant)
        _keep(session, _matches(calls, definitions))
        scorecells.mark(session, ids)
        total = (
            session.scalar(
                select(func.count()).where(Conversation.processing_status == Status.PROCESSED)
            )
            or 0
        )
        if len(ids) < batch and ahead is None:  # the last batch: applied
            for category in group:
                category.applied_version, category.applied_through = category.version, 0
            return total, total
        reached = ids[-1] if len(ids) == batch else ahead
        assert reached is not None
        for category in group:
            category.applied_through = reached
        done = session.scalar(
            select(func.count()).where(
                Conversation.id <= reached, Conversation.processing_status == Status.PROCESSED
            )
        )
        return done or 0, total


def _prefilter(session: Session, definitions: list[Definition], ids: list[int]) -> list[int]:
    """Of IDS, those that can match one of DEFINITIONS: when each has phrases that must be
    said, only the calls whose transcript holds one of them (found through the search index)."""
    phrases: set[str] = set()
    for definition in definitions:
        if definition.absent or not definition.phrases or definition.like:
            return ids
        phrases.update(definition.phrases)
    holding: set[int] = set()
    for phrase in sorted(phrases):
        # (a prefix inside a phrase, or letters the index may not fold: every call is read)
        if "*" in phrase.rstrip("*") or not phrase.isascii():
            return ids
        found = [" ".join(_tokens(phrase)) + ("*" if phrase.endswith("*") else "")]
        holding.update(
            session.scalars(
                select(Conversation.id).where(
                    Conversation.id.in_(ids), search.matching(session, found)
                )
            )
        )
    return sorted(holding)


def pending(db: Database) -> list[str]:
    """The names of the categories whose stored matches are behind their definition."""
    with db.session() as session:
        return list(
            session.scalars(
                select(Category.name)
                .where(Category.applied_version < Category.version)
                .order_by(Category.name)
            )
        )


def apply_next(db: Database) -> bool:
    """One batch of applying the categories behind their definition (what workers do between
    jobs); whether there was one."""
    return apply_step(db) is not None


# --- administration -----------------------------------------------------------------------


def listing(session: Session, among: Select[Any] | None = None) -> list[dict[str, Any]]:
    """Every category with its definition, how many calls match (of AMONG, a query of the
    conversations the caller may see, else of all), and how far applying is."""
    query = select(CategoryMatch.category_id, func.count()).group_by(CategoryMatch.category_id)
    if among is not None:
        query = query.where(
            CategoryMatch.conversation_id.in_(among.with_only_columns(Conversation.id))
        )
    counts: dict[int, int] = {i: n for i, n in session.execute(query)}
    processed = Conversation.processing_status == Status.PROCESSED
    total = session.scalar(select(func.count()).where(processed)) or 0

    def progress(category: Category) -> float | None:
        """How far matching the stored calls against its definition has got (in %)."""
        if category.applied_version >= category.version:
            return None
        through = Conversation.id <= category.applied_through
        done = session.scalar(select(func.count()).where(processed, through)) or 0
        return round(100 * done / total, 1) if total else 0.0

    return [
        {
            "id": c.id,
            "name": c.name,
            "like": [],
            "similarity": None,
            **c.definition,
            "calls": counts.get(c.id, 0),
            "applied": c.applied_version >= c.version,
            "progress_pct": progress(c),
        }
        for c in session.scalars(select(Category).order_by(Category.name))
    ]


def _free_name(session: Session, name: str, category: Category | None = None) -> str:
    """NAME, stripped, once it is a name no other category than CATEGORY has."""
    name = name.strip()
    if not name or len(name) > 100:
        raise CategoryError("invalid category: name: give a name of 1 to 100 characters")
    if (named := category_named(session, name)) is not None and named is not category:
        raise CategoryError(f"invalid category: name: a category named {name!r} exists")
    return name


def add(session: Session, actor: audit.Actor, name: str, fields: dict[str, Any]) -> Category:
    """A new category (applied to stored calls by the workers, or `categories apply`)."""
    definition = parse(fields)
    name = _free_name(session, name)
    category = Category(name=name, definition=definition.as_dict(), version=1, applied_version=0)
    session.add(category)
    session.flush()
    audit.record(session, actor, "category.add", "category", category.id, name=name)
    return category


def change(
    session: Session, actor: audit.Actor, ident: str | int, name: str, fields: dict[str, Any]
) -> Category:
    """A category's name and definition changed: its stored matches are made again from the
    new definition by the workers (or `categories apply`), as a new category's are. A category
    an evaluation form answers from keeps its name (change the form first). Audited with the
    definition before and after."""
    category = find_category(session, ident)
    definition = parse(fields).as_dict()
    name = _free_name(session, name, category)
    if name.casefold() != category.name.casefold() and (
        users := _forms_using(session, category.name)
    ):
        raise CategoryInUse(
            f"category {category.name!r} answers {', '.join(users)}: it keeps its name until "
            "the form is changed"
        )
    before = {"name": category.name, "definition": category.definition}
    if definition != category.definition:
        category.version += 1
        category.applied_through = 0  # (matched again from the first call)
    category.name, category.definition = name, definition
    audit.record(
        session,
        actor,
        "category.change",
        "category",
        category.id,
        before=before,
        after={"name": name, "definition": definition},
    )
    return category


def find_category(session: Session, ident: str | int) -> Category:
    """A category by id (a number), or by what is typed: its name (any case), else its id
    written as digits (a category named "81" is found by its name, not as id 81)."""
    number: int | None = ident if isinstance(ident, int) else None
    if isinstance(ident, str):
        named = category_named(session, ident)
        if named is not None:
            return named
        typed = ident.strip()
        number = int(typed) if typed.isascii() and typed.isdigit() and len(typed) < 19 else None
    category = session.get(Category, number) if number is not None else None
    if category is None:
        raise UnknownCategory(f"no category {ident!r}")
    return category


def remove(session: Session, actor: audit.Actor, ident: str | int) -> None:
    """Remove a category and its matches; refused while the newest version of an evaluation
    form answers a question from it."""
    category = find_category(session, ident)
    if users := _forms_using(session, category.name):
        raise CategoryInUse(
            f"category {category.name!r} answers {', '.join(users)}: change the form first"
        )
    audit.record(session, actor, "category.remove", "category", category.id, name=category.name)
    session.delete(category)
    scorecells.mark_all(session)


def _forms_using(session: Session, name: str) -> list[str]:
    """The questions ("form 'F', question q") of the newest form versions answered from the
    category NAME."""
    newest: dict[str, dict[str, Any]] = {}
    for form in session.scalars(select(EvaluationForm).order_by(EvaluationForm.version)):
        newest[form.name] = form.definition
    return [
        f"form {form_name!r}, question {question['id']}"
        for form_name, definition in newest.items()
        for section in definition["sections"]
        for question in section["questions"]
        if (question.get("auto") or {}).get("category", "").casefold() == name.casefold()
    ]


def reapply(session: Session) -> int:
    """Mark every category to be applied again to all stored calls; returns how many."""
    categories = list(session.scalars(select(Category)))
    for category in categories:
        category.version += 1
        category.applied_through = 0
    return len(categories)


def names_of(session: Session, conversation_id: int) -> list[dict[str, Any]]:
    """The categories a conversation matched, by name, with their moments."""
    rows = session.execute(
        select(Category.name, CategoryMatch.matches)
        .join(CategoryMatch, CategoryMatch.category_id == Category.id)
        .where(CategoryMatch.conversation_id == conversation_id)
        .order_by(Category.name)
    ).all()
    return [{"name": name, "matches": matches} for name, matches in rows]
