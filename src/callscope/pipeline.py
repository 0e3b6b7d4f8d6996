"""Processing a conversation: the stages in order, with progress, writing results once."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from callscope import (
    analysis,
    asr,
    attribution,
    audit,
    diarization,
    media,
    metrics,
    pii,
    policy,
    retention,
    search,
    segments,
    sentiment,
)
from callscope.context import Context
from callscope.db.models import (
    AgentVoiceprint,
    Conversation,
    ConversationAnalysis,
    Segment,
    Word,
    utcnow,
)
from callscope.ingest import playback_order
from callscope.store import MediaStore, blob_key

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
        diarized = rec.speaker_source == "diarization"
        playback = playback_order(roles)  # channels as the playback rendition has them
        recording_id = rec.id
        redact = policy.get(session, "pii.redaction")
        keep_originals = policy.get(session, "pii.originals") == "administrators"
        language = conv.language
        spans = session_spans(conv)
        agent_ids = sorted({s.agent_id for s in conv.sessions})
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
        report(10 + 70 * sum(done) / len(done), "transcribing")

    report(10, "transcribing")
    recognised = transcriber.transcribe_channels(
        [audio[c] for c in order], language, channel_progress
    )
    speakers, voices = None, {}
    if diarized:
        report(80, "separating speakers")
        with ctx.db.session() as session:
            prints = _voiceprints(session, agent_ids)
        words, found = _diarized_words(audio[order[0]], recognised[0], language, prints)
        speakers = found.as_dict()
    else:
        report(80, "attributing speakers")
        words = attribution.attribute(
            [
                attribution.ChannelWords(c, roles[c], ws)
                for c, ws in zip(order, recognised, strict=True)
            ],
            audio,
            rate,
        )
        agent_channel = next((c for c in order if roles[c] == "agent"), None)
        voices = (
            _agent_voices(audio[agent_channel], words, spans) if agent_channel is not None else {}
        )
    redaction = None
    if redact:
        report(86, "redacting personal data")
        redaction = redact_call(ctx.store, ctx.settings.tmp_dir, original, words, roles, playback)
        words = redaction.words
    report(90, "scoring and saving")  # (progress is written in a session of its own)
    with ctx.db.session() as session:
        _learn_voiceprints(session, voices)  # (stereo calls only)
        save_results(session, conversation_id, words, language, spans, speakers)
        if redaction is not None:
            unneeded = redaction.store(session, conversation_id, keep_originals)
    if redaction is not None:  # (this recording no longer needs what it lists)
        retention.delete_unreferenced(ctx.db, ctx.store, unneeded, ignoring=recording_id)


@dataclass
class Redaction:
    """Personal data taken out of a conversation's words and playback audio."""

    words: list[segments.Word]  # with each span as one `[PII:type]` word
    originals: list[segments.Word]
    spans: list[tuple[str, float, float, str]]  # (speaker, start, end, type)
    playback_key: str | None  # the rendition with tones over the spans (None: nothing found)
    peaks_key: str | None

    def store(self, session: Session, conversation_id: int, keep_originals: bool) -> list[str]:
        """Record the redaction with the results; the media keys no longer wanted."""
        result = session.get(ConversationAnalysis, conversation_id)
        result.redactions = [
            {"speaker": who, "start_s": start, "end_s": end, "type": kind}
            for who, start, end, kind in self.spans
        ]
        result.original_transcript = (
            analysis.html_safe_json([asdict(w) for w in self.originals]) if keep_originals else None
        )
        if self.playback_key is None:
            return []
        rec = session.get(Conversation, conversation_id).recording
        old = (rec.playback_key, rec.peaks_key)
        rec.playback_key, rec.peaks_key = self.playback_key, self.peaks_key
        if keep_originals and rec.original_playback_key is None:
            rec.original_playback_key = old[0]
        unneeded = [k for k in old if k and k != rec.original_playback_key]
        if not keep_originals:  # the uploaded original and any kept rendition go too
            unneeded += [blob_key(rec.sha256), *filter(None, [rec.original_playback_key])]
            rec.original_playback_key = None
        return unneeded


def redact_call(
    store: MediaStore,
    tmp_dir: Path,
    original: str | None,
    words: list[segments.Word],
    roles: dict[int, str],
    order: list[int],
) -> Redaction:
    """Find personal data in WORDS and, where the call has audio (ORIGINAL, a media key), make a
    playback rendition with a tone over each span on the channel of the speaker who said it
    (the one channel of a mono call)."""
    redacted, spans = pii.redact(words)
    if not spans or original is None:
        return Redaction(redacted, words, spans, None, None)
    out_channel = {roles[c]: i for i, c in enumerate(order)}
    tones = [(out_channel.get(who, 0), start, end) for who, start, end, _kind in spans]
    digest = original.rsplit("/", 1)[-1]
    base = f"playback/{digest[:2]}/{digest}-redacted-{uuid.uuid4().hex}"
    with tempfile.TemporaryDirectory(dir=tmp_dir) as tmp:
        m4a, peaks = Path(tmp) / "r.m4a", Path(tmp) / "r.peaks.json"
        media.make_rendition(store.local_path(original), m4a, peaks, order, tones)
        store.put_file(f"{base}.m4a", m4a, move=True)
        store.put_file(f"{base}.peaks.json", peaks, move=True)
    return Redaction(redacted, words, spans, f"{base}.m4a", f"{base}.peaks.json")


def session_spans(conv: Conversation) -> list[attribution.SessionSpan]:
    rec = conv.recording
    return attribution.session_spans(
        [(s.agent_id, s.started_at, s.ended_at) for s in conv.sessions],
        (rec.started_at if rec else None) or conv.started_at or conv.sessions[0].started_at,
    )


def _diarized_words(
    audio: np.ndarray,
    recognised: list[asr.RecognisedWord],
    language: str,
    voiceprints: list[np.ndarray],
) -> tuple[list[segments.Word], diarization.Roles]:
    """The words of a single-channel recording with the speaker role of each."""
    dz = diarization.diarize(audio)
    who = [dz.speaker_of(w.start, w.end) for w in recognised]
    texts: dict[int, str] = {}
    for w, s in zip(recognised, who, strict=True):
        if s is not None:
            texts[s] = f"{texts.get(s, '')} {w.text}"
    first = next((s for s in who if s is not None), None)
    found = diarization.assign_roles(dz, texts, first, language, voiceprints)
    words = [
        segments.Word(found.role(s), w.start, w.end, w.text, w.confidence)
        for w, s in zip(recognised, who, strict=True)
    ]
    return words, found


def _voiceprints(session: Session, agent_ids: list[int]) -> list[np.ndarray]:
    rows = session.scalars(
        select(AgentVoiceprint).where(AgentVoiceprint.agent_id.in_(agent_ids))
    ).all()
    return [np.asarray(r.embedding, dtype=np.float32) for r in rows]


def _agent_voices(
    channel: np.ndarray, words: list[segments.Word], spans: list[attribution.SessionSpan]
) -> dict[int, tuple[np.ndarray, int]]:
    """Each agent's voice in this call, from the agent channel where that agent's words are."""
    stretches: dict[int, list[tuple[float, float]]] = {}
    for w in words:
        agent = attribution.agent_at(w.start, spans) if w.speaker == "agent" else None
        if agent is None:
            continue
        own = stretches.setdefault(agent, [])
        if own and w.start - own[-1][1] <= VOICE_GAP_S:
            own[-1] = (own[-1][0], w.end)
        else:
            own.append((w.start, w.end))
    voices = {}
    for agent, own in stretches.items():
        voice = diarization.voice_of(channel, own, VOICE_WINDOWS_PER_CALL)
        if voice is not None:
            voices[agent] = voice
    return voices


def _learn_voiceprints(session: Session, voices: dict[int, tuple[np.ndarray, int]]) -> None:
    for agent_id, (voice, windows) in voices.items():
        row = session.get(AgentVoiceprint, agent_id)
        old = np.asarray(row.embedding, dtype=np.float32) if row else None
        merged, total = diarization.updated_voiceprint(
            old, row.windows if row else 0, voice, windows
        )
        if row is None:
            row = AgentVoiceprint(agent_id=agent_id)
            session.add(row)
        row.embedding = [round(float(x), 6) for x in merged]
        row.windows = total


def save_results(
    session: Session,
    conversation_id: int,
    words: list[segments.Word],
    language: str,
    spans: list[attribution.SessionSpan],
    speakers: dict | None,
) -> None:
    """Segments, sentiment and metrics of WORDS, replacing the conversation's earlier results."""
    segs = segments.build_segments(words)
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
    conversation_metrics["speaker_source"] = (speakers or {}).get("source", "channels")
    session.execute(delete(Segment).where(Segment.conversation_id == conversation_id))
    for position, (seg, sc) in enumerate(zip(segs, scored, strict=True)):
        session.add(
            Segment(
                conversation_id=conversation_id,
                position=position,
                speaker=seg.speaker,
                agent_id=attribution.agent_at(seg.start, spans) if seg.speaker == "agent" else None,
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
            speakers=speakers,
            computed_at=utcnow(),
        )
    )
    session.flush()
    analysis.store_transcript(session, conversation_id)
    search.index(session, conversation_id)


SWAPPED = {"agent": "customer", "customer": "agent"}


class NotSwappable(Exception):
    """A conversation's speakers cannot be swapped (not processed yet)."""


def swap_speakers(session: Session, conversation_id: int, actor: audit.Actor) -> None:
    """Give the agent's words to the customer and the customer's to the agent, recompute
    sentiment and every metric, and audit it (one transaction: the caller's session)."""
    conv = session.get(Conversation, conversation_id)
    result = session.get(ConversationAnalysis, conversation_id)
    if conv is None or result is None or conv.processing_status != "processed":
        raise NotSwappable(f"conversation {conversation_id} has not been processed yet")
    rows = session.execute(  # plain values: the rows are replaced below
        select(Segment.speaker, Word.start_s, Word.end_s, Word.text, Word.confidence)
        .join(Word, Word.segment_id == Segment.id)
        .where(Segment.conversation_id == conversation_id)
        .order_by(Segment.position, Word.position)
    ).all()
    words = [
        segments.Word(SWAPPED.get(speaker, speaker), start, end, text, confidence)
        for speaker, start, end, text, confidence in rows
    ]
    words.sort(key=lambda w: (w.start, w.end, w.speaker))
    before = dict(result.speakers or {})
    speakers = {
        **before,
        "source": before.get("source", "channels"),
        "method": "manual",
        "confidence": 1.0,
        "swapped": not before.get("swapped", False),
    }
    save_results(
        session, conversation_id, words, result.language or "en", session_spans(conv), speakers
    )
    audit.record(
        session,
        actor,
        "conversation.swap_speakers",
        "conversation",
        conversation_id,
        previous_method=before.get("method"),
    )


VOICE_GAP_S = 0.5  # words this close are one stretch of an agent's voice
VOICE_WINDOWS_PER_CALL = 100  # about 40 s of an agent's speech per stereo call
