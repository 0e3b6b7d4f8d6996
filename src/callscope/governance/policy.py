"""Administrator settings stored in the database: what each one means and its default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from callscope import errors
from callscope.db.models import Setting
from callscope.i18n import N_
from callscope.vocabulary import Role


class UnknownSetting(errors.Refused):
    """No setting of that name, or a value it cannot take."""


@dataclass(frozen=True)
class SettingSpec:
    key: str
    label: str
    default: Any
    kind: type
    help: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    labels: tuple[str, ...] = ()  # how the settings page names each choice

    def choice_labels(self) -> list[tuple[str, str]]:
        return list(zip(self.choices, self.labels or self.choices, strict=True))

    @property
    def control(self) -> str:
        """How a form asks for it: checkbox, choice or number."""
        return "checkbox" if self.kind is bool else "choice" if self.choices else "number"


# Who may download audio and transcripts: the roles at or above the chosen one.
DOWNLOADERS = {
    "everyone": (Role.AGENT, Role.SUPERVISOR, Role.ADMIN),
    "supervisors": (Role.SUPERVISOR, Role.ADMIN),
    "administrators": (Role.ADMIN,),
    "nobody": (),
}
DOWNLOADER_LABELS = (
    N_("everyone who may see the call"),
    N_("supervisors and administrators"),
    N_("administrators only"),
    N_("nobody"),
)


SPECS = {
    s.key: s
    for s in (
        SettingSpec(
            "recordings.enabled",
            N_("Recordings and transcripts can be viewed"),
            False,
            bool,
            N_("recordings and transcripts may be viewed and downloaded"),
        ),
        SettingSpec(
            "consent.required",
            N_("Require consent"),
            False,
            bool,
            N_("ingest refuses calls whose consent is not granted or not required"),
        ),
        SettingSpec(
            "downloads.audio",
            N_("Who may download audio"),
            "everyone",
            str,
            N_(
                "who may download a call's audio: everyone who may see it, supervisors and"
                " administrators, administrators, or nobody"
            ),
            choices=tuple(DOWNLOADERS),
            labels=DOWNLOADER_LABELS,
        ),
        SettingSpec(
            "downloads.transcript",
            N_("Who may download transcripts"),
            "everyone",
            str,
            N_("who may download a call's transcript (same choices as downloads.audio)"),
            choices=tuple(DOWNLOADERS),
            labels=DOWNLOADER_LABELS,
        ),
        SettingSpec(
            "retention.days",
            N_("Retention (days)"),
            0,
            int,
            N_("recordings older than this many days are removed by the worker (0: kept forever)"),
            minimum=0,
        ),
        SettingSpec(
            "retention.mode",
            N_("What retention removes"),
            "recordings",
            str,
            N_(
                "what retention removes: the recordings (audio and transcript; metadata, sentiment"
                " and metrics stay) or whole conversations"
            ),
            choices=("recordings", "conversations"),
            labels=(N_("the recordings (audio and transcript)"), N_("whole conversations")),
        ),
        SettingSpec(
            "pii.redaction",
            N_("Redact personal data"),
            False,
            bool,
            N_(
                "redact personal data (card, account, phone and ID numbers, e-mail addresses) from"
                " transcripts and playback audio"
            ),
        ),
        SettingSpec(
            "pii.originals",
            N_("Unredacted originals"),
            "delete",
            str,
            N_(
                "when redacting: delete the unredacted transcript and audio, or keep them for"
                " administrators only"
            ),
            choices=("delete", "administrators"),
            labels=(N_("delete them"), N_("keep them for administrators")),
        ),
        SettingSpec(
            "evaluations.amend_days",
            N_("Days to amend an evaluation"),
            7,
            int,
            N_(
                "for how many days after submitting its evaluator may amend an evaluation (a"
                " disputed one may be amended until the dispute is answered)"
            ),
            minimum=0,
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
        value = spec.kind(text.strip())
    except ValueError as exc:
        raise UnknownSetting(f"setting {key} takes a {spec.kind.__name__}, not {text!r}") from exc
    check(spec, value)
    return value


def check(spec: SettingSpec, value: Any) -> None:
    """Refuse a value outside the setting's choices or range."""
    if spec.choices and value not in spec.choices:
        raise UnknownSetting(
            f"setting {spec.key} takes one of {', '.join(spec.choices)}, not {value!r}"
        )
    if spec.minimum is not None and value < spec.minimum:
        raise UnknownSetting(f"setting {spec.key} must be at least {spec.minimum}, not {value}")


def get(session: Session, key: str) -> Any:
    """The value in force for KEY (stored, or its default)."""
    spec = SPECS[key]
    row = session.get(Setting, key)
    return spec.default if row is None else row.value


def set_value(session: Session, key: str, value: Any) -> None:
    """Store VALUE for KEY."""
    if key not in SPECS:
        raise UnknownSetting(f"unknown setting {key!r}")
    check(SPECS[key], value)
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value


def all_values(session: Session) -> dict[str, Any]:
    """Every setting with the value in force."""
    return {key: get(session, key) for key in sorted(SPECS)}
