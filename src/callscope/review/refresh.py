"""The one door for what is derived from a call: whoever outside `review/` writes a call's
words, results or state calls this module in the same transaction, and nothing outside
`review/` names a read model (the stored transcript, the search index, category matches,
scorecard cells). Inside `review/`, evaluations and categories mark the weeks they change.

- `changed`: a call's words and results were written (processed, imported, swapped,
  recomputed): everything derived from them is made again, and copies of the lines' meanings
  drop the earlier lines.
- `counted`: what a call counts for changed (its processing state) but not its words: the
  weeks it is counted in are made again on their next read.
- `removed`: a call's words are gone (its recording purged) or the call is about to be deleted:
  whatever quotes them goes, and its weeks are made again.
- `rebuild`: every read model made again from nothing (after a restore, or to check one)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from callscope.db.models import (
    CategoryMatch,
    Conversation,
    ConversationAnalysis,
    Evaluation,
    LiveCall,
    LiveLine,
    Recording,
    ScorecardCategoryCell,
    ScorecardCell,
    ScorecardWeek,
)
from callscope.review import categories, document, evaluations, meaning, scorecells, search
from callscope.vocabulary import Status


def changed(session: Session, conversation_ids: Iterable[int]) -> None:
    """The calls' words and results were just written: their stored transcript, search index
    entry and category matches are made again, and their weeks marked."""
    ids = list(conversation_ids)
    session.flush()
    for conversation_id in ids:
        document.store_transcript(session, conversation_id)
        search.index(session, conversation_id)
        categories.evaluate(session, conversation_id)
    meaning.changed(session, ids)
    scorecells.mark(session, ids)


def counted(session: Session, conversation_ids: Iterable[int]) -> None:
    """What the calls count for changed (their processing state): their weeks are made again
    on the next read."""
    scorecells.mark(session, conversation_ids)


def removed(session: Session, conversation_ids: Iterable[int]) -> None:
    """The calls' words are gone, or the calls are about to be deleted: they leave the search
    index, what quotes their transcript goes (the stored transcript and its unredacted copy, the
    summary, the words of category matches and of evaluations' evidence, the lines heard while
    they were live; the categories matched and the moments stay), and their weeks are marked."""
    ids = list(conversation_ids)
    session.execute(
        delete(LiveLine).where(
            LiveLine.live_call_id.in_(select(LiveCall.id).where(LiveCall.conversation_id.in_(ids)))
        )
    )
    for conversation_id in ids:
        search.remove(session, conversation_id)  # an FTS5 table has no foreign key to cascade
    meaning.removed(session, ids)  # (the lines' vectors go with the lines; copies drop theirs)
    session.execute(
        update(ConversationAnalysis)
        .where(ConversationAnalysis.conversation_id.in_(ids))
        .values(transcript="[]", original_transcript=None, summary=None)
        .execution_options(synchronize_session="fetch")
    )
    for found in session.scalars(
        select(CategoryMatch).where(CategoryMatch.conversation_id.in_(ids))
    ):
        found.matches = [{**m, "text": None} for m in found.matches]
    for evaluation in session.scalars(
        select(Evaluation).where(Evaluation.conversation_id.in_(ids))
    ):
        evaluation.automatic = evaluations.unquoted(evaluation.automatic)
    scorecells.mark(session, ids)


def rebuild(session: Session) -> int:
    """Make every read model again from nothing: the stored transcript, search index entry
    and category matches of every processed call from its words, what a purged call's words
    leave (as `removed` leaves it: its category matches stay, without their words), and the
    scorecard cells (made again on their next read). Returns how many calls were refreshed."""
    for table in (ScorecardCategoryCell, ScorecardCell, ScorecardWeek):
        session.execute(delete(table))
    processed = session.execute(
        select(Conversation.id, Recording.purged_at.is_not(None))
        .join(ConversationAnalysis)
        .outerjoin(Recording)
        .where(Conversation.processing_status == Status.PROCESSED)
    ).all()
    removed(session, [i for i, purged in processed if purged])
    changed(session, [i for i, purged in processed if not purged])
    return len(processed)
