"""The ingest metadata: its shape (docs/ingest.md#metadata) and the refusal that names the first
field that is wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from callscope import errors
from callscope.vocabulary import LANGUAGES

CONSENT_STATUSES = ("granted", "declined", "not_required", "unknown")
MAX_METADATA_BYTES = 256 * 1024
FIRST_YEAR, LAST_YEAR = 1970, 2200


class InvalidMetadata(errors.Refused):
    """Ingest metadata that is not JSON, not the documented shape, or inconsistent."""


def _plausible(value: datetime) -> datetime:
    # (the year itself first: a time in year 1 or 9999 may not convert to UTC at all)
    if not FIRST_YEAR <= value.year <= LAST_YEAR or not (
        FIRST_YEAR <= value.astimezone(UTC).year <= LAST_YEAR
    ):
        raise ValueError(f"must be a time between {FIRST_YEAR} and {LAST_YEAR}")
    return value


# a time with its zone, in the years a recorded call can have
Instant = Annotated[AwareDatetime, AfterValidator(_plausible)]


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
    started_at: Instant | None = None
    channels: dict[str, Literal["agent", "customer"]] | None = None
    language: str | None = None

    @field_validator("channels")
    @classmethod
    def _channel_indexes(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            if not value:
                raise ValueError("must map at least one channel")
            for key in value:
                if not key.isdigit() or len(key) > 2:
                    raise ValueError(f"channel {key[:20]!r} is not a channel number (0, 1, …)")
        return value

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in LANGUAGES:
            raise ValueError(f"unsupported language {value!r} (supported: {', '.join(LANGUAGES)})")
        return value.lower() if value else None


class ConsentIn(_Model):
    status: Literal["granted", "declined", "not_required", "unknown"] = "unknown"
    method: str | None = Field(None, max_length=100)
    at: Instant | None = None


class AgentIn(_Model):
    external_id: str = Field(min_length=1, max_length=200)
    name: str = Field("", max_length=200)
    skills: list[str] = Field(default_factory=list)


class SessionIn(_Model):
    agent: AgentIn
    role: str = Field("primary", min_length=1, max_length=50)
    started_at: Instant
    ended_at: Instant | None = None


class Metadata(_Model):
    """The ingest metadata, exactly the shape of docs/ingest.md#metadata."""

    external_id: str = Field(min_length=1, max_length=200)
    channel: str = Field("voice", min_length=1, max_length=50)
    customer: CustomerIn | None = None
    queue: str | None = Field(None, max_length=200)
    workstream: str | None = Field(None, max_length=200)
    status: str = Field("closed", max_length=50)
    status_reason: str | None = Field(None, max_length=200)
    regarding: RegardingIn | None = None
    started_at: Instant | None = None
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
        raw = errors.read_json(raw, "metadata", InvalidMetadata)
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
