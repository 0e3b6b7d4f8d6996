"""The analysis document (docs/api.md), built from the store, and the conversation view: what
a user is shown of one call (the document, its player's timeline, the evaluation panel and what
the user may do with it)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callscope.db.models import (
    Agent,
    Conversation,
    ConversationAnalysis,
    Segment,
    User,
    Word,
    latest_job,
)
from callscope.governance import access, audit, policy
from callscope.governance.access import Action
from callscope.measures import sentiment
from callscope.review import categories, comments, evaluations


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def overview(conv: Conversation) -> dict[str, Any]:
    """The overview fields of a conversation (agent, customer, queue, status, consent …)."""
    agent = conv.primary_agent
    contact = conv.contact
    return {
        "primary_agent": {"external_id": agent.external_id, "name": agent.name} if agent else None,
        "customer": (
            {
                "external_id": contact.external_id,
                "name": contact.name,
                "phone": contact.phone,
                "email": contact.email,
            }
            if contact
            else None
        ),
        "channel": conv.channel,
        "status": conv.status,
        "status_reason": conv.status_reason,
        "queue": conv.queue.name if conv.queue else None,
        "workstream": conv.workstream.name if conv.workstream else None,
        "started_at": _iso(conv.started_at),
        "ended_at": _iso(conv.ended_at),
        "duration_s": _seconds(conv.started_at, conv.ended_at),
        "skills": [s.name for s in agent.skills] if agent else [],
        "regarding": (
            {
                "type": conv.regarding_type,
                "id": conv.regarding_id,
                "title": conv.regarding_title,
                "url": conv.regarding_url,
            }
            if conv.regarding_id or conv.regarding_url or conv.regarding_title
            else None
        ),
        "modified_on": _iso(conv.modified_on),
        "consent": {
            "status": conv.consent_status,
            "method": conv.consent_method,
            "at": _iso(conv.consent_at),
        },
    }


def transcript_segments(session: Session, conversation_id: int) -> list[dict[str, Any]]:
    """The transcript's segments with their words, read in two queries (long calls have
    thousands of words)."""
    rows = session.execute(
        select(
            Segment.id,
            Segment.speaker,
            Agent.name,
            Segment.start_s,
            Segment.end_s,
            Segment.text,
            Segment.sentiment_score,
            Segment.sentiment_label,
            Segment.sentiment_because,
        )
        .outerjoin(Agent, Agent.id == Segment.agent_id)
        .where(Segment.conversation_id == conversation_id)
        .order_by(Segment.position)
    ).all()
    words: dict[int, list[dict[str, Any]]] = {row[0]: [] for row in rows}
    for segment_id, text, start, end, confidence in session.execute(
        select(Word.segment_id, Word.text, Word.start_s, Word.end_s, Word.confidence)
        .join(Segment, Segment.id == Word.segment_id)
        .where(Segment.conversation_id == conversation_id)
        .order_by(Word.segment_id, Word.position)
    ):
        words[segment_id].append(
            {"text": text, "start_s": start, "end_s": end, "confidence": confidence}
        )
    language = session.scalar(
        select(ConversationAnalysis.language).where(
            ConversationAnalysis.conversation_id == conversation_id
        )
    )
    return [
        {
            "speaker": speaker,
            "agent": agent,
            "start_s": start,
            "end_s": end,
            "text": text,
            "sentiment": {
                "score": score,
                "label": label,
                "uncertain": label is None,
                "because": because
                if because is not None
                else sentiment.explain(text, language, speaker)
                if label
                else [],
            },
            "words": words[segment_id],
        }
        for segment_id, speaker, agent, start, end, text, score, label, because in rows
    ]


def html_safe_json(value: Any) -> str:
    """Compact JSON that may stand inside an HTML <script> element as it is."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def store_transcript(session: Session, conversation_id: int) -> None:
    """Keep the finished transcript JSON with the results (after they are written)."""
    result = session.get_one(ConversationAnalysis, conversation_id)
    result.transcript = html_safe_json(transcript_segments(session, conversation_id))


def transcript_json(session: Session, conversation_id: int) -> str:
    """The transcript's segments as JSON: the stored document, else built from the rows."""
    stored = session.scalar(
        select(ConversationAnalysis.transcript).where(
            ConversationAnalysis.conversation_id == conversation_id
        )
    )
    return stored or html_safe_json(transcript_segments(session, conversation_id))


WARNINGS = {
    "incomplete": (
        "the call was streamed live and its connection was lost before the call ended: the "
        "recording holds only the audio received until then"
    ),
    "channels_reversed": (
        "the agent's channel sounds like the customer and the other way round: the channel map "
        "may be reversed (swap agent and customer if so)"
    ),
    "crosstalk": (
        "each channel also carries the other side's voice, nearly as loud as its own: it was "
        "taken out before recognition, but words said by both at once may be missing or on "
        "the wrong speaker"
    ),
    "low_confidence": (
        "the recogniser was unsure of many words (mean confidence below 60 %): check the "
        "transcript against the audio (administrators can give each language a larger speech "
        "model: CALLSCOPE_ASR_MODEL_EN, CALLSCOPE_ASR_MODEL_ID)"
    ),
}


def summary(session: Session, conv: Conversation) -> dict[str, Any]:
    """The analysis document without the transcript's segments (its language only)."""
    rec = conv.recording
    result = session.get(ConversationAnalysis, conv.id)
    return {
        "id": conv.id,
        "external_id": conv.external_id,
        "status": conv.processing_status,
        "overview": overview(conv),
        "sessions": [
            {
                "agent": {"external_id": s.agent.external_id, "name": s.agent.name},
                "role": s.role,
                "started_at": _iso(s.started_at),
                "ended_at": _iso(s.ended_at),
                "duration_s": _seconds(s.started_at, s.ended_at),
            }
            for s in conv.sessions
        ],
        "recording": (
            {
                "duration_s": rec.duration_s,
                "channels": rec.channels,
                "sample_rate": rec.sample_rate,
                "speaker_source": rec.speaker_source,
                "format": rec.container,
                "codec": rec.codec,
                "channel_map": rec.channel_map,
                "warnings": [
                    {"code": code, "message": WARNINGS.get(code, code)}
                    for code in ((result.warnings if result else None) or [])
                ],
            }
            if rec
            else None
        ),
        "speakers": result.speakers if result else None,
        "redactions": result.redactions if result else None,
        "sentiment": result.sentiment if result else None,
        "metrics": result.metrics if result else None,
        "summary": result.summary if result else None,
        "categories": categories.names_of(session, conv.id),
        "comments": comments.thread(session, conv.id),
        "transcript": {
            "language": (result.language if result else None) or conv.language,
            "confidence": result.confidence if result else None,
            "model": result.asr_model if result else None,
        },
    }


def document(session: Session, conv: Conversation) -> dict[str, Any]:
    """The whole analysis document of a conversation (what exists of it so far)."""
    doc = summary(session, conv)
    doc["transcript"]["segments"] = json.loads(transcript_json(session, conv.id))
    return doc


def document_json(session: Session, conv: Conversation, withheld: str | None = None) -> str:
    """The analysis document serialised, splicing in the stored transcript unparsed; with
    WITHHELD (the reason), its transcript has no segments and says why."""
    doc = summary(session, conv)
    if withheld is not None:
        doc["transcript"] |= {"segments": [], "withheld": withheld}
        # the summary and the categories' moments quote the transcript: withheld with it
        doc["summary"] = None
        for category in doc["categories"]:
            category["matches"] = [{**m, "text": None} for m in category["matches"]]
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    about = json.dumps(doc.pop("transcript"), separators=(",", ":"))  # language, confidence
    head = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    segments = transcript_json(session, conv.id)
    return f'{head[:-1]},"transcript":{about[:-1]},"segments":{segments}}}}}'


def timeline(conv: Conversation, doc: dict[str, Any]) -> dict[str, Any]:
    """What the player draws besides the transcript: duration, state, session boundaries, and
    the moments categories matched and comments were left at."""
    rec = conv.recording
    origin = (rec.started_at if rec else None) or conv.started_at
    return {
        "duration": rec.duration_s if rec else (conv.duration_s or 0),
        "status": conv.processing_status,
        "sessions": [
            {
                "agent": s.agent.name or s.agent.external_id,
                "start": (s.started_at - origin).total_seconds() if origin else 0,
            }
            for s in conv.sessions
        ],
        "marks": [
            *(
                {"kind": "category", "label": c["name"], "at": m["start_s"]}
                for c in doc["categories"]
                for m in c["matches"]
            ),
            *({"kind": "comment", "label": c["author"], "at": c["at_s"]} for c in doc["comments"]),
        ],
    }


def view(
    session: Session, who: audit.Actor, user: User, conv: Conversation, form_id: int | None = None
) -> dict[str, Any]:
    """What USER is shown of CONV (a call USER may see), its viewing written to the audit log:
    the document without its segments, the latest job, the transcript's segments as JSON
    while viewing is on, the player's timeline, what USER may download, and the evaluation panel
    (with the form FORM_ID, else the first)."""
    audit.record(session, who, "conversation.view", "conversation", conv.id)
    doc = summary(session, conv)
    viewing = policy.get(session, "recordings.enabled")
    return {
        "conv": conv,
        "doc": doc,
        "job": session.scalar(latest_job(conv.id)),
        "recordings_enabled": viewing,
        "may_download": {
            "audio": access.may(user, Action.DOWNLOAD_AUDIO, session),
            "transcript": access.may(user, Action.DOWNLOAD_TRANSCRIPT, session),
        },
        "transcript": transcript_json(session, conv.id) if viewing else "[]",
        "timeline": timeline(conv, doc),
        "quality": evaluations.panel(session, user, conv, form_id),
    }
