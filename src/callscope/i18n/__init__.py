"""Languages of the interface: message catalogs, the language of a request, and
localised dates, numbers and durations (Babel)."""

from __future__ import annotations

import io
from contextvars import ContextVar
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

from babel.dates import format_date, format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

from callscope import vocabulary

# each language of the vocabulary by its own name
LANGUAGES = dict(zip(vocabulary.LANGUAGES, ("English", "Bahasa Indonesia"), strict=True))
DEFAULT = "en"
CATALOGS = Path(__file__).parent

_current: ContextVar[str] = ContextVar("language", default=DEFAULT)


@cache
def translations(language: str) -> Translations:
    """The compiled catalog of LANGUAGE (English is the source language)."""
    path = CATALOGS / f"{language}.po"
    if language == DEFAULT or not path.exists():
        return Translations()
    with open(path, "rb") as f:
        catalog = read_po(f, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def choose(preferred: str | None, accept_language: str | None) -> str:
    """The user's own choice, else the best match of the browser's Accept-Language, else en."""
    if preferred in LANGUAGES:
        return preferred
    ranked = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, quality = item.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            continue
        ranked.append((-weight, position, tag.split("-")[0].lower()))
    for _w, _p, language in sorted(ranked):
        if language in LANGUAGES:
            return language
    return DEFAULT


def activate(language: str) -> None:
    """Make LANGUAGE the language of the current request."""
    _current.set(language if language in LANGUAGES else DEFAULT)


def current() -> str:
    return _current.get()


def gettext(message: str) -> str:
    return translations(current()).ugettext(message)


def N_(message: str) -> str:  # noqa: N802 - the conventional name of the marker
    """Mark MESSAGE for translation where it is defined; it is translated where it is shown."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current()).ungettext(singular, plural, n)


def when(value: datetime | str | None, zone: str = "UTC") -> str:
    """A date and time in the current language, shown in ZONE and saying so ("WIB",
    "UTC+07:00")."""
    if value is None:
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    tzinfo = _zone(zone)
    shown = format_datetime(value, "medium", tzinfo=tzinfo, locale=current())
    name = format_datetime(value, "z", tzinfo=tzinfo, locale=current())
    if not name.isalpha():  # no short name in this language: the offset
        offset = value.astimezone(tzinfo).strftime("%z")
        name = f"UTC{offset[:3]}:{offset[3:]}" if offset != "+0000" else "UTC"
    return f"{shown} {name}"


def day(value: str | date) -> str:
    """A day in the current language ("23 Nov 2026")."""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    return format_date(value, "medium", locale=current())


@cache
def zones() -> tuple[str, ...]:
    """The IANA time zones this machine knows, in order."""
    return tuple(sorted(available_timezones()))


def known_zone(name: str | None) -> bool:
    return name in zones()


def number(value: float | None, digits: int = 1) -> str:
    """A number with the current language's decimal mark."""
    if value is None:
        return "–"
    return format_decimal(
        round(value, digits),
        format=f"#,##0.{'0' * digits}" if digits else "#,##0",
        locale=current(),
    )


def span(seconds: float | None) -> str:
    """A duration in words ("5 minutes", "5 menit")."""
    if seconds is None:
        return "–"
    return format_timedelta(timedelta(seconds=seconds), threshold=1.2, locale=current())


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
