"""Ingest: validate metadata and audio, store the recording, enqueue processing.

Every refusal lives here, and a refused ingest leaves no row and no file behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callscope import media, policy, retention, transcripts
from callscope.config import Settings
from callscope.db import Database
from callscope.db.models import (
    Agent,
    Contact,
    Conversation,
    ConversationSession,
    Job,
    Queue,
    Recording,
    Skill,
    Workstream,
)
from callscope.queue import JobQueue
from callscope.store import MediaStore, SpooledUpload, UploadTooLarge, blob_key, spool_stream

SUPPORTED_LANGUAGES = ("en", "id")
CONSENT_STATUSES = ("granted", "declined", "not_required", "unknown")
MAX_METADATA_BYTES = 256 * 1024


class IngestError(Exception):
    """A refused ingest; the message names the problem. STATUS is the HTTP status for the API."""

    status = 422


class InvalidMetadata(IngestError):
    pass


class InvalidAudio(IngestError):
    pass


class TooLarge(IngestError):
    status = 413


class ConsentMissing(IngestError):
    pass


class InvalidTranscript(IngestError):
    """An imported transcript is unreadable or does not fit its audio."""


class Conflict(IngestError):
    status = 409


# --- metadata (SPEC §7b) -------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class CustomerIn(_Model):
    external_id: str = Field(min_length=1, max_length=200)
    name: str = Field("", max_length=200)
    phone: str | None = Field(None, max_length=100)
    email: str | None = Field(None, max_length=320)


class RegardingIn(_Model):
    type: str | None = Field(None, max_length=100)
    id: str | None = Field(None, max_length=200)
    title: str | None = Field(None, max_length=500)
    url: str | None = Field(None, max_length=2000)

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        if value and not value.lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class RecordingIn(_Model):
    started_at: AwareDatetime | None = None
    channels: dict[str, Literal["agent", "customer"]] | None = None
    language: str | None = None

    @field_validator("channels")
    @classmethod
    def _channel_indexes(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            if not value:
                raise ValueError("must map at least one channel")
            for key in value:
                if not key.isdigit():
                    raise ValueError(f"channel {key!r} is not a channel number (0, 1, …)")
        return value

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in SUPPORTED_LANGUAGES:
            raise ValueError(
                f"unsupported language {value!r} (supported: {', '.join(SUPPORTED_LANGUAGES)})"
            )
        return value.lower() if value else None


class ConsentIn(_Model):
    status: Literal["granted", "declined", "not_required", "unknown"] = "unknown"
    method: str | None = Field(None, max_length=100)
    at: AwareDatetime | None = None


class AgentIn(_Model):
    external_id: str = Field(min_length=1, max_length=200)
    name: str = Field("", max_length=200)
    skills: list[str] = Field(default_factory=list)


class SessionIn(_Model):
    agent: AgentIn
    role: str = Field("primary", min_length=1, max_length=50)
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None


class Metadata(_Model):
    """The ingest metadata, exactly the shape of SPEC §7b."""

    external_id: str = Field(min_length=1, max_length=200)
    channel: str = Field("voice", min_length=1, max_length=50)
    customer: CustomerIn | None = None
    queue: str | None = Field(None, max_length=200)
    workstream: str | None = Field(None, max_length=200)
    status: str = Field("closed", max_length=50)
    status_reason: str | None = Field(None, max_length=200)
    regarding: RegardingIn | None = None
    started_at: AwareDatetime | None = None
    recording: RecordingIn = Field(default_factory=RecordingIn)
    consent: ConsentIn = Field(default_factory=ConsentIn)
    sessions: list[SessionIn] = Field(min_length=1)


def _field_path(loc: tuple[Any, ...]) -> str:
    path = "metadata"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def parse_metadata(raw: bytes | str | dict[str, Any]) -> Metadata:
    """Validate ingest metadata; the error names the first field that is wrong."""
    if isinstance(raw, (bytes, str)):
        if len(raw) > MAX_METADATA_BYTES:
            raise InvalidMetadata(f"metadata is larger than {MAX_METADATA_BYTES // 1024} KiB")
        try:
            raw = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidMetadata(f"metadata is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidMetadata("metadata must be a JSON object")
    try:
        meta = Metadata.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = _field_path(error["loc"])
            if error["type"] == "missing":
                problems.append(f"{where} is missing")
            else:
                problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
        raise InvalidMetadata("; ".join(problems)) from exc
    for i, session in enumerate(meta.sessions):
        if session.ended_at and session.ended_at < session.started_at:
            raise InvalidMetadata(f"metadata.sessions[{i}].ended_at is before its started_at")
    return meta


def channel_map(meta: Metadata, channels: int) -> dict[int, str]:
    """Which speaker each audio channel carries; refuses a map naming a channel the file lacks."""
    if meta.recording.channels is None:
        return {0: "agent", 1: "customer"} if channels >= 2 else {0: "unknown"}
    mapping = {int(k): v for k, v in meta.recording.channels.items()}
    for index in sorted(mapping):
        if index >= channels:
            plural = "channel" if channels == 1 else "channels"
            raise InvalidAudio(
                f"metadata.recording.channels names channel {index} but the audio has only "
                f"{channels} {plural}"
            )
    return mapping


def playback_order(mapping: dict[int, str]) -> list[int]:
    """Source channels for the playback rendition: agent left and customer right, or mono."""
    agent = [i for i, role in sorted(mapping.items()) if role == "agent"]
    customer = [i for i, role in sorted(mapping.items()) if role == "customer"]
    if agent and customer:
        return [agent[0], customer[0]]
    return [min(mapping)]


# --- the ingest itself -----------------------------------------------------------------------


@dataclass(frozen=True)
class IngestResult:
    """What an ingest produced (or found already there)."""

    id: int
    external_id: str
    job: int | None
    status: str
    created: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "external_id": self.external_id,
            "job": self.job,
            "status": self.status,
        }


@dataclass(frozen=True)
class Accepted:
    """A conversation that passed every check, with its stored media, ready for its rows: a
    recording to process, or an imported transcript with or without its audio."""

    meta: Metadata
    info: media.AudioInfo | None
    mapping: dict[int, str]
    upload: SpooledUpload | None
    keys: dict[str, str]
    filename: str | None
    transcript: transcripts.Transcript | None = None  # imported (redacted, when redacting)
    language: str | None = None


class Ingestor:
    """Accepts recordings into one database and media store."""

    def __init__(
        self, settings: Settings, db: Database, store: MediaStore, queue: JobQueue
    ) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        self.queue = queue

    def spool(self, stream: BinaryIO, filename: str | None = None) -> SpooledUpload:
        """Stream the audio to a temporary file under the size cap."""
        try:
            return spool_stream(
                stream, self.settings.tmp_dir, self.settings.max_upload_bytes, filename
            )
        except UploadTooLarge as exc:
            raise TooLarge(str(exc)) from exc

    def ingest_file(self, path: Path, metadata: bytes | str | dict[str, Any]) -> IngestResult:
        """Ingest an audio file from disk."""
        meta = self.check_metadata(metadata)
        with open(path, "rb") as stream:
            upload = self.spool(stream, path.name)
        return self.ingest_upload(upload, meta, path.name)

    def check_metadata(self, metadata: bytes | str | dict[str, Any] | Metadata) -> Metadata:
        """Parse the metadata and apply the consent rule (S2)."""
        meta = metadata if isinstance(metadata, Metadata) else parse_metadata(metadata)
        with self.db.session() as session:
            required = policy.get(session, "consent.required")
        if required and meta.consent.status not in ("granted", "not_required"):
            raise ConsentMissing(
                f"consent is required but metadata.consent.status is {meta.consent.status!r} "
                "(must be 'granted' or 'not_required')"
            )
        return meta

    def ingest_upload(
        self, upload: SpooledUpload, meta: Metadata, filename: str | None = None
    ) -> IngestResult:
        """Ingest an already spooled upload; the temporary file is always removed."""
        try:
            existing = self._existing(meta.external_id, upload.sha256)
            if existing is not None:
                return existing
            try:
                info = media.probe(upload.path, max_duration_s=self.settings.max_audio_hours * 3600)
            except media.BadAudio as exc:
                raise InvalidAudio(str(exc)) from exc
            mapping = channel_map(meta, info.channels)
            order = playback_order(mapping)
            keys = self._store_media(upload, order)
            try:
                accepted = Accepted(meta, info, mapping, upload, keys, filename)
                result = self._write_rows(accepted)
            except BaseException:
                self._forget_media(keys)
                raise
        finally:
            upload.discard()
        if result.created:
            self.queue.announce(result.job)
        return result

    def import_transcript(
        self,
        raw: bytes,
        fmt: str | None,
        meta: Metadata,
        upload: SpooledUpload | None = None,
        filename: str | None = None,
    ) -> IngestResult:
        """A conversation from an existing transcript (our JSON or WebVTT), with or without its
        audio: stored processed, with metrics and sentiment, without speech recognition. The
        temporary audio file is always removed."""
        keys: dict[str, str] = {}
        try:
            if fmt not in transcripts.FORMATS:
                raise InvalidTranscript(
                    "transcript format must be json or vtt (say it, or name the file *.json or "
                    f"*.vtt), not {fmt!r}"
                )
            names = {s.agent.name: "agent" for s in meta.sessions if s.agent.name}
            if meta.customer and meta.customer.name:
                names[meta.customer.name] = "customer"
            try:
                transcript = transcripts.parse(raw, fmt, names)
            except transcripts.TranscriptError as exc:
                raise InvalidTranscript(str(exc)) from exc
            language = transcript.language or meta.recording.language
            if language is None:
                raise InvalidMetadata(
                    "metadata.recording.language (en or id) is required for a transcript that "
                    "does not give its language"
                )
            with self.db.session() as session:
                if session.scalar(
                    select(Conversation.id).where(Conversation.external_id == meta.external_id)
                ):
                    raise Conflict(f"conversation {meta.external_id!r} already exists")
            info, mapping = None, {}
            if upload is not None:
                try:
                    info = media.probe(
                        upload.path, max_duration_s=self.settings.max_audio_hours * 3600
                    )
                except media.BadAudio as exc:
                    raise InvalidAudio(str(exc)) from exc
                if transcript.end_s > info.duration_s + 1.0:
                    raise InvalidTranscript(
                        f"transcript runs to {transcript.end_s:.1f} s but the audio lasts "
                        f"{info.duration_s:.1f} s"
                    )
                mapping = channel_map(meta, info.channels)
                keys = self._store_media(upload, playback_order(mapping))
            with self.db.session() as session:
                redact = policy.get(session, "pii.redaction")
                keep = policy.get(session, "pii.originals") == "administrators"
            redaction = None
            if redact:
                from callscope import pipeline  # (it imports the context, which imports us)

                redaction = pipeline.redact_call(
                    self.store,
                    self.settings.tmp_dir,
                    keys.get("original"),
                    transcript.words,
                    mapping,
                    playback_order(mapping) if mapping else [],
                )
                keys |= {"redacted": redaction.playback_key, "redacted_peaks": redaction.peaks_key}
                keys = {k: v for k, v in keys.items() if v}
                transcript = transcripts.Transcript(transcript.language, redaction.words)
            accepted = Accepted(meta, info, mapping, upload, keys, filename, transcript, language)
            unneeded: list[str] = []
            try:
                with self.db.session() as session:
                    result = _insert(session, accepted)
                    if redaction is not None:
                        unneeded = redaction.store(session, result.id, keep)
                    recording = session.get(Conversation, result.id).recording
                    recording_id = recording.id if recording else None
            except IntegrityError as exc:
                raise Conflict(f"conversation {meta.external_id!r} already exists") from exc
            if unneeded:  # (media this conversation's recording no longer needs)
                retention.delete_unreferenced(self.db, self.store, unneeded, ignoring=recording_id)
            return result
        except BaseException:
            self._forget_media(keys)
            raise
        finally:
            if upload is not None:
                upload.discard()

    def _existing(self, external_id: str, sha256: str) -> IngestResult | None:
        """The conversation already ingested under this external id, if its audio is the same."""
        with self.db.session() as session:
            conv = session.scalar(
                select(Conversation).where(Conversation.external_id == external_id)
            )
            if conv is None:
                return None
            if conv.recording is None or conv.recording.sha256 != sha256:
                raise Conflict(f"conversation {external_id!r} already exists with different audio")
            job = session.scalar(
                select(Job.id).where(Job.conversation_id == conv.id).order_by(Job.id.desc())
            )
            return IngestResult(conv.id, conv.external_id, job, conv.processing_status, False)

    def _store_media(self, upload: SpooledUpload, order: list[int]) -> dict[str, str]:
        """Put the original, its playback rendition and its peaks into the media store."""
        digest = upload.sha256
        suffix = "".join(map(str, order))
        keys = {
            "original": blob_key(digest),
            "playback": f"playback/{digest[:2]}/{digest}-{suffix}.m4a",
            "peaks": f"playback/{digest[:2]}/{digest}-{suffix}.peaks.json",
        }
        fresh = {k: v for k, v in keys.items() if not self.store.exists(v)}
        tmp_m4a = upload.path.with_name(upload.path.name + ".m4a")
        tmp_peaks = upload.path.with_name(upload.path.name + ".peaks.json")
        try:
            if "playback" in fresh or "peaks" in fresh:
                media.make_rendition(upload.path, tmp_m4a, tmp_peaks, order)
                self.store.put_file(keys["playback"], tmp_m4a, move=True)
                self.store.put_file(keys["peaks"], tmp_peaks, move=True)
            if "original" in fresh:
                self.store.put_file(keys["original"], upload.path)
        except BaseException:
            self._forget_media(fresh)
            raise
        finally:
            tmp_m4a.unlink(missing_ok=True)
            tmp_peaks.unlink(missing_ok=True)
        return keys

    def _forget_media(self, keys: dict[str, str]) -> None:
        """Delete stored media that no recording row refers to (after a refused ingest)."""
        retention.delete_unreferenced(self.db, self.store, keys.values())

    def _write_rows(self, accepted: Accepted) -> IngestResult:
        """Insert every row of the conversation in one transaction; races end in one winner."""
        for _attempt in range(5):
            try:
                with self.db.session() as session:
                    return _insert(session, accepted)
            except IntegrityError:
                existing = self._existing(accepted.meta.external_id, accepted.upload.sha256)
                if existing is not None:
                    return existing
        raise IngestError("could not store the conversation: the database kept refusing it")


def _get_or_create(session: Session, model: type, **lookup: Any) -> Any:
    row = session.scalar(select(model).filter_by(**lookup))
    if row is None:
        row = model(**lookup)
        session.add(row)
        session.flush()
    return row


def _agent(session: Session, agent_in: AgentIn) -> Agent:
    agent = _get_or_create(session, Agent, external_id=agent_in.external_id)
    if agent_in.name:
        agent.name = agent_in.name
    known = {s.name for s in agent.skills}
    for name in agent_in.skills:
        if name and name not in known:
            agent.skills.append(_get_or_create(session, Skill, name=name))
            known.add(name)
    return agent


def _insert(session: Session, accepted: Accepted) -> IngestResult:
    meta, info, upload, keys = accepted.meta, accepted.info, accepted.upload, accepted.keys
    contact = None
    if meta.customer:
        contact = _get_or_create(session, Contact, external_id=meta.customer.external_id)
        contact.name = meta.customer.name or contact.name
        contact.phone = meta.customer.phone or contact.phone
        contact.email = meta.customer.email or contact.email
    sessions = []
    for position, s in enumerate(meta.sessions):
        sessions.append(
            ConversationSession(
                position=position,
                agent=_agent(session, s.agent),
                role=s.role,
                started_at=s.started_at,
                ended_at=s.ended_at,
            )
        )
    primary = next((s.agent for s in sessions if s.role == "primary"), sessions[0].agent)
    recording_start = meta.recording.started_at or meta.started_at or meta.sessions[0].started_at
    started_at = meta.started_at or min(s.started_at for s in meta.sessions)
    ends = [s.ended_at for s in meta.sessions if s.ended_at]
    length = info.duration_s if info else accepted.transcript.end_s
    ended_at = max(ends) if ends else recording_start + timedelta(seconds=length)
    imported = accepted.transcript is not None
    regarding = meta.regarding or RegardingIn()
    conv = Conversation(
        external_id=meta.external_id,
        channel=meta.channel,
        contact=contact,
        primary_agent=primary,
        queue=_get_or_create(session, Queue, name=meta.queue) if meta.queue else None,
        workstream=(
            _get_or_create(session, Workstream, name=meta.workstream) if meta.workstream else None
        ),
        status=meta.status,
        status_reason=meta.status_reason,
        regarding_type=regarding.type,
        regarding_id=regarding.id,
        regarding_title=regarding.title,
        regarding_url=regarding.url,
        started_at=started_at,
        ended_at=ended_at,
        duration_s=(ended_at - started_at).total_seconds(),
        consent_status=meta.consent.status,
        consent_method=meta.consent.method,
        consent_at=meta.consent.at,
        language=meta.recording.language,
        processing_status="processed" if imported else "queued",
        metadata_json=meta.model_dump(mode="json"),
        sessions=sessions,
        recording=None
        if info is None
        else Recording(
            sha256=upload.sha256,
            size_bytes=upload.size,
            original_filename=accepted.filename,
            container=info.container,
            codec=info.codec,
            duration_s=info.duration_s,
            channels=info.channels,
            sample_rate=info.sample_rate,
            channel_map={str(k): v for k, v in accepted.mapping.items()},
            started_at=recording_start,
            playback_key=keys["playback"],
            peaks_key=keys["peaks"],
            speaker_source="transcript"
            if imported
            else ("channels" if info.channels >= 2 else "diarization"),
        ),
    )
    session.add(conv)
    session.flush()
    if imported:
        from callscope import pipeline, webhooks  # here: they import the context, which imports us

        pipeline.save_results(
            session,
            conv.id,
            accepted.transcript.words,
            accepted.language,
            pipeline.session_spans(conv),
            {"source": "transcript", "method": "import"},
        )
        webhooks.enqueue(session, conv, "processed", None)
        return IngestResult(conv.id, conv.external_id, None, "processed", True)
    job = Job(conversation_id=conv.id, kind="process", status="queued")
    session.add(job)
    session.flush()
    return IngestResult(conv.id, conv.external_id, job.id, "queued", True)
