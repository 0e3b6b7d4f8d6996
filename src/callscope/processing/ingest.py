"""Ingest: validate metadata and audio, store the recording, enqueue processing; or store an
imported transcript as a processed conversation.

Every refusal lives here (or in `metadata`), and a refused ingest leaves no row and no file
behind: media are stored before the rows and forgotten again if the rows are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callscope import errors
from callscope.context import Context
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
    latest_job,
)
from callscope.governance import policy
from callscope.processing import retention, transcripts, webhooks
from callscope.processing.metadata import (
    AgentIn,
    InvalidMetadata,
    Metadata,
    RegardingIn,
    parse_metadata,
)
from callscope.processing.redaction import redact_call
from callscope.processing.results import save_results, session_spans
from callscope.speech import isolation, media
from callscope.store import SpooledUpload, blob_key, spool_stream
from callscope.vocabulary import Speaker, Status

INSERT_ATTEMPTS = 5  # concurrent ingests of one new agent, queue or skill may collide this often


class InvalidAudio(errors.Refused):
    """Audio that cannot be read, or that does not fit its metadata."""


class ConsentMissing(errors.Refused):
    """A recording without the consent the settings require."""


class InvalidTranscript(errors.Refused):
    """An imported transcript is unreadable or does not fit its audio."""


def channel_map(meta: Metadata, channels: int) -> dict[int, str]:
    """Which speaker each audio channel carries; refuses a map naming a channel the file lacks."""
    if meta.recording.channels is None:
        return {0: Speaker.AGENT, 1: Speaker.CUSTOMER} if channels >= 2 else {0: "unknown"}
    mapping: dict[int, str] = {int(k): v for k, v in meta.recording.channels.items()}
    for index in sorted(mapping):
        if index >= channels:
            plural = "channel" if channels == 1 else "channels"
            raise InvalidAudio(
                f"metadata.recording.channels names channel {index} but the audio has only "
                f"{channels} {plural}"
            )
    return mapping


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
class StoredAudio:
    """An upload that passed the audio checks, with its media in the store."""

    upload: SpooledUpload
    filename: str | None
    info: media.AudioInfo
    mapping: dict[int, str]  # channel → speaker
    keys: dict[str, str]  # original, playback, peaks
    warnings: list[str] | None = None  # what was wrong with it as it came in


class Ingestor:
    """Accepts recordings and imported transcripts into the context's database and media store."""

    def __init__(self, ctx: Context) -> None:
        self.settings = ctx.settings
        self.db = ctx.db
        self.store = ctx.store
        self.queue = ctx.queue

    def spool(self, stream: BinaryIO, filename: str | None = None) -> SpooledUpload:
        """Stream the audio to a temporary file under the size cap."""
        return spool_stream(stream, self.settings.tmp_dir, self.settings.max_upload_bytes, filename)

    def ingest_file(
        self,
        path: Path,
        metadata: bytes | str | dict[str, Any] | Metadata,
        warnings: list[str] | None = None,
    ) -> IngestResult:
        """Ingest an audio file from disk; WARNINGS: what was wrong with it as it came in."""
        meta = self.check_metadata(metadata)
        with open(path, "rb") as stream:
            upload = self.spool(stream, path.name)
        return self.ingest_upload(upload, meta, path.name, warnings)

    def check_metadata(self, metadata: bytes | str | dict[str, Any] | Metadata) -> Metadata:
        """Parse the metadata and apply the consent rule (docs/ingest.md#what-is-refused)."""
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
        self,
        upload: SpooledUpload,
        meta: Metadata,
        filename: str | None = None,
        warnings: list[str] | None = None,
    ) -> IngestResult:
        """Ingest an already spooled upload; the temporary file is always removed."""
        try:
            existing = self._existing(meta.external_id, upload.sha256)
            if existing is not None:
                return existing
            info, mapping = self._accept_audio(upload, meta)
            audio = self._store_media(upload, filename, info, mapping, warnings)
            try:
                result = self._insert_recording(meta, audio)
            except BaseException:
                self._forget_media(audio.keys)
                raise
        finally:
            upload.discard()
        if result.created and result.job is not None:
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
            transcript = self._parse_transcript(raw, fmt, meta)
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
                    raise errors.Conflict(f"conversation {meta.external_id!r} already exists")
            audio = None
            if upload is not None:
                info, mapping = self._accept_audio(upload, meta, transcript)
                audio = self._store_media(upload, filename, info, mapping)
                keys = dict(audio.keys)
            with self.db.session() as session:
                redact = policy.get(session, "pii.redaction")
                keep = policy.get(session, "pii.originals") == "administrators"
            redaction = None
            if redact:
                mapping = audio.mapping if audio else {}
                redaction = redact_call(
                    self.store,
                    self.settings.tmp_dir,
                    keys.get("original"),
                    transcript.words,
                    mapping,
                    media.playback_order(mapping) if mapping else [],
                )
                made = {"redacted": redaction.playback_key, "redacted_peaks": redaction.peaks_key}
                keys |= {k: v for k, v in made.items() if v}
            unneeded: list[str] = []
            try:
                with self.db.session() as session:
                    conv = _insert(session, meta, audio, transcript.end_s, imported=True)
                    save_results(
                        session,
                        conv.id,
                        redaction.words if redaction else transcript.words,
                        language,
                        session_spans(conv),
                        {"source": "transcript", "method": "import"},
                        transcript.line_starts,
                    )
                    if redaction is not None:
                        unneeded = redaction.store(session, conv.id, keep)
                    webhooks.enqueue(session, conv, Status.PROCESSED, None)
                    result = IngestResult(conv.id, conv.external_id, None, Status.PROCESSED, True)
                    recording_id = conv.recording.id if conv.recording else None
            except IntegrityError as exc:
                raise errors.Conflict(f"conversation {meta.external_id!r} already exists") from exc
            if unneeded:  # (media this conversation's recording no longer needs)
                retention.delete_unreferenced(self.db, self.store, unneeded, ignoring=recording_id)
            return result
        except BaseException:
            self._forget_media(keys)
            raise
        finally:
            if upload is not None:
                upload.discard()

    def _parse_transcript(
        self, raw: bytes, fmt: str | None, meta: Metadata
    ) -> transcripts.Transcript:
        """The imported transcript, its speakers named by the metadata's agents and customer."""
        if fmt not in transcripts.FORMATS:
            raise InvalidTranscript(
                "transcript format must be json or vtt (say it, or name the file *.json or "
                f"*.vtt), not {fmt!r}"
            )
        names: dict[str, str] = {s.agent.name: Speaker.AGENT for s in meta.sessions if s.agent.name}
        if meta.customer and meta.customer.name:
            names[meta.customer.name] = Speaker.CUSTOMER
        try:
            return transcripts.parse(raw, fmt, names)
        except transcripts.TranscriptError as exc:
            raise InvalidTranscript(str(exc)) from exc

    def _accept_audio(
        self,
        upload: SpooledUpload,
        meta: Metadata,
        transcript: transcripts.Transcript | None = None,
    ) -> tuple[media.AudioInfo, dict[int, str]]:
        """What the upload holds and which speaker each channel carries, or the refusal; the
        audio must last as long as an imported TRANSCRIPT."""
        try:
            info = isolation.run(
                media.probe, upload.path, max_duration_s=self.settings.max_audio_hours * 3600
            )
        except (media.BadAudio, isolation.DecoderFailed) as exc:
            raise InvalidAudio(str(exc)) from exc
        if transcript is not None and transcript.end_s > info.duration_s + 1.0:
            raise InvalidTranscript(
                f"transcript runs to {transcript.end_s:.1f} s but the audio lasts "
                f"{info.duration_s:.1f} s"
            )
        return info, channel_map(meta, info.channels)

    def _existing(self, external_id: str, sha256: str) -> IngestResult | None:
        """The conversation already ingested under this external id, if its audio is the same."""
        with self.db.session() as session:
            conv = session.scalar(
                select(Conversation).where(Conversation.external_id == external_id)
            )
            if conv is None:
                return None
            if conv.recording is None or conv.recording.sha256 != sha256:
                raise errors.Conflict(
                    f"conversation {external_id!r} already exists with different audio"
                )
            job = session.scalar(latest_job(conv.id))
            job_id = job.id if job else None
            return IngestResult(conv.id, conv.external_id, job_id, conv.processing_status, False)

    def _store_media(
        self,
        upload: SpooledUpload,
        filename: str | None,
        info: media.AudioInfo,
        mapping: dict[int, str],
        warnings: list[str] | None = None,
    ) -> StoredAudio:
        """Put the original, its playback rendition and its peaks into the media store."""
        order = media.playback_order(mapping)
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
                isolation.run(media.make_rendition, upload.path, tmp_m4a, tmp_peaks, order)
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
        return StoredAudio(upload, filename, info, mapping, keys, warnings)

    def _forget_media(self, keys: dict[str, str]) -> None:
        """Delete stored media that no recording row refers to (after a refused ingest)."""
        retention.delete_unreferenced(self.db, self.store, keys.values())

    def _insert_recording(self, meta: Metadata, audio: StoredAudio) -> IngestResult:
        """Insert the conversation and its processing job in one transaction; concurrent
        ingests of the same call end in one winner."""
        for _attempt in range(INSERT_ATTEMPTS):
            try:
                with self.db.session() as session:
                    conv = _insert(session, meta, audio, audio.info.duration_s, imported=False)
                    job = Job(conversation_id=conv.id, kind="process", status=Status.QUEUED)
                    session.add(job)
                    session.flush()
                    return IngestResult(conv.id, conv.external_id, job.id, Status.QUEUED, True)
            except IntegrityError:
                existing = self._existing(meta.external_id, audio.upload.sha256)
                if existing is not None:
                    return existing
        raise errors.Unavailable("could not store the conversation: the database kept refusing it")


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


def resolve_people(session: Session, meta: Metadata) -> tuple[int, int | None]:
    """The ids of the call's primary agent and its queue (each made if new), as a
    conversation of META will have them."""
    primary = next((s for s in meta.sessions if s.role == "primary"), meta.sessions[0])
    agent = _agent(session, primary.agent)
    queue = _get_or_create(session, Queue, name=meta.queue) if meta.queue else None
    return agent.id, queue.id if queue else None


def _insert(
    session: Session, meta: Metadata, audio: StoredAudio | None, length_s: float, imported: bool
) -> Conversation:
    """The rows of a conversation (contact, agents, sessions, recording), and nothing else: an
    IMPORTED one is stored processed, with its speakers from the transcript."""
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
    ended_at = max(ends) if ends else recording_start + timedelta(seconds=length_s)
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
        processing_status=Status.PROCESSED if imported else Status.QUEUED,
        metadata_json=meta.model_dump(mode="json"),
        sessions=sessions,
        recording=None
        if audio is None
        else Recording(
            sha256=audio.upload.sha256,
            size_bytes=audio.upload.size,
            original_filename=audio.filename,
            container=audio.info.container,
            codec=audio.info.codec,
            duration_s=audio.info.duration_s,
            channels=audio.info.channels,
            sample_rate=audio.info.sample_rate,
            channel_map={str(k): v for k, v in audio.mapping.items()},
            started_at=recording_start,
            playback_key=audio.keys["playback"],
            peaks_key=audio.keys["peaks"],
            warnings=audio.warnings,
            speaker_source="transcript"
            if imported
            else ("channels" if audio.info.channels >= 2 else "diarization"),
        ),
    )
    session.add(conv)
    session.flush()
    return conv
