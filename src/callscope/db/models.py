"""The store's tables: every entity of the specification, in portable SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Select,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from callscope.vocabulary import Status


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time stored as UTC and always read back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime}


agent_skills = Table(
    "agent_skills",
    Base.metadata,
    Column("agent_id", ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("skill_id", ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True),
)

supervised_queues = Table(
    "supervised_queues",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("queue_id", ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True),
)


class Agent(Base):
    """A contact-centre agent as the telephony platform knows them (not a sign-in account)."""

    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    skills: Mapped[list[Skill]] = relationship(secondary=agent_skills, order_by="Skill.name")


class Skill(Base):
    __tablename__ = "skills"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class User(Base):
    """A sign-in account with a role; an agent account is linked to its agent record."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # agent | supervisor | admin
    password_hash: Mapped[str] = mapped_column(String(255))  # (single sign-on only: unusable)
    # "issuer subject" of an account that signs in through the company's OpenID provider
    sso_subject: Mapped[str | None] = mapped_column(String(512), unique=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    language: Mapped[str | None] = mapped_column(String(10))
    time_zone: Mapped[str | None] = mapped_column(String(64))  # IANA name; none: the browser's
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # a browser session is valid while it carries this number: signing out, a new password, a
    # new role or disabling the account raise it, ending every session of the account at once
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    agent: Mapped[Agent | None] = relationship()
    queues: Mapped[list[Queue]] = relationship(secondary=supervised_queues)


class ApiToken(Base):
    """A bearer token for the API, stored as its SHA-256 (tokens are long and random)."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(20), default="read", server_default="read")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    user: Mapped[User] = relationship()


class Contact(Base):
    """A customer."""

    __tablename__ = "contacts"
    __table_args__ = {"sqlite_autoincrement": True}  # ids are never reused
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Queue(Base):
    __tablename__ = "queues"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # product, company and other names the recogniser is told to expect on this queue's calls
    # (comma-separated terms); None for none
    vocabulary: Mapped[str | None] = mapped_column(Text)

    @property
    def terms(self) -> list[str]:
        """The vocabulary's terms."""
        return [t.strip() for t in (self.vocabulary or "").split(",") if t.strip()]


class Workstream(Base):
    __tablename__ = "workstreams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class Conversation(Base):
    """One recorded call with the overview fields and consent."""

    __tablename__ = "conversations"
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(50), default="voice")
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    primary_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    workstream_id: Mapped[int | None] = mapped_column(
        ForeignKey("workstreams.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(50), default="closed")
    status_reason: Mapped[str | None] = mapped_column(String(200))
    regarding_type: Mapped[str | None] = mapped_column(String(100))
    regarding_id: Mapped[str | None] = mapped_column(String(200))
    regarding_title: Mapped[str | None] = mapped_column(String(500))
    regarding_url: Mapped[str | None] = mapped_column(String(2000))
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_s: Mapped[float | None] = mapped_column(Float)  # ended_at − started_at
    consent_status: Mapped[str] = mapped_column(String(20), default="unknown")
    consent_method: Mapped[str | None] = mapped_column(String(100))
    consent_at: Mapped[datetime | None]
    language: Mapped[str | None] = mapped_column(String(10))
    processing_status: Mapped[str] = mapped_column(String(20), default=Status.QUEUED.value)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    metadata_json: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    modified_on: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    contact: Mapped[Contact | None] = relationship()
    primary_agent: Mapped[Agent | None] = relationship()
    queue: Mapped[Queue | None] = relationship()
    workstream: Mapped[Workstream | None] = relationship()
    sessions: Mapped[list[ConversationSession]] = relationship(
        back_populates="conversation",
        order_by="ConversationSession.position",
        cascade="all, delete-orphan",
    )
    recording: Mapped[Recording | None] = relationship(
        back_populates="conversation", cascade="all, delete-orphan"
    )
    segments: Mapped[list[Segment]] = relationship(
        order_by="Segment.position", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_conversations_started_at", "started_at"),
        Index("ix_conversations_contact", "contact_id"),
        Index("ix_conversations_agent", "primary_agent_id"),
        Index("ix_conversations_queue", "queue_id"),
        Index("ix_conversations_duration", "duration_s"),
        {"sqlite_autoincrement": True},  # ids are never reused
    )


class ConversationSession(Base):
    """A voice session of a conversation: first agent, transfer or consult."""

    __tablename__ = "conversation_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    role: Mapped[str] = mapped_column(String(50), default="primary")
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    conversation: Mapped[Conversation] = relationship(back_populates="sessions")
    agent: Mapped[Agent] = relationship()


class Recording(Base):
    """The stored audio of a conversation, its probe results and its playback rendition."""

    __tablename__ = "recordings"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), unique=True
    )
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    original_filename: Mapped[str | None] = mapped_column(String(500))
    container: Mapped[str] = mapped_column(String(50))
    codec: Mapped[str] = mapped_column(String(50))
    duration_s: Mapped[float] = mapped_column(Float)
    channels: Mapped[int] = mapped_column(Integer)
    sample_rate: Mapped[int] = mapped_column(Integer)
    channel_map: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime | None]
    playback_key: Mapped[str | None] = mapped_column(String(200))
    peaks_key: Mapped[str | None] = mapped_column(String(200))
    # the unredacted playback audio, when redaction keeps it for administrators
    original_playback_key: Mapped[str | None] = mapped_column(String(200))
    speaker_source: Mapped[str] = mapped_column(String(20), default="channels")
    # what was wrong with the recording as it came in, as codes: "incomplete" (a live call cut
    # off); the results of processing carry them on
    warnings: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    purged_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    conversation: Mapped[Conversation] = relationship(back_populates="recording")


class Segment(Base):
    """A line of the transcript: one speaker's words as a reader reads them
    (docs/metrics.md#lines), with its sentiment."""

    __tablename__ = "segments"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(20))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    sentiment_label: Mapped[str | None] = mapped_column(String(10))
    # what decided it (learned.Reading.because); None: made before it was kept (the rules')
    sentiment_because: Mapped[list[Any] | None]
    # what the line means, as a vector of int8 (review/meaning.py); None: made before it was
    # kept, or where sentence meaning could not be read
    meaning: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    agent: Mapped[Agent | None] = relationship()
    words: Mapped[list[Word]] = relationship(order_by="Word.position", cascade="all, delete-orphan")


class LineChange(Base):
    """A call whose lines changed or went: every process's copy of the lines' meanings
    (review/meaning.py) drops the call's lines numbered below BEFORE_LINE (all, when None)."""

    __tablename__ = "line_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(Integer)  # (kept after the call is deleted)
    before_line: Mapped[int | None] = mapped_column(Integer)


class Word(Base):
    __tablename__ = "words"
    id: Mapped[int] = mapped_column(primary_key=True)
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(String(200))
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float | None] = mapped_column(Float)


class ConversationAnalysis(Base):
    """Sentiment and metrics of a processed conversation (docs/metrics.md), with filterable
    columns."""

    __tablename__ = "conversation_analysis"
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    language: Mapped[str | None] = mapped_column(String(10))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    sentiment_label: Mapped[str | None] = mapped_column(String(10))
    agent_talk_pct: Mapped[float | None] = mapped_column(Float)
    switches: Mapped[int | None] = mapped_column(Integer)
    # figures of `sentiment` and `metrics` that scorecards add up by week
    customer_sentiment: Mapped[float | None] = mapped_column(Float)
    customer_trend: Mapped[float | None] = mapped_column(Float)
    non_talk_s: Mapped[float | None] = mapped_column(Float)
    # what a reviewer should know about the result, as codes: "channels_reversed"
    warnings: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # the speech model that heard the words (a bundled name or a path); None for an import
    asr_model: Mapped[str | None] = mapped_column(String(500))
    # the mean confidence of the transcript's words (0–1); None when none has one (an import)
    confidence: Mapped[float | None] = mapped_column(Float)
    sentiment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The transcript's segments with their words as finished JSON (HTML-safe), written with the
    # results so a page or API request reads one value instead of thousands of word rows.
    transcript: Mapped[str | None] = mapped_column(Text, deferred=True)
    # How the speakers of a single-channel recording were told apart and given roles
    # (diarization.Roles.as_dict); None for a stereo recording.
    speakers: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Personal data redacted from the transcript and the playback audio (pii.redact):
    # [{"speaker", "start_s", "end_s", "type"}]; None when redaction was off.
    redactions: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    # The unredacted transcript (as `transcript`), when the settings keep it for administrators.
    original_transcript: Mapped[str | None] = mapped_column(Text, deferred=True)
    # The call summary (measures.summary): reason, outcome, highlights, action items, questions.
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentVoiceprint(Base):
    """An agent's mean voice embedding, learnt from the agent channel of their stereo calls."""

    __tablename__ = "agent_voiceprints"
    agent_id: Mapped[int] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    embedding: Mapped[list[float]] = mapped_column(JSON)
    windows: Mapped[int] = mapped_column(Integer)  # how many 1.6 s windows it averages
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Job(Base):
    """A unit of background work: queued → processing → processed | failed."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(30), default="process")
    status: Mapped[str] = mapped_column(String(20), default=Status.QUEUED.value, index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str | None] = mapped_column(String(50))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class WorkerSeen(Base):
    """A worker that is running: it says so every few seconds (`processing/presence.py`), so that
    a command can hand it a job instead of loading the models itself."""

    __tablename__ = "workers"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    ready: Mapped[bool] = mapped_column(Boolean, default=False)  # its models are loaded


class Setting(Base):
    """An administrator-controlled setting (recordings, consent, retention …), as JSON."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AuditEvent(Base):
    """An append-only record of who did what to which object, when and from where."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50), index=True)
    object_type: Mapped[str | None] = mapped_column(String(50))
    object_id: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (Index("ix_audit_events_object", "object_type", "object_id"),)


class Webhook(Base):
    """A URL told, by a signed POST, when a conversation's processing finishes or fails."""

    __tablename__ = "webhooks"
    __table_args__ = {"sqlite_autoincrement": True}  # ids are never reused
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))  # the HMAC key, shown once
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event for one webhook: its attempts, the last answer, and when to try again."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(50))
    conversation_id: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        {"sqlite_autoincrement": True},  # ids are never reused
    )


class Category(Base):
    """A rule administrators define that calls match (docs/metrics.md#categories): phrases said
    (or not said) by whom and when, and conditions on metrics and sentiment."""

    __tablename__ = "categories"
    __table_args__ = {"sqlite_autoincrement": True}  # ids are never reused
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # the definition as categories.Definition.as_dict: phrases, speaker, window, absent, conditions
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # bumped at each change; stored calls are matched again until applied_version catches up
    version: Mapped[int] = mapped_column(Integer, default=1)
    applied_version: Mapped[int] = mapped_column(Integer, default=0)
    applied_through: Mapped[int] = mapped_column(BigInteger, default=0)  # conversation id
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CategoryMatch(Base):
    """A conversation that matches a category, with the moments that matched."""

    __tablename__ = "category_matches"
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    category_id: Mapped[int] = mapped_column(
        ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # [{"speaker", "start_s", "end_s", "text"}]; empty for a category matched by absence
    matches: Mapped[list[Any]] = mapped_column(JSON, default=list)


class Comment(Base):
    """A comment left at a moment of a call, or a reply to one."""

    __tablename__ = "comments"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    reply_to: Mapped[int | None] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author: Mapped[str] = mapped_column(String(200))  # the user name when written
    at_s: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EvaluationForm(Base):
    """A version of a quality evaluation form: sections of weighted questions, some answered
    automatically (docs/metrics.md#evaluation-score)."""

    __tablename__ = "evaluation_forms"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)  # 1, 2 … per name; evaluations keep theirs
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Evaluation(Base):
    """A supervisor's evaluation of a call against a form version: answers (automatic ones
    with their evidence, overrides with who and why), comments, the score, and the agent's
    acknowledgement or dispute."""

    __tablename__ = "evaluations"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    form_id: Mapped[int] = mapped_column(ForeignKey("evaluation_forms.id"))
    evaluator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    evaluator: Mapped[str] = mapped_column(String(200))
    # submitted | acknowledged | disputed | answered (a dispute the supervisor answered)
    status: Mapped[str] = mapped_column(String(20), default="submitted")
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)  # question id → value
    automatic: Mapped[dict[str, Any]] = mapped_column(default=dict)  # id → {value, evidence}
    overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)  # id → {automatic, by, why}
    comments: Mapped[dict[str, Any]] = mapped_column(default=dict)  # id → text
    score_pct: Mapped[float | None] = mapped_column(Float)
    response: Mapped[str | None] = mapped_column(Text)  # the agent's dispute or acknowledgement
    answer: Mapped[str | None] = mapped_column(Text)  # the supervisor's answer to a dispute
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    responded_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    amended_at: Mapped[datetime | None]  # last changed by its evaluator, after submitting
    amended_why: Mapped[str | None] = mapped_column(Text)


class EvaluationAssignment(Base):
    """A call sampled for a supervisor to evaluate (their *To evaluate* list)."""

    __tablename__ = "evaluation_assignments"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    supervisor_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # why it was likelier drawn: "negative", "falling", "risk:NAME"; [] at random (None: not kept)
    reasons: Mapped[list[Any] | None]


class ScorecardWeek(Base):
    """A week (numbered from Monday 5 January 1970, UTC) whose scorecard cells are made when a
    scorecard reads them: fresh while `made` equals `version`, which every change to one of its
    calls raises (review/refresh.py)."""

    __tablename__ = "scorecard_weeks"
    week: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer, default=0)
    made: Mapped[int] = mapped_column(Integer, default=-1)


class ScorecardCell(Base):
    """A week's processed calls of one agent in one queue (0: none), added up: counts and
    sums, so that cells add up to any agent's, queue's or supervisor's weeks."""

    __tablename__ = "scorecard_cells"
    week: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    agent_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    queue_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    calls: Mapped[int] = mapped_column(Integer)
    handle_sum: Mapped[float] = mapped_column(Float)
    handle_n: Mapped[int] = mapped_column(Integer)
    talk_sum: Mapped[float] = mapped_column(Float)
    talk_n: Mapped[int] = mapped_column(Integer)
    non_talk_sum: Mapped[float] = mapped_column(Float)
    non_talk_n: Mapped[int] = mapped_column(Integer)
    sentiment_sum: Mapped[float] = mapped_column(Float)
    sentiment_n: Mapped[int] = mapped_column(Integer)
    trend_sum: Mapped[float] = mapped_column(Float)
    trend_n: Mapped[int] = mapped_column(Integer)
    evaluations: Mapped[int] = mapped_column(Integer)
    score_sum: Mapped[float] = mapped_column(Float)
    scored: Mapped[int] = mapped_column(Integer)


class ScorecardCategoryCell(Base):
    """How many of a week's processed calls of one agent in one queue matched a category."""

    __tablename__ = "scorecard_category_cells"
    week: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    agent_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    queue_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    category_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    calls: Mapped[int] = mapped_column(Integer)


class LiveCall(Base):
    """A call streamed in while it happens: who is on it, how far it has come, and the
    conversation it became when it ended."""

    __tablename__ = "live_calls"
    __table_args__ = (UniqueConstraint("protocol", "stream_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    protocol: Mapped[str] = mapped_column(String(20))  # twilio | audiohook | generic
    stream_id: Mapped[str] = mapped_column(String(200))
    token_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="SET NULL"), index=True
    )
    external_id: Mapped[str] = mapped_column(String(200))
    metadata_json: Mapped[dict[str, Any]] = mapped_column(default=dict)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    queue_id: Mapped[int | None] = mapped_column(
        ForeignKey("queues.id", ondelete="SET NULL"), index=True
    )
    channels: Mapped[int] = mapped_column(Integer)
    sample_rate: Mapped[int] = mapped_column(Integer)
    channel_map: Mapped[dict[str, Any]] = mapped_column(default=dict)
    language: Mapped[str | None] = mapped_column(String(10))
    # live: audio arriving | dropped: the connection went, the call may resume | ending: being
    # stored | ended: a conversation (or refused: see error)
    status: Mapped[str] = mapped_column(String(20), default="live", index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_s: Mapped[float] = mapped_column(Float, default=0.0)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    incomplete: Mapped[bool] = mapped_column(default=False)
    customer_sentiment: Mapped[float | None] = mapped_column(Float)
    alerts: Mapped[int] = mapped_column(Integer, default=0)
    revision: Mapped[int] = mapped_column(Integer, default=0)  # raised by every change shown
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")  # (erasing the call erases this)
    )
    error: Mapped[str | None] = mapped_column(Text)
    agent: Mapped[Agent | None] = relationship()
    queue: Mapped[Queue | None] = relationship()


class LiveLine(Base):
    """A line of a live call as it was heard: partial until its utterance ends, then final.
    An alert (a category matched live) is a line of its own with ALERT set."""

    __tablename__ = "live_lines"
    __table_args__ = (UniqueConstraint("live_call_id", "channel", "utterance"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    live_call_id: Mapped[int] = mapped_column(
        ForeignKey("live_calls.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[int] = mapped_column(Integer)  # -1: an alert
    utterance: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(20))
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    final: Mapped[bool] = mapped_column(default=False)
    sentiment: Mapped[float | None] = mapped_column(Float)
    alert: Mapped[str | None] = mapped_column(String(200))  # the category's name
    revision: Mapped[int] = mapped_column(Integer, index=True)


def latest_job(conversation_id: int) -> Select[Job]:
    """The conversation's latest job (the one its state comes from)."""
    return (
        select(Job).where(Job.conversation_id == conversation_id).order_by(Job.id.desc()).limit(1)
    )


def category_named(session: Session, name: str) -> Category | None:
    """The category whose name is NAME in any case, in any alphabet ("Ä1" is "ä1"): compared
    here, since SQLite's lower() knows only ASCII."""
    wanted = name.strip().casefold()
    return next((c for c in session.scalars(select(Category)) if c.name.casefold() == wanted), None)
