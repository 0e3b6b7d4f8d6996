"""Streaming multipart parsing for ingest and import: the audio part goes to disk under the
size cap; metadata and an imported transcript are read into memory under theirs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from callscope import errors
from callscope.processing.metadata import MAX_METADATA_BYTES, InvalidMetadata
from callscope.store import Spool, SpooledUpload, safe_suffix

MAX_TRANSCRIPT_BYTES = 20 * 1024 * 1024


class MalformedBody(errors.Refused):
    """The request body is not the multipart form ingest expects."""


@dataclass
class IngestForm:
    """The parts of an ingest request (metadata and audio) or of an import (metadata, a
    transcript and perhaps audio)."""

    metadata: bytes
    audio: SpooledUpload | None
    filename: str | None
    transcript: bytes | None = None
    transcript_filename: str | None = None


@dataclass
class _PartState:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    field: bytes = b""
    value: bytes = b""
    name: str | None = None
    filename: str | None = None


async def read_ingest_form(
    content_type: str,
    body: AsyncIterator[bytes],
    tmp_dir: Path,
    limit: int,
    importing: bool = False,
) -> IngestForm:
    """Parse a multipart body with parts `metadata` (JSON) and `audio` (file), streaming;
    IMPORTING: `metadata`, `transcript` (file) and, if there is one, `audio`."""
    wanted = (
        "'metadata', 'transcript' and perhaps 'audio'" if importing else "'metadata' and 'audio'"
    )
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data":
        raise MalformedBody(f"request body must be multipart/form-data with parts {wanted}")
    boundary = params.get(b"boundary")
    if not boundary:
        raise MalformedBody("multipart body has no boundary in its Content-Type")

    part = _PartState()
    metadata = bytearray()
    transcript = bytearray()
    transcript_filename: str | None = None
    seen: set[str] = set()
    spool: Spool | None = None
    audio: SpooledUpload | None = None
    filename: str | None = None

    def on_part_begin() -> None:
        nonlocal part
        part = _PartState()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part.field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part.value += data[start:end]

    def on_header_end() -> None:
        part.headers[part.field.lower()] = part.value
        part.field, part.value = b"", b""

    def on_headers_finished() -> None:
        nonlocal spool, filename, transcript_filename
        _, disp = parse_options_header(part.headers.get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        part.name = name
        if name in seen:
            raise MalformedBody(f"multipart part {name!r} appears more than once")
        seen.add(name)
        if name == "audio":
            raw = disp.get(b"filename")
            filename = raw.decode("utf-8", "replace") if raw else None
            spool = Spool(tmp_dir, limit, safe_suffix(filename))
        elif name == "transcript":
            raw = disp.get(b"filename")
            transcript_filename = raw.decode("utf-8", "replace") if raw else None

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.name == "audio" and spool is not None:
            spool.write(data[start:end])
        elif part.name == "metadata":
            metadata.extend(data[start:end])
            if len(metadata) > MAX_METADATA_BYTES:
                raise InvalidMetadata(f"metadata is larger than {MAX_METADATA_BYTES // 1024} KiB")
        elif part.name == "transcript" and importing:
            transcript.extend(data[start:end])
            if len(transcript) > MAX_TRANSCRIPT_BYTES:
                raise errors.TooLarge(
                    f"transcript is larger than {MAX_TRANSCRIPT_BYTES // (1024 * 1024)} MiB"
                )

    def on_part_end() -> None:
        nonlocal audio
        if part.name == "audio" and spool is not None and audio is None:
            audio = spool.finish()

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
        },
    )
    try:
        async for chunk in body:
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        _cleanup(spool, audio)
        raise MalformedBody(f"malformed multipart body: {exc}") from exc
    except BaseException:
        _cleanup(spool, audio)
        raise
    missing = [
        name for name in ("metadata", "transcript" if importing else "audio") if name not in seen
    ]
    if audio is None and "audio" in seen:
        _cleanup(spool, audio)
        raise MalformedBody("multipart part 'audio' is incomplete (body ended early)")
    if missing:
        _cleanup(spool, audio)
        raise MalformedBody(f"multipart part {missing[-1]!r} is missing")
    return IngestForm(
        bytes(metadata),
        audio,
        filename,
        bytes(transcript) if importing else None,
        transcript_filename,
    )


def _cleanup(spool: Spool | None, audio: SpooledUpload | None) -> None:
    if audio is not None:
        audio.discard()
    elif spool is not None:
        spool.abort()
