"""A conversation's results from its words: segments, sentiment, metrics, the summary, the
stored transcript, the search index and the categories matched, written together whoever
produced the words (processing, an import, a speaker swap)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from callscope import errors
from callscope.db.models import Conversation, ConversationAnalysis, Segment, Word, utcnow
from callscope.governance import audit
from callscope.measures import embeddings, learned, metrics, segments, sentiment, summary
from callscope.review import meaning, refresh
from callscope.speech import attribution, diarization
from callscope.vocabulary import UNSURE_BELOW, Speaker, Status


def session_spans(conv: Conversation) -> list[attribution.SessionSpan]:
    rec = conv.recording
    return attribution.session_spans(
        [(s.agent_id, s.started_at, s.ended_at) for s in conv.sessions],
        (rec.started_at if rec else None) or conv.started_at or conv.sessions[0].started_at,
    )


CHANNELS_REVERSED = "channels_reversed"
LOW_CONFIDENCE = "low_confidence"
CROSSTALK = "crosstalk"  # from the sound, not the words: kept when results are made again
INCOMPLETE = "incomplete"  # a live call cut off: the recording's own warning, kept too
HEARD_WARNINGS = (CROSSTALK, INCOMPLETE)


def mean_confidence(words: list[segments.Word]) -> float | None:
    """The mean confidence of the WORDS that have one, to 3 places; None if none has."""
    known = [w.confidence for w in words if w.confidence is not None]
    return round(sum(known) / len(known), 3) if known else None


def readings(
    segs: Sequence[segments.Segment],
    language: str,
    known: dict[str, np.ndarray] | None = None,
) -> list[learned.Reading]:
    """The sentiment of each of SEGS (learned.read, with the embeddings KNOWN), uncertain where
    its words were recognised with too little confidence for the words, and so their
    sentiment, to be trusted."""
    unsure = [
        (c := mean_confidence(seg.words)) is not None and c < sentiment.UNCERTAIN_BELOW
        for seg in segs
    ]
    read = iter(
        learned.read(
            [(s.text, s.speaker) for s, u in zip(segs, unsure, strict=True) if not u],
            language,
            known,
        )
    )
    return [learned.Reading(None, []) if u else next(read) for u in unsure]


def _embedded(texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Each distinct text's embedding; none where sentence meaning cannot be read here."""
    distinct = sorted(set(texts))
    if not distinct or not embeddings.available():
        return {}
    return dict(zip(distinct, embeddings.embed(distinct), strict=True))


def save_results(
    session: Session,
    conversation_id: int,
    words: list[segments.Word],
    language: str,
    spans: list[attribution.SessionSpan],
    speakers: dict | None,
    line_starts: frozenset[tuple[str, float]] | None = None,
    heard: Sequence[str] = (),
    model: str | None = None,
) -> None:
    """Lines, sentiment and metrics of WORDS, replacing the conversation's earlier results.

    Metrics and the conversation's sentiment come from the segments of docs/metrics.md; the
    transcript is stored as the lines a reader reads (those starting at LINE_STARTS, if given),
    each with its own sentiment. HEARD: warnings that recognition found in the sound
    (HEARD_WARNINGS), stored with those the words give. MODEL: the speech model that heard
    the words (None for a transcript made elsewhere)."""
    segs = segments.build_segments(words)
    lines = segments.build_lines(words, line_starts)
    known = _embedded([line.text for line in lines])  # (stored as each line's meaning)
    meanings = (
        dict(zip(known, meaning.quantised(np.stack(list(known.values()))), strict=True))
        if known
        else {}
    )
    read = readings([*segs, *lines], language, known)  # (a text the two share is read once)
    scored = [
        {"speaker": s.speaker, "start_s": s.start, "end_s": s.end, "score": r.score}
        for s, r in zip(segs, read[: len(segs)], strict=True)
        if r.score is not None
    ]
    line_readings = read[len(segs) :]
    scores = [r.score for r in line_readings]
    conversation_sentiment = {**sentiment.conversation(scored), "scorer": learned.scorer()}
    conversation_metrics = metrics.compute(segs)
    source = (speakers or {}).get("source", "channels")
    conversation_metrics["speaker_source"] = source
    confidence = mean_confidence(words)
    warnings = [
        *(
            [CHANNELS_REVERSED]
            if source == "channels" and diarization.looks_reversed(words, language)
            else []
        ),
        *([LOW_CONFIDENCE] if confidence is not None and confidence < UNSURE_BELOW else []),
        *heard,
    ]
    session.execute(delete(Segment).where(Segment.conversation_id == conversation_id))
    for position, (seg, reading) in enumerate(zip(lines, line_readings, strict=True)):
        score = reading.score
        session.add(
            Segment(
                conversation_id=conversation_id,
                position=position,
                speaker=seg.speaker,
                agent_id=attribution.agent_at(seg.start, spans)
                if seg.speaker == Speaker.AGENT
                else None,
                start_s=round(seg.start, 3),
                end_s=round(seg.end, 3),
                text=seg.text,
                sentiment_score=score,
                sentiment_label=sentiment.label(score) if score is not None else None,
                sentiment_because=reading.because,
                meaning=meanings.get(seg.text),
                words=[
                    Word(
                        position=i,
                        text=w.text,
                        start_s=w.start,
                        end_s=w.end,
                        confidence=w.confidence,
                    )
                    for i, w in enumerate(seg.words)
                ],
            )
        )
    overall = conversation_sentiment["overall"] or {}
    session.merge(
        ConversationAnalysis(
            conversation_id=conversation_id,
            language=language,
            sentiment_score=overall.get("score"),
            sentiment_label=overall.get("label"),
            agent_talk_pct=conversation_metrics["talk_to_listen"]["agent_pct"],
            switches=conversation_metrics["switches"]["count"],
            customer_sentiment=(conversation_sentiment.get("customer") or {}).get("score"),
            customer_trend=conversation_sentiment.get("trend"),
            non_talk_s=conversation_metrics["non_talk"]["total_s"],
            confidence=confidence,
            sentiment=conversation_sentiment,
            metrics=conversation_metrics,
            speakers=speakers,
            warnings=warnings,
            asr_model=model,
            summary=summary.summarise(lines, scores),
            computed_at=utcnow(),
        )
    )
    refresh.changed(session, [conversation_id])


SWAPPED = {"agent": "customer", "customer": "agent"}


def recompute(session: Session, conversation_id: int, actor: audit.Actor) -> None:
    """Compute a processed conversation's sentiment (and with it every result) again from its
    stored words, as the current scorer does, keeping its lines; audited."""
    conv, result = _processed(session, conversation_id)
    before = result.sentiment_score
    _save_again(session, conv, result.language, result.speakers)
    audit.record(
        session,
        actor,
        "conversation.recompute",
        "conversation",
        conversation_id,
        sentiment_before=before,
        sentiment_after=session.get_one(ConversationAnalysis, conversation_id).sentiment_score,
    )


def stored_words(
    session: Session, conversation_id: int, speakers: dict[str, str] | None = None
) -> tuple[list[segments.Word], frozenset[tuple[str, float]]]:
    """A conversation's stored words (each speaker renamed by SPEAKERS, if given), and where
    its lines start, so that results made again keep the lines the reader knows."""
    rename = speakers or {}
    rows = session.execute(  # plain values: the rows are replaced after
        select(Segment.id, Segment.speaker, Word.start_s, Word.end_s, Word.text, Word.confidence)
        .join(Word, Word.segment_id == Segment.id)
        .where(Segment.conversation_id == conversation_id)
        .order_by(Segment.position, Word.position)
    ).all()
    words = [
        segments.Word(rename.get(speaker, speaker), start, end, text, confidence)
        for _line, speaker, start, end, text, confidence in rows
    ]
    words.sort(key=lambda w: (w.start, w.end, w.speaker))
    firsts: dict[int, tuple[str, float]] = {}
    for line, speaker, start, *_rest in rows:
        firsts.setdefault(line, (rename.get(speaker, speaker), start))
    return words, frozenset(firsts.values())


class NotSwappable(errors.Conflict):
    """A conversation's speakers cannot be swapped, nor its results computed again (not
    processed yet)."""


def _processed(session: Session, conversation_id: int) -> tuple[Conversation, ConversationAnalysis]:
    conv = session.get(Conversation, conversation_id)
    result = session.get(ConversationAnalysis, conversation_id)
    if conv is None or result is None or conv.processing_status != Status.PROCESSED:
        raise NotSwappable(f"conversation {conversation_id} has not been processed yet")
    return conv, result


def _save_again(
    session: Session,
    conv: Conversation,
    language: str | None,
    speakers: dict | None,
    rename: dict[str, str] | None = None,
) -> None:
    """CONV's results made again from its stored words (speakers renamed by RENAME), keeping
    its lines."""
    words, lines = stored_words(session, conv.id, rename)
    earlier = session.get(ConversationAnalysis, conv.id)
    heard = [w for w in (earlier.warnings if earlier else None) or [] if w in HEARD_WARNINGS]
    model = earlier.asr_model if earlier else None
    save_results(
        session, conv.id, words, language or "en", session_spans(conv), speakers, lines, heard,
        model,
    )  # fmt: skip


def swap_speakers(session: Session, conversation_id: int, actor: audit.Actor) -> None:
    """Give the agent's words to the customer and the customer's to the agent, recompute
    sentiment and every metric, and audit it (one transaction: the caller's session)."""
    conv, result = _processed(session, conversation_id)
    before = dict(result.speakers or {})
    speakers = {
        **before,
        "source": before.get("source", "channels"),
        "method": "manual",
        "confidence": 1.0,
        "swapped": not before.get("swapped", False),
    }
    _save_again(session, conv, result.language, speakers, SWAPPED)
    audit.record(
        session,
        actor,
        "conversation.swap_speakers",
        "conversation",
        conversation_id,
        previous_method=before.get("method"),
    )
