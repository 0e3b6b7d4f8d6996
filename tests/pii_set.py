"""A built set of spoken personal data in English and Indonesian, and how well redaction finds
it (used by the tests and by `python -m benchmarks.pii`).

The set (`utterances()`, fixed seed) holds card numbers (Luhn-valid), bank account numbers,
phone numbers, national ID numbers (16-digit NIK; US social security numbers) and e-mail
addresses, each inside a sentence the way a speech recogniser writes speech down: digits in
groups, digits spoken as words, mixed, with punctuation; e-mail addresses spoken ("maria dot
lopez at example dot com", "budi titik santoso at gmail titik com") or written. It also holds
numbers that are not personal data (order numbers, prices, times, dates) to count what is
redacted needlessly.
"""

from __future__ import annotations

import random
import re

from callscope.measures import pii
from callscope.measures.segments import Word

WORDS = {
    "en": "zero one two three four five six seven eight nine".split(),
    "id": "nol satu dua tiga empat lima enam tujuh delapan sembilan".split(),
}
NAMES = ["maria", "budi", "john", "siti", "ahmad", "helen", "rina", "david"]
SURNAMES = ["lopez", "santoso", "smith", "rahma", "wijaya", "brooks", "putri", "lee"]
DOMAINS = ["example", "gmail", "yahoo", "mail", "kantor"]


def luhn_number(rng: random.Random, length: int = 16) -> str:
    body = [rng.choice("3456")] + [str(rng.randrange(10)) for _ in range(length - 2)]
    for check in "0123456789":
        if pii.luhn("".join(body) + check):
            return "".join(body) + check
    raise AssertionError("no check digit")


def spoken(digits: str, language: str, rng: random.Random) -> str:
    """DIGITS as a recogniser might write them: groups, words, or a mix."""
    style = rng.choice(["groups", "words", "mixed", "plain"])
    if style == "plain":
        return digits
    if style == "groups":
        size = rng.choice([3, 4])
        return " ".join(digits[i : i + size] for i in range(0, len(digits), size))
    if style == "words":
        return ", ".join(WORDS[language][int(d)] for d in digits)
    half = len(digits) // 2
    return digits[:half] + " " + " ".join(WORDS[language][int(d)] for d in digits[half:])


def email(rng: random.Random, language: str) -> str:
    name, surname, domain = rng.choice(NAMES), rng.choice(SURNAMES), rng.choice(DOMAINS)
    style = rng.choice(["spoken", "written"])
    if style == "written":
        return f"{name}.{surname}@{domain}.com"
    dot = "titik" if language == "id" and rng.random() < 0.7 else "dot"
    tld = rng.choice(["com", "co dot id" if dot == "dot" else "co titik id", "net"])
    return f"{name} {dot} {surname} at {domain} {dot} {tld}"


TEMPLATES = {
    "en": {
        "card": ["My card number is {}.", "Sure, it's {} on the Visa.", "The credit card is {}"],
        "account": ["My account number is {}.", "Please refund it to account {}."],
        "phone": ["You can call me on {}.", "My phone number is {}.", "My mobile is {}, thanks."],
        "national_id": ["My social security number is {}.", "The ID number on it is {}."],
        "email": ["My email is {}.", "Send it to {} please.", "The email address is {}."],
    },
    "id": {
        "card": ["Nomor kartu kredit saya {}.", "Kartu debit saya {}, Mbak."],
        "account": ["Nomor rekening saya {}.", "Tolong transfer ke rekening {}."],
        "phone": ["Nomor HP saya {}.", "Bisa telepon ke {}.", "WhatsApp saya {}."],
        "national_id": ["NIK saya {}.", "Nomor KTP saya {}."],
        "email": ["Email saya {}.", "Alamat email saya {}."],
    },
}
NOT_PII = {
    "en": [
        "The order number is {}.",
        "It cost {} dollars.",
        "I called at {} this morning.",
        "Ticket {} was closed.",
    ],
    "id": ["Nomor pesanan saya {}.", "Harganya {} ribu.", "Saya datang jam {}."],
}


def value(kind: str, language: str, rng: random.Random) -> str:
    if kind == "card":
        return spoken(luhn_number(rng, rng.choice([15, 16])), language, rng)
    if kind == "account":
        return spoken(
            "".join(str(rng.randrange(10)) for _ in range(rng.randint(8, 12))), language, rng
        )
    if kind == "phone":
        local = "08" + "".join(str(rng.randrange(10)) for _ in range(rng.randint(8, 10)))
        number = local if language == "id" else "".join(str(rng.randrange(10)) for _ in range(10))
        return spoken(number, language, rng)
    if kind == "national_id":
        if language == "en" and rng.random() < 0.5:
            d = "".join(str(rng.randrange(10)) for _ in range(9))
            return f"{d[:3]}-{d[3:5]}-{d[5:]}"
        return spoken("".join(str(rng.randrange(1, 10)) for _ in range(16)), language, rng)
    return email(rng, language)


def utterances(per_type: int = 8, seed: int = 7) -> list[dict]:
    """The set: PII items (`value` is the personal data) and non-PII numbers (`value` None)."""
    rng = random.Random(seed)
    items = []
    for language, kinds in TEMPLATES.items():
        for kind, templates in kinds.items():
            for n in range(per_type):
                v = value(kind, language, rng)
                items.append(
                    {
                        "language": language,
                        "type": kind,
                        "text": templates[n % len(templates)].format(v),
                        "value": v,
                    }
                )
        for n, template in enumerate(NOT_PII[language] * 2):
            number = (
                str(rng.randint(10, 99999))
                if n % 2
                else f"{rng.randint(1, 12)}.{rng.randint(10, 59)}"
            )
            items.append(
                {
                    "language": language,
                    "type": None,
                    "text": template.format(number),
                    "value": number,
                }
            )
    return items


def words_of(text: str) -> list[Word]:
    return [Word("customer", i * 0.4, i * 0.4 + 0.35, t) for i, t in enumerate(text.split())]


def score(items: list[dict], transcribe=None) -> dict:
    """Recall, type accuracy and needless redactions over ITEMS (text, or audio via TRANSCRIBE)."""
    caught = typed = needless = 0
    missed = []
    pii_items = [i for i in items if i["type"]]
    for item in items:
        words = transcribe(item) if transcribe else words_of(item["text"])
        _redacted, spans = pii.redact(words)
        if transcribe:
            # audio: the value is hidden when no digit and no e-mail part of it is left
            left = " ".join(w.text for w in _redacted)
            hidden = not re.search(r"\d", left) and "@" not in left if item["type"] else False
            hit = hidden and bool(spans)
        else:
            start = len(item["text"].split(item["value"])[0].split())
            length = len(item["value"].split())
            covered = {i for s in pii.find(words) for i in range(s.first, s.last + 1)}
            hit = all(i in covered for i in range(start, start + length))
        if item["type"] is None:
            needless += bool(spans)
            continue
        caught += hit
        typed += hit and any(kind == item["type"] for *_, kind in spans)
        if not hit:
            missed.append(item["text"])
    negatives = len(items) - len(pii_items)
    return {
        "items": len(pii_items),
        "recall": caught / len(pii_items),
        "type_right": typed / max(caught, 1),
        "non_pii_numbers": negatives,
        "needless": needless / max(negatives, 1),
        "missed": missed,
    }


# --- readings in any spelling ---------------------------------------------------------------

# what recognisers and people put between digit groups, and after a number
SEPARATORS = [" ", "-", ".", ",", ", ", "/", "", " - ", " dash ", " . "]
ENDINGS = ["", "", ".", ",", "?", "!"]


def spelled(digits: str, language: str, rng: random.Random) -> str:
    """DIGITS as they may be written down: in groups (the usual four, or of 1 to 6, or one
    run), each group as digits or as words (English or Indonesian), the groups joined by one
    separator of SEPARATORS (or another at each join), perhaps followed by punctuation."""
    if rng.random() < 0.4 and len(digits) % 4 == 0:
        sizes = [4] * (len(digits) // 4)
    else:
        sizes = []
        while sum(sizes) < len(digits):
            sizes.append(min(rng.randint(1, 6), len(digits) - sum(sizes)))
    groups, at = [], 0
    for size in sizes:
        group = digits[at : at + size]
        at += size
        as_words = rng.random() < 0.3
        groups.append(
            (" ".join(WORDS[language][int(d)] for d in group), True) if as_words else (group, False)
        )
    one = rng.choice(SEPARATORS)
    text = groups[0][0]
    for (_, words_before), (group, words_now) in zip(groups, groups[1:], strict=False):
        sep = one if rng.random() < 0.8 else rng.choice(SEPARATORS)
        if (words_before or words_now) and sep.strip() in ("", "-", ".", ",", "/"):
            sep = " "  # (a word is never glued to a digit)
        text += sep + group
    return text + rng.choice(ENDINGS)


READINGS = {
    "en": {
        "card": ["My card number is {}", "Sure, it's {} on the Visa.", "The credit card is {} yes"],
        "account": ["My account number is {}", "Please refund it to account {} thanks"],
        "phone": ["You can call me on {}", "My phone number is {} okay", "My mobile is {}"],
        "national_id": ["My social security number is {}", "The passport number is {} right"],
    },
    "id": {
        "card": ["Nomor kartu kredit saya {}", "Kartu debit saya {} Mbak"],
        "account": ["Nomor rekening saya {}", "Tolong transfer ke rekening {} ya"],
        "phone": ["Nomor HP saya {}", "Bisa telepon ke {} saja", "WhatsApp saya {}"],
        "national_id": ["NIK saya {}", "Nomor KTP saya {} Pak"],
    },
}
# numbers that are not personal data, as they are written, some next to a context word
NOT_PERSONAL = {
    "amount": [
        "My account balance is ${:,}.{:02d} now",
        "The card fee was {:,} dollars",
        "Saldo rekening saya Rp {:,} sekarang",
        "Biaya kartu {} ribu",
        "It went up {}% on the card",
    ],
    "time": ["I called at {}:{:02d} this morning", "Saya telepon jam {}.{:02d} tadi"],
    "date": [
        "The card expires {}/{:02d}",
        "I paid on {:02d}/{:02d}/2026",
        "Tanggal {}-{:02d}-2026",
    ],
    "order": ["The order number is {}", "Nomor pesanan saya {}", "Ticket {} was closed"],
}


def _digits(rng: random.Random, n: int, first: str = "0123456789") -> str:
    return rng.choice(first) + "".join(str(rng.randrange(10)) for _ in range(n - 1))


def reading_value(kind: str, language: str, rng: random.Random) -> str:
    """A value of KIND spelled in any way."""
    if kind == "card":
        digits = luhn_number(rng, rng.choice([15, 16, 16, 16, 19]))
    elif kind == "account":
        digits = _digits(rng, rng.randint(8, 14), "123456789")
    elif kind == "phone":
        digits = ("08" if language == "id" else "") + _digits(rng, rng.randint(8, 10))
        if rng.random() < 0.2:
            return "+62 " + spelled(digits[1:], language, rng)
    else:
        digits = _digits(rng, 16, "123456789") if language == "id" else _digits(rng, 9)
    return spelled(digits, language, rng)


def not_personal(kind: str, rng: random.Random) -> str:
    template = rng.choice(NOT_PERSONAL[kind])
    count = template.count("{")
    if kind == "amount":
        values = [rng.randint(1, 9_999_999), rng.randint(0, 99)][:count]
    elif kind == "time":
        values = [rng.randint(1, 12), rng.randint(0, 59)]
    elif kind == "date":
        values = [rng.randint(1, 12), rng.randint(1, 28)] if count == 2 else []
    else:
        values = [rng.randint(100, 9_999_999)]
    return template.format(*values)


def readings(per_kind: int = 40, seed: int = 11) -> list[dict]:
    """PER_KIND readings of each kind of personal data in each language, spelled in any way,
    and as many numbers that are not personal data (amounts, times, dates, order numbers)."""
    rng = random.Random(seed)
    items = []
    for language, kinds in READINGS.items():
        for kind, templates in kinds.items():
            for n in range(per_kind):
                value = reading_value(kind, language, rng)
                text = templates[n % len(templates)].format(value)
                items.append({"language": language, "type": kind, "text": text, "value": value})
    for kind in NOT_PERSONAL:
        for _ in range(per_kind):
            text = not_personal(kind, rng)
            items.append({"language": None, "type": None, "kind": kind, "text": text, "value": ""})
    return items


def covered(item: dict) -> tuple[bool, list[pii.Span]]:
    """Whether every word of ITEM's value lies in one span of personal data found in its
    text, and the spans found."""
    words = words_of(item["text"])
    spans = pii.find(words)
    start = len(item["text"].split(item["value"])[0].split())
    wanted = range(start, start + len(item["value"].split()))
    return any(s.first <= wanted[0] and wanted[-1] <= s.last for s in spans), spans


def reading_scores(items: list[dict]) -> dict:
    """Recall per kind (a card also typed as one), and the share of each kind of number that is
    not personal data redacted needlessly, over READINGS-like ITEMS."""
    hits: dict[str, list[bool]] = {}
    needless: dict[str, list[bool]] = {}
    missed = []
    for item in items:
        if item["type"]:
            whole, spans = covered(item)
            hit = whole and (item["type"] != "card" or any(s.kind == "card" for s in spans))
            hits.setdefault(item["type"], []).append(hit)
        else:
            hit = not pii.find(words_of(item["text"]))
            needless.setdefault(item["kind"], []).append(not hit)
        if not hit:
            missed.append(item["text"])
    return {
        "readings": len(items),
        "recall": {k: sum(v) / len(v) for k, v in hits.items()},
        "needless": {k: sum(v) / len(v) for k, v in needless.items()},
        "missed": missed,
    }
