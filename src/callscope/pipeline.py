"""Processing a conversation: the stages in order, with progress, writing results once."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sqlalchemy import delete

from callscope import analysis, asr, attribution, media, metrics, search, segments, sentiment
from callscope.context import Context
from callscope.db.models import Conversation, ConversationAnalysis, Segment, Word, utcnow
from callscope.store import blob_key

Report = Callable[[float, str | None], None]


class ProcessingError(Exception):
    """A conversation cannot be processed; the message says why."""


def process(ctx: Context, conversation_id: int, report: Report) -> None:
    """Transcribe, attribute, score and measure a conversation, replacing earlier results."""
    with ctx.db.session() as session:
        conv = session.get(Conversation, conversation_id)
        if conv is None or conv.recording is None:
            raise ProcessingError(f"conversation {conversation_id} has no recording")
        rec = conv.recording
        roles = {int(ch): role for ch, role in rec.channel_map.items()}
        language = conv.language
        spans = attribution.session_spans(
            [(s.agent_id, s.started_at, s.ended_at) for s in conv.sessions],
            rec.started_at or conv.started_at or conv.sessions[0].started_at,
        )
        original = blob_key(rec.sha256)
    if not ctx.store.exists(original):
        raise ProcessingError("the original recording is missing from the media store")

    report(2, "decoding")
    audio, rate = media.decode(ctx.store.local_path(original), sample_rate=asr.SAMPLE_RATE)
    report(5, "loading model")
    transcriber = asr.transcriber(ctx.settings)
    if language is None:
        report(8, "detecting language")
        language = transcriber.detect_language(np.mean(audio, axis=0))

    order = sorted(roles)
    done = [0.0] * len(order)

    def channel_progress(index: int, fraction: float) -> None:
        done[index] = fraction
        report(10 + 75 * sum(done) / len(done), "transcribing")

    report(10, "transcribing")
    recognised = transcriber.transcribe_channels(
        [audio[c] for c in order], language, channel_progress
    )
    report(86, "attributing speakers")
    words = attribution.attribute(
        [
            attribution.ChannelWords(c, roles[c], ws)
            for c, ws in zip(order, recognised, strict=True)
        ],
        audio,
        rate,
    )
    segs = segments.build_segments(words)
    report(90, "scoring sentiment")
    scored = [
        {
            "speaker": s.speaker,
            "start_s": s.start,
            "end_s": s.end,
            "score": sentiment.score(s.text, language),
        }
        for s in segs
    ]
    conversation_sentiment = sentiment.conversation(scored)
    conversation_metrics = metrics.compute(segs)
    report(95, "saving")
    with ctx.db.session() as session:
        session.execute(delete(Segment).where(Segment.conversation_id == conversation_id))
        for position, (seg, sc) in enumerate(zip(segs, scored, strict=True)):
            session.add(
                Segment(
                    conversation_id=conversation_id,
                    position=position,
                    speaker=seg.speaker,
                    agent_id=attribution.agent_at(seg.start, spans)
                    if seg.speaker == "agent"
                    else None,
                    start_s=round(seg.start, 3),
                    end_s=round(seg.end, 3),
                    text=seg.text,
                    sentiment_score=sc["score"],
                    sentiment_label=sentiment.label(sc["score"]),
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
                sentiment=conversation_sentiment,
                metrics=conversation_metrics,
                computed_at=utcnow(),
            )
        )
        session.flush()
        analysis.store_transcript(session, conversation_id)
        search.index(session, conversation_id)
