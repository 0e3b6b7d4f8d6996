"""The errors callscope refuses with, by the kind a user meets.

Every error of callscope's own derives from `CallscopeError`, through one of the kinds below;
a module's own errors (`IngestError`, `ErasureError`, …) derive from the kind they are. The
message is a sentence the caller can act on. Interfaces map the kinds in one place each: HTTP
status codes in `web/errors.py`, exit codes in `cli.py`. Nothing here knows of HTTP.
"""

from __future__ import annotations

import json
from typing import Any


class CallscopeError(Exception):
    """Something callscope refuses or cannot do; the message says what and why.

    A message a page shows its user may be given as a catalogue message (marked `N_`) with
    its PARAMS, and the FIELD it is about (`answers.greet`): the text is the message filled in,
    after the field (`answers.greet: …`) as the API gives it; a page translates the message
    and marks the field."""

    def __init__(self, message: str = "", *, field: str | None = None, **params: Any) -> None:
        self.message, self.field, self.params = message, field, params
        said = message % params if params else message
        super().__init__(f"{field}: {said}" if field else said)


class Refused(CallscopeError):
    """Input that is wrong: malformed, unreadable, out of range or against a setting."""


class TooLarge(Refused):
    """Input over a size limit."""


class NotFound(CallscopeError):
    """What was asked for does not exist (or the caller may not know that it does)."""


class NotAllowed(CallscopeError):
    """The caller may not do this."""


class Conflict(CallscopeError):
    """The request clashes with the current state (already exists, not processed yet, …)."""


class Unavailable(CallscopeError):
    """A part callscope needs cannot be used now (a model, the broker, the media store)."""


def read_json(raw: bytes | str, what: str, error: type[CallscopeError] = Refused) -> Any:
    """RAW read as JSON, or ERROR naming WHAT and the problem: not JSON, nested too deeply to
    read, a number too long to read, or NaN / Infinity (which JSON does not have)."""

    def constant(name: str) -> Any:
        raise error(f"{what} is not valid JSON: {name} is not a number JSON allows")

    try:
        return json.loads(raw, parse_constant=constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{what} is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise error(f"{what} is not valid JSON: it is nested too deeply") from exc
    except ValueError as exc:  # (Python reads no integer of more than 4300 digits)
        raise error(f"{what} is not valid JSON: a number in it is too long to read") from exc
