"""Log lines: readable by default, one JSON object per line with CALLSCOPE_LOG_FORMAT=json.

Each line carries what is known of where it comes from: the request id, the user id, the
conversation id and the job id. Log messages name things by id and never carry transcript
text, metadata values or search queries (personal data stays in the database).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

FORMATS = ("text", "json")
FIELDS = ("request_id", "user_id", "conversation_id", "job_id")
EXTRA = ("method", "route", "status", "duration_ms")  # what the access log adds to its lines
# one dict per request or job: a sync dependency running in a thread pool fills in the same
# object the request's middleware reads when it writes its line
_fields: ContextVar[dict[str, Any] | None] = ContextVar("callscope_log_fields", default=None)


@contextmanager
def bound(**fields: Any) -> Iterator[dict[str, Any]]:
    """Within: every line logged carries FIELDS (added to those bound around it)."""
    token = _fields.set({**(_fields.get() or {}), **fields})
    try:
        yield _fields.get() or {}
    finally:
        _fields.reset(token)


def note(**fields: Any) -> None:
    """Add FIELDS to what is bound now (the user id, once known)."""
    current = _fields.get()
    if current is not None:
        current.update(fields)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_fields.get() or {}).items():
            setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the bound ids, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in (*FIELDS, *EXTRA):
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger: message [request_id=… job_id=…]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(
            f"{name}={getattr(record, name)}"
            for name in FIELDS
            if getattr(record, name, None) is not None
        )
        return f"{line} [{ids}]" if ids else line


def configure(fmt: str = "text", level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Send every logger's lines (callscope's, the server's, Celery's) to STREAM (default:
    stderr) in FMT."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
