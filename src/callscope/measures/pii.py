"""Personal data in transcripts: card, account, phone and national ID numbers and e-mail
addresses, written as digits or spoken as words, in English and Indonesian.

Detection works on the recognised words of one speaker, so a number spoken across several words
("four eight one five …", "empat delapan satu lima …") is one span; a span becomes one word
`[PII:type]` with the span's times, which is also where the playback audio is covered by a tone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from callscope.measures.segments import Word

DIGIT_WORDS = {
    # English
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
    # Indonesian
    "nol": "0", "kosong": "0", "satu": "1", "dua": "2", "tiga": "3", "empat": "4", "lima": "5",
    "enam": "6", "tujuh": "7", "delapan": "8", "sembilan": "9",
}  # fmt: skip
REPEAT_WORDS = {"double": 2, "triple": 3}  # "double five" = 55
# spoken or written between digit groups (a separator standing alone: "4539 . 1488")
JOINERS = {"dash", "hyphen", "strip", "garis", "-", ".", ",", "/", "–", "—"}
# words shortly before a number that say what kind it is
CONTEXT = {
    "card": ("card", "kartu", "visa", "mastercard", "credit", "debit", "kredit"),
    "account": ("account", "rekening", "iban", "akun", "routing"),
    "phone": (
        "phone", "mobile", "cell", "call", "telepon", "telpon", "hp", "ponsel", "whatsapp", "wa",
    ),
    "national_id": (
        "nik", "ktp", "social", "security", "ssn", "passport", "paspor", "identity", "identitas",
        "kependudukan", "license", "npwp",
    ),
}  # fmt: skip
CONTEXT_WORDS_BEFORE = 8
MIN_DIGITS = {"card": 13, "account": 6, "phone": 7, "national_id": 6}
MIN_DIGITS_WITHOUT_CONTEXT = 8  # an order or ticket number shorter than this is left alone

EMAIL_AT = {"at", "et", "@"}
EMAIL_DOT = {"dot", "titik", "."}
TLDS = {"com", "net", "org", "co", "id", "io", "edu", "gov", "uk", "au", "biz", "info", "me"}
WRITTEN_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", re.UNICODE)


@dataclass(frozen=True)
class Span:
    """Personal data found in a run of words: indexes FIRST..LAST (inclusive) and its type."""

    first: int
    last: int
    kind: str


def _bare(text: str) -> str:
    return re.sub(r"[^\w@+.-]", "", text.lower()).strip(".")


# a number as a recogniser writes it: digit groups joined by any of . , - / (4.539-1488-…,
# 4,539, 4539/1488), perhaps with a leading + or hyphen, and punctuation around it
WRITTEN_NUMBER = re.compile(r"[-+]?\d+(?:[.,/-]\d+)*-?")
AROUND = "\"'()[]{}.,;:!?…“”‘’"
# a date: day and month (either order) and year, one separator; or year-month-day
DATE = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(?:\d{2}|\d{4})|\d{4}-(\d{1,2})-(\d{1,2})")
TIME = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?")
# an amount: a currency before it, or a currency or a magnitude word after it
CURRENCY_BEFORE = re.compile(r"^(?:\$|€|£|¥|rp\.?|usd|idr|eur|sgd)", re.IGNORECASE)
# money written with cents: 1,200.50 or (Indonesian) 1.200,50
DECIMAL_AMOUNT = re.compile(r"\d{1,3}(?:,\d{3})*\.\d{2}|\d{1,3}(?:\.\d{3})*,\d{2}")
AMOUNT_AFTER = {
    "dollar", "dollars", "dolar", "cents", "cent", "sen", "euro", "euros", "pounds", "rupiah",
    "ribu", "juta", "miliar", "thousand", "million", "billion", "percent", "persen", "%",
}  # fmt: skip


def _written(token: str) -> str | None:
    """The digits of a number written with separators ('4.539-1488-0343-6467.', '(0812)',
    '+62'), or None: not such a number, or a date or a time (never personal data here)."""
    text = token.strip().strip(AROUND)
    if not WRITTEN_NUMBER.fullmatch(text) or _date(text) or TIME.fullmatch(text):
        return None
    return re.sub(r"\D", "", text)


def _date(text: str) -> bool:
    found = DATE.fullmatch(text)
    if found is None:
        return False
    a, b = (int(v) for v in (found[1], found[3]) if v) if found[1] else map(int, found.groups()[3:])
    return 1 <= min(a, b) and max(a, b) <= 31 and min(a, b) <= 12


def _amount(words: Sequence[Word], j: int) -> bool:
    """Whether the number at word J is an amount of money (or a share): written with cents
    ('1,200.50', alone), a currency written before it ('$1,250', 'Rp 4.539') or a currency or
    magnitude word after it ('… dollars', '… ribu')."""
    raw = words[j].text.strip()
    before = words[j - 1].text.strip().lower().strip(AROUND) if j else ""
    after = _bare(words[j + 1].text) if j + 1 < len(words) else ""
    following = words[j + 1].text if j + 1 < len(words) else ""
    alone = not (_digits_of(following) or _joiner(following))  # (not the first group of many)
    return bool(
        (DECIMAL_AMOUNT.fullmatch(raw.strip(AROUND)) and alone)
        or CURRENCY_BEFORE.match(raw)
        or before in {"$", "rp", "rp.", "usd", "idr", "eur"}
        or after in AMOUNT_AFTER
        or raw.endswith("%")
    )


def _digits_of(token: str) -> str | None:
    """The digits a word stands for ('4815', '4.539-1488', 'four', 'lima'), or None."""
    bare = _bare(token)
    if bare in DIGIT_WORDS:
        return DIGIT_WORDS[bare]
    return _written(token)


def luhn(number: str) -> bool:
    """Whether NUMBER passes the Luhn check (card numbers do)."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _context(words: Sequence[Word], first: int) -> str | None:
    before = " ".join(_bare(w.text) for w in words[max(0, first - CONTEXT_WORDS_BEFORE) : first])
    found = [
        (max(before.rfind(k) for k in keys if re.search(rf"\b{k}\b", before)), kind)
        for kind, keys in CONTEXT.items()
        if any(re.search(rf"\b{k}\b", before) for k in keys)
    ]
    return max(found)[1] if found else None


def _classify(digits: str, context: str | None) -> str | None:
    if 13 <= len(digits) <= 19 and luhn(digits):
        return "card"
    if context and len(digits) >= MIN_DIGITS[context]:
        return context
    if len(digits) == 16:
        return "national_id"  # Indonesia's NIK: 16 digits
    if len(digits) < MIN_DIGITS_WITHOUT_CONTEXT:
        return None
    if digits.startswith(("0", "62", "1")) and 9 <= len(digits) <= 13:
        return "phone"
    return "account"


def _joiner(token: str) -> bool:
    return _bare(token) in JOINERS or token.strip() in JOINERS


def _digits_in_run(words: Sequence[Word], j: int, inside: bool) -> str | None:
    """The digits word J stands for in a number (INSIDE one already, or with digits after it):
    as `_digits_of`, and a group that reads like a date ('3-01-00') too, since a date does not
    run on into more digits."""
    found = _digits_of(words[j].text)
    if found is not None or not (inside or (j + 1 < len(words) and _digits_of(words[j + 1].text))):
        return found
    text = words[j].text.strip().strip(AROUND)
    groups = re.split(r"[.-]", text)  # (a date written with slashes, or its year whole, stays one)
    grouped = len(groups) == 3 and all(len(g) <= 2 for g in groups)
    return re.sub(r"\D", "", text) if grouped and _date(text) else None


def _misheard_digit(words: Sequence[Word], j: int) -> bool:
    """A one-letter or hyphen-joined token between digits ("453 -I -1488"): a digit the
    recogniser wrote as a letter; it stays inside the number."""
    raw = words[j].text.strip()
    following = words[j + 1].text if j + 1 < len(words) else ""
    short = len(_bare(raw)) == 1 or (raw.startswith("-") and len(_bare(raw)) <= 3)
    return short and _digits_of(following) is not None


def _number_spans(words: Sequence[Word]) -> list[Span]:
    spans = []
    i = 0
    while i < len(words):
        digits, j, repeat = "", i, 1
        while j < len(words):
            bare = _bare(words[j].text)
            if bare in REPEAT_WORDS and j + 1 < len(words) and _digits_of(words[j + 1].text):
                repeat = REPEAT_WORDS[bare]
            elif (d := _digits_in_run(words, j, bool(digits))) is not None and not (
                not digits and _amount(words, j)  # (within a number, a group is no amount)
            ):
                digits += d * repeat if len(d) == 1 else d
                repeat = 1
            elif not (digits and (_joiner(words[j].text) or _misheard_digit(words, j))):
                break
            j += 1
        if digits:
            last = j - 1
            while _digits_in_run(words, last, True) is None:  # (a trailing joiner is not in it)
                last -= 1
            kind = _classify(digits, _context(words, i))
            if kind:
                spans.append(Span(i, last, kind))
            i = last + 1
        else:
            i += 1
    return spans


def _email_spans(words: Sequence[Word]) -> list[Span]:
    spans = []
    for i, w in enumerate(words):
        if WRITTEN_EMAIL.search(w.text):
            spans.append(Span(i, i, "email"))
    for k, w in enumerate(words):
        if _bare(w.text) not in EMAIL_AT or k == 0:
            continue
        # domain: a word, then ("dot" word | ".word")… ending in a known top-level domain
        j, last = k + 1, None
        while j + 1 < len(words):
            following = words[j + 1].text.strip()
            if _bare(following) in EMAIL_DOT and j + 2 < len(words):
                j += 2
            elif following.startswith(".") and len(_bare(following)) > 1:
                j += 1
            else:
                break
            if _bare(words[j].text) in TLDS:
                last = j
        if last is None or k + 1 >= len(words):
            continue
        # local part: a word, and words joined to it by "dot"/"underscore"
        first = k - 1
        while first >= 2 and _bare(words[first - 1].text) in EMAIL_DOT | {"underscore"}:
            first -= 2
        spans.append(Span(first, last, "email"))
    return spans


def _dotted_email_spans(words: Sequence[Word]) -> list[Span]:
    """An address whose "at" the recogniser lost: "Maria .Lopez .example .com" (a word, one
    or more parts written with a leading dot, and a top-level domain)."""
    spans = []
    for k, w in enumerate(words):
        if not (w.text.strip().startswith(".") and _bare(w.text) in TLDS):
            continue
        first = k - 1
        while first > 0 and words[first].text.strip().startswith("."):
            first -= 1
        if first < k - 1:
            spans.append(Span(first, k, "email"))
    return spans


def find(words: Sequence[Word]) -> list[Span]:
    """Personal data in one speaker's words, in order, without overlaps."""
    found = _email_spans(words) + _dotted_email_spans(words) + _number_spans(words)
    spans = sorted(found, key=lambda s: (s.first, -s.last))
    kept: list[Span] = []
    for span in spans:
        if kept and span.first <= kept[-1].last:
            continue
        kept.append(span)
    return kept


def redact(words: Sequence[Word]) -> tuple[list[Word], list[tuple[str, float, float, str]]]:
    """WORDS (all speakers, in time order) with each span of personal data replaced by one word
    `[PII:type]`; and the spans as (speaker, start, end, type)."""
    out: list[Word] = []
    found: list[tuple[str, float, float, str]] = []
    for speaker in sorted({w.speaker for w in words}):
        own = [w for w in words if w.speaker == speaker]
        spans = find(own)
        taken: set[int] = set()
        for span in spans:
            start, end = own[span.first].start, max(w.end for w in own[span.first : span.last + 1])
            out.append(Word(speaker, start, end, f"[PII:{span.kind}]", None))
            found.append((speaker, start, end, span.kind))
            taken.update(range(span.first, span.last + 1))
        out += [w for i, w in enumerate(own) if i not in taken]
    out.sort(key=lambda w: (w.start, w.end, w.speaker))
    return out, sorted(found, key=lambda f: f[1])
