"""Interface languages: the choice of language, complete catalogs, localised values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from callscope import i18n
from callscope.web.ui import JS_MESSAGES

SRC = Path(i18n.__file__).parent.parent
DYNAMIC = (
    "submitted",  # an evaluation's status and answers
    "acknowledged",
    "disputed",
    "answered",
    "yes",
    "no",
    "na",
    "yes_no",  # a form's question types, and when a category answers one
    "scale_5",
    "matched",
    "absent",
    "complaint",  # the kinds of summary highlights
    "praise",
    "escalation",
    "money",
    "any",  # who says a category's phrases
    "agent",
    "supervisor",
    "admin",
    "customer",
    "unknown",
    "queued",
    "processing",
    "processed",
    "failed",
    "positive",
    "neutral",
    "negative",
    "granted",
    "declined",
    "not_required",
    "voice",
    "primary",
    "transfer",
    "consult",
    "everyone",
    "supervisors",
    "administrators",
    "nobody",
    "recordings",
    "conversations",
    "delete",
)


@pytest.mark.parametrize(
    "preferred,header,expected",
    [
        ("id", "en-US,en;q=0.9", "id"),
        (None, "id-ID,id;q=0.9,en;q=0.8", "id"),
        (None, "fr-FR,fr;q=0.9,en;q=0.5", "en"),
        (None, "en;q=0.2,id;q=0.8", "id"),
        (None, "id;q=oops,en", "en"),
        (None, None, "en"),
        ("xx", "id", "id"),
    ],
)
def test_language_is_the_users_choice_else_the_browsers(preferred, header, expected):
    assert i18n.choose(preferred, header) == expected


def test_every_interface_message_has_an_indonesian_translation():
    method_map = [("web/templates/**.html", "jinja2"), ("**.py", "python")]
    options = {"web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    found = {
        message if isinstance(message, str) else message[0]
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(SRC),
            method_map,
            options_map=options,
            keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None},
        )
    }
    with open(SRC / "i18n" / "id.po", "rb") as f:
        catalog = read_po(f, locale="id")
    wanted = found | set(JS_MESSAGES) | set(DYNAMIC)
    missing = sorted(m for m in wanted if not (catalog.get(m) and catalog.get(m).string))
    assert len(found) > 100
    assert missing == []


def test_dates_numbers_and_durations_follow_the_language():
    i18n.activate("id")
    try:
        assert i18n.when("2026-11-20T14:00:00Z", "Asia/Jakarta") == "20 Nov 2026 21.00.00 WIB"
        assert i18n.number(1234.5, 1) == "1.234,5"
        assert i18n.span(300) == "5 menit"
        assert i18n.gettext("Play") == "Putar"
    finally:
        i18n.activate("en")
    assert i18n.when("2026-11-20T14:00:00Z") == "Nov 20, 2026, 2:00:00\u202fPM UTC"
    # a zone with no short name in the language shows its offset
    jakarta = i18n.when("2026-11-20T02:15:00Z", "Asia/Jakarta")
    assert jakarta == "Nov 20, 2026, 9:15:00\u202fAM UTC+07:00"
    assert i18n.number(1234.5, 1) == "1,234.5"
    assert i18n.span(300) == "5 minutes"


def test_the_catalog_names_each_message_once():
    ids = re.findall(r'^msgid "(.+)"$', (SRC / "i18n" / "id.po").read_text(), re.M)
    assert sorted({m for m in ids if ids.count(m) > 1}) == []
