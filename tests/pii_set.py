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
