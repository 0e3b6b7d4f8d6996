"""Administrator settings stored in the database: what each one means and its default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from callscope.db.models import Setting


class UnknownSetting(Exception):
    """No setting of that name, or a value it cannot take."""


@dataclass(frozen=True)
class SettingSpec:
    key: str
    default: Any
    kind: type
    help: str


SPECS = {
    s.key: s
    for s in (
        SettingSpec(
            "recordings.enabled",
            False,
            bool,
            "recordings and transcripts may be viewed and downloaded (S1)",
        ),
        SettingSpec(
            "consent.required",
            False,
            bool,
            "ingest refuses calls whose consent is not granted or not required (S2)",
        ),
    )
}


def parse_value(key: str, text: str) -> Any:
    """Parse TEXT as a value of setting KEY, or explain why it cannot be one."""
    spec = SPECS.get(key)
    if spec is None:
        raise UnknownSetting(f"unknown setting {key!r} (known: {', '.join(sorted(SPECS))})")
    if spec.kind is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "on", "yes", "1"):
            return True
        if lowered in ("false", "off", "no", "0"):
            return False
        raise UnknownSetting(f"setting {key} takes true or false, not {text!r}")
    try:
        return spec.kind(text)
    except ValueError as exc:
        raise UnknownSetting(f"setting {key} takes a {spec.kind.__name__}, not {text!r}") from exc


def get(session: Session, key: str) -> Any:
    """The value in force for KEY (stored, or its default)."""
    spec = SPECS[key]
    row = session.get(Setting, key)
    return spec.default if row is None else row.value


def set_value(session: Session, key: str, value: Any) -> None:
    """Store VALUE for KEY."""
    if key not in SPECS:
        raise UnknownSetting(f"unknown setting {key!r}")
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value


def all_values(session: Session) -> dict[str, Any]:
    """Every setting with the value in force."""
    return {key: get(session, key) for key in sorted(SPECS)}
