"""Processing a conversation: the stages in order, with progress, writing results once."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from callscope import errors
from callscope.config import Settings
from callscope.context import Context
from callscope.db.models import AgentVoiceprint, Conversation
from callscope.governance import policy
from callscope.measures import embeddings
from callscope.processing import retention
from callscope.processing.redaction import redact_call
from callscope.processing.results import CROSSTALK, save_results, session_spans
from callscope.speech import asr, attribution, diarization, media, voices
from callscope.store import blob_key
from callscope.vocabulary import LANGUAGES, Speaker

Report = Callable[[float, str | None], None]


class ProcessingError(errors.Unavailable):
    """A conversation cannot be processed; the message says why."""


def process(
    ctx: Context,
    conversation_id: int,
    report: Report,
    keep: Callable[[Session], None] = lambda _session: None,
) -> None:
    """Transcribe, attribute, score and measure a conversation, replacing earlier results;
    KEEP(session) is called in the transaction that writes them, first (it may refuse)."""
    with ctx.db.session() as session:
        conv = session.get(Conversation, conversation_id)
        if conv is None or conv.recording is None:
            raise ProcessingError(f"conversation {conversation_id} has no recording")
        rec = conv.recording
        roles = {int(ch): role for ch, role in rec.channel_map.items()}
        diarized = rec.speaker_source == "diarization"
        playback = media.playback_order(roles)  # channels as the playback rendition has them
        recording_id = rec.id
        arrived = list(rec.warnings or [])  # (what was wrong as it came in: "incomplete")
        redact = policy.get(session, "pii.redaction")
        keep_originals = policy.get(session, "pii.originals") == "administrators"
        language = conv.language
        terms = conv.queue.terms if conv.queue else []
        spans = session_spans(conv)
        agent_ids = sorted({s.agent_id for s in conv.sessions})
        original = blob_key(rec.sha256)
    if not ctx.store.exists(original):
        raise ProcessingError("the original recording is missing from the media store")

    report(2, "decoding")
    # only the channels that carry a speaker, in a child process (the worker's memory holds
    # what it reads of them); below, channels are numbered as decoded
    decoded = sorted(roles)
    audio = media.decode_channels(ctx.store.local_path(original), decoded, ctx.settings.tmp_dir)
    rate = media.SAMPLE_RATE
    heard_roles = {decoded.index(channel): role for channel, role in roles.items()}
    report(5, "loading model")
    if language is None:
        report(8, "detecting language")
        language = asr.transcriber(ctx.settings).detect_language(np.mean(audio, axis=0))
    transcriber = asr.transcriber(ctx.settings, language)  # (a model of its own, if set)

    done = [0.0] * len(roles)

    def channel_progress(index: int, fraction: float) -> None:
        done[index] = fraction
        report(10 + 70 * sum(done) / len(done), "transcribing")

    report(10, "transcribing")
    channels = attribution.recognise(
        transcriber, audio, heard_roles, language, terms, channel_progress
    )
    inseparable = attribution.INSEPARABLE_LEAK_DB
    noted = arrived + (
        [CROSSTALK]
        if any(c.leak_db is not None and c.leak_db >= inseparable for c in channels)
        else []
    )
    speakers, heard = None, {}
    if diarized:
        report(80, "separating speakers")
        with ctx.db.session() as session:
            prints = _voiceprints(session, agent_ids)
        only = channels[0]
        words, found = voices.diarized_words(audio[only.channel], only.words, language, prints)
        speakers = found.as_dict()
    else:
        report(80, "attributing speakers")
        words = attribution.attribute(channels, audio, rate)
        agent_channel = next((c.channel for c in channels if c.speaker == Speaker.AGENT), None)
        heard = (
            voices.agent_voices(audio[agent_channel], words, spans)
            if agent_channel is not None
            else {}
        )
    redaction = None
    if redact:
        report(86, "redacting personal data")
        redaction = redact_call(ctx.store, ctx.settings.tmp_dir, original, words, roles, playback)
        words = redaction.words
    report(90, "scoring and saving")  # (progress is written in a session of its own)
    with ctx.db.session() as session:
        keep(session)
        _learn_voiceprints(session, heard)  # (stereo calls only)
        save_results(
            session, conversation_id, words, language, spans, speakers,
            heard=noted, model=transcriber.model_name,
        )  # fmt: skip
        if redaction is not None:
            unneeded = redaction.store(session, conversation_id, keep_originals)
    if redaction is not None:  # (this recording no longer needs what it lists)
        retention.delete_unreferenced(ctx.db, ctx.store, unneeded, ignoring=recording_id)


def warm_up(settings: Settings) -> None:
    """Load every model a job can need (speech model, voice activity detector, speaker
    encoder, sentence model) and run each once, so that a worker's first call does not wait
    for them."""
    one_language_each = {settings.speech_model(lang): lang for lang in (None, *LANGUAGES)}
    for language in one_language_each.values():  # (each model once)
        asr.transcriber(settings, language).warm_up()
    diarization.warm_up()
    if embeddings.available():
        embeddings.embed(["warming up"])


def _voiceprints(session: Session, agent_ids: list[int]) -> list[np.ndarray]:
    rows = session.scalars(
        select(AgentVoiceprint).where(AgentVoiceprint.agent_id.in_(agent_ids))
    ).all()
    return [np.asarray(r.embedding, dtype=np.float32) for r in rows]


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
