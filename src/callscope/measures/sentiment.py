"""Sentiment per segment and per conversation (docs/metrics.md#sentiment), English and
Indonesian (pure)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from callscope.vocabulary import Speaker

POSITIVE_MIN, NEGATIVE_MAX = 0.05, -0.05
# a line whose words' mean recognition confidence is lower is uncertain: its sentiment is not
# guessed (no score, no face) and it does not count in any average
UNCERTAIN_BELOW = 0.5
LABELS = ("negative", "neutral", "positive")  # (the learned classifier's classes, in order)
TREND_STEP = 0.1  # a customer trend this far from 0 is rising or falling (the list's arrow)
EMOJI = {"positive": "🙂", "neutral": "😐", "negative": "🙁"}

# Indonesian: a lexicon of customer-service words, valence −4 … +4 (VADER's scale).
ID_LEXICON: dict[str, float] = {
    # positive
    "terimakasih": 1.9,
    "makasih": 1.8,
    "bagus": 2.0,
    "baik": 0.3,  # mostly "alright"
    "senang": 2.2,
    "puas": 2.3,
    "memuaskan": 2.3,
    "mantap": 2.5,
    "hebat": 2.6,
    "sopan": 1.6,
    "cepat": 1.4,
    "mudah": 1.5,
    "ramah": 2.0,
    "membantu": 1.9,
    "terbantu": 2.0,
    "berhasil": 2.0,
    "sukses": 2.2,
    "lancar": 1.8,
    "beres": 1.6,
    "selesai": 1.0,
    "tepat": 1.2,
    "jelas": 1.1,
    "sempurna": 2.8,
    "nyaman": 1.9,
    "aman": 1.5,
    "gratis": 1.6,
    "untung": 1.6,
    "syukur": 2.0,
    "alhamdulillah": 2.2,
    "suka": 1.8,
    "senangnya": 2.2,
    "lega": 1.9,
    "tenang": 1.3,
    "profesional": 1.8,
    "sabar": 1.4,
    "sigap": 1.8,
    "responsif": 1.8,
    "apresiasi": 2.0,
    "hargai": 1.6,
    "menghargai": 1.6,
    "beruntung": 1.9,
    "berfungsi": 1.2,
    "normal": 0.8,
    "diganti": 0.6,
    "pengganti": 0.5,
    "kembali": 0.0,
    "oke": 0.0,  # an acknowledgement
    "ok": 0.0,
    "sip": 1.5,
    "keren": 2.1,
    "top": 2.0,
    "terbaik": 2.6,
    "cocok": 1.4,
    "solusi": 1.2,
    "bantuan": 1.2,
    "bantu": 1.2,
    "maaf": -0.3,
    "selamat": 1.0,
    "semoga": 0.8,
    "benar": 0.6,
    "setuju": 1.2,
    "berguna": 1.6,
    "memuaskannya": 2.3,
    "bahagia": 2.6,
    "gembira": 2.5,
    "luarbiasa": 2.8,
    "andal": 1.8,
    # negative
    "kecewa": -2.4,
    "mengecewakan": -2.6,
    "kesal": -2.2,
    "jengkel": -2.3,
    "marah": -2.7,
    "buruk": -2.5,
    "jelek": -2.2,
    "parah": -2.4,
    "rusak": -2.0,
    "hilang": -1.6,
    "lambat": -1.7,
    "lelet": -2.0,
    "susah": -1.7,
    "sulit": -1.6,
    "ribet": -1.9,
    "rumit": -1.3,
    "gagal": -2.1,
    "salah": -1.6,
    "keliru": -1.4,
    "masalah": -1.5,
    "bermasalah": -1.8,
    "gangguan": -1.8,
    "error": -1.7,
    "eror": -1.7,
    "mati": -1.6,
    "putus": -1.5,
    "terputus": -1.6,
    "macet": -1.7,
    "telat": -1.6,
    "terlambat": -1.7,
    "tertunda": -1.3,
    "batal": -1.3,
    "dibatalkan": -1.3,
    "mahal": -1.4,
    "diterima": 0.0,  # "received" ("diterima tetangga"): a status, not a feeling
    "denda": -1.5,
    "penipuan": -3.0,
    "tipu": -2.8,
    "bohong": -2.6,
    "curang": -2.7,
    "cacat": -2.0,
    "pecah": -1.9,
    "retak": -1.7,
    "bocor": -1.8,
    "komplain": -1.6,
    "mengeluh": -1.7,
    "protes": -1.6,
    "khawatir": -1.6,
    "cemas": -1.8,
    "takut": -1.8,
    "bingung": -1.3,
    "repot": -1.5,
    "capek": -1.6,
    "lelah": -1.4,
    "bosan": -1.3,
    "sedih": -2.1,
    "menyesal": -2.0,
    "parahnya": -2.4,
    "kacau": -2.2,
    "payah": -2.3,
    "sampah": -2.6,
    "benci": -2.9,
    "tidakpuas": -2.3,
    "dicuri": -2.4,
    "dibobol": -2.6,
    "terblokir": -1.5,
    "blokir": -1.2,
    "diblokir": -1.4,
    "ditolak": -1.7,
    "tolak": -1.3,
    "menunggu": -0.6,
    "tunggu": -0.3,
    "kurangajar": -3.0,
    "kasar": -2.3,
    "tidaksopan": -2.3,
    "lalai": -2.0,
    "percuma": -2.0,
    "sia-sia": -2.0,
    "kehilangan": -1.8,
    "rugi": -2.0,
    "merugikan": -2.2,
    "dirugikan": -2.2,
    "darurat": -1.2,
    "menyebalkan": -2.4,
    "nyebelin": -2.4,
    "lemot": -2.0,
    "gampang": 1.5,
    "semudah": 1.5,
    "asyik": 2.0,
    "asik": 2.0,
    "jernih": 1.5,
    "sebel": -2.2,
    "sebal": -2.2,
    "pas": 0.0,  # "fits", but far more often "when" ("pas hujan"): no sentiment of its own
    "berkurang": -1.2,
    "keluhan": 0.0,  # "I'll note your complaint": a procedure
}
ID_NEGATIONS = {
    "tidak",
    "bukan",
    "belum",
    "kurang",
    "tak",
    "nggak",
    "ngga",
    "gak",
    "enggak",
    "ga",
    "jangan",
    "tanpa",
}
ID_BOOSTERS = {
    "sangat": 0.293,
    "sekali": 0.293,
    "banget": 0.293,
    "amat": 0.293,
    "terlalu": 0.293,
    "paling": 0.293,
    "benar-benar": 0.293,
    "sungguh": 0.293,
    "begitu": 0.2,
    "cukup": -0.2,
    "agak": -0.2,
    "sedikit": -0.2,
}
ID_SUFFIXES = ("nya", "lah", "kah", "pun")
ID_PHRASES = {"terima kasih": "terimakasih", "luar biasa": "luarbiasa", "kurang ajar": "kurangajar"}
NEGATION_SCALAR = -0.74  # VADER's: a negated word keeps part of its strength, flipped
NEGATION_REACH = 2  # a negation word turns the next two words
WORD_RE = re.compile(r"[a-zA-Z]+(?:-[a-zA-Z]+)?")
CLAUSE_RE = re.compile(r"[,.;:!?]+|\b(?:dan|tapi|tetapi|namun|karena|sedangkan)\b")


def label(score: float) -> str:
    """positive (≥ 0.05), negative (≤ −0.05) or neutral."""
    if score >= POSITIVE_MIN:
        return "positive"
    if score <= NEGATIVE_MAX:
        return "negative"
    return "neutral"


def _normalise(total: float, alpha: float = 15.0) -> float:
    """VADER's squashing of a valence sum into [−1, 1]."""
    return total / math.sqrt(total * total + alpha)


def _id_valence(token: str) -> float | None:
    first, _, second = token.partition("-")
    if first == second:  # reduplication: "putus-putus", "cepat-cepat"
        token = first
    if token in ID_LEXICON:
        return ID_LEXICON[token]
    for suffix in ID_SUFFIXES:
        if token.endswith(suffix) and token[: -len(suffix)] in ID_LEXICON:
            return ID_LEXICON[token[: -len(suffix)]]
    return None


def score_indonesian(text: str) -> float:
    """Lexicon score of Indonesian text in [−1, 1], with negation and intensifiers.

    Negation reaches the next two words within the clause; intensifiers within three words
    before or two after strengthen (or, like "agak", soften) a word.
    """
    lowered = text.lower()
    for phrase, token in ID_PHRASES.items():
        lowered = lowered.replace(phrase, token)
    total = 0.0
    for clause in CLAUSE_RE.split(lowered):
        tokens = WORD_RE.findall(clause)
        for i, token in enumerate(tokens):
            valence = _id_valence(token)
            if not valence:
                continue
            near = tokens[max(0, i - 3) : i] + tokens[i + 1 : i + 3]
            boost = sum(ID_BOOSTERS.get(t, 0.0) for t in near)
            if boost:
                valence += math.copysign(boost, valence)
            if any(t in ID_NEGATIONS for t in tokens[max(0, i - NEGATION_REACH) : i]):
                valence *= NEGATION_SCALAR
            total += valence
    return _normalise(total) if total else 0.0


@lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    analyzer.lexicon.update(EN_LEXICON_CHANGES)
    return analyzer


def score_english(text: str) -> float:
    """VADER compound score of English text (with EN_LEXICON_CHANGES)."""
    return float(_vader().polarity_scores(text)["compound"])


# --- contact-centre speech ---------------------------------------------------------------------
#
# A line is split into sentences, and a sentence at a contrast ("but", "tapi") into clauses; each
# is scored on its own, and the line's score is the mean of its clear (non-zero) scores, each
# weighing twice the one before: the speaker's last clear sentiment weighs most. A clause is
# scored by the first of these that applies (docs/metrics.md#sentiment):
#   1. the formulas of service talk are taken out: apologies ("sorry to hear that", "mohon maaf
#      atas ketidaknyamanannya"), an agent's thanks ("thank you for calling") and greetings;
#      nothing left: neutral;
#   2. a remedy that names a bad thing taken away ("the charge has been reversed") is positive;
#   3. a complaint without negative words ("never showed up", "the third time I'm calling",
#      "udah tiga kali saya telepon") is negative;
#   4. good news phrased with negative words ("at no extra cost", "tanpa biaya", "no problem",
#      "tidak masalah") is positive, unless a negation comes just before it ("isn't fixed");
#   5. a fee the customer has to pay is negative;
#   6. a question is neutral;
#   7. otherwise the lexicon: VADER (English) or ID_LEXICON (Indonesian); a weak lexicon score
#      (|score| < LEXICON_FLOOR) is neutral.
# Cues score ±CUE_SCORE.

CUE_SCORE = 0.6
LEXICON_FLOOR = 0.2
# VADER's lexicon, changed where its everyday sense misleads in a service call: words that
# acknowledge or ask ("sure", "okay", "please", "like") carry no sentiment, "pretty" is mostly
# "pretty disappointed", "no" is mostly an answer.
EN_LEXICON_CHANGES = {
    word: 0.0
    for word in (
        "sure",
        "okay",
        "ok",
        "yes",
        "yeah",
        "yep",
        "please",
        "like",
        "help",
        "pretty",
        "no",
        "honestly",
        "well",
        "kind",
        "care",
        "want",
        "ready",
        "hold",
        "true",
        "hi",
        "hello",
        "welcome",
        "apologise",
        "apologize",
        "apology",
        "sorry",
        "damage",
        "complaint",
        "security",
        "clearly",
    )
} | {"patient": 1.5, "slow": -1.5, "faster": 1.0, "quicker": 1.0, "smoothly": 1.5}
SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")
CONTRAST = {
    "en": re.compile(r",?\s+\b(?:but|however|though|although|yet)\b\s*", re.I),
    "id": re.compile(r",?\s+\b(?:tapi|tetapi|namun|padahal|sayangnya)\b\s*", re.I),
}
FORMULAS = {
    "en": [
        (
            r"\b(?:i'?m|i am|we'?re|we are)\s+(?:so\s+|very\s+|"
            r"really\s+)?sorry\s+(?:to hear (?:that|about \w+)|about (?:that|this|the \w+)|"
            r"for (?:the|your) (?:wait|delay|inconvenience|trouble|confusion))"
        ),
        r"\b(?:i|we)\s+(?:do\s+)?apologi[sz]e\s+(?:for (?:the|your) \w+)?",
        r"\bsorry\b,?",
        (
            r"\bthank(?:s| you)\s+(?:(?:so|very) much\s+)?for\s+(?:calling|holding|waiting|"
            r"your patience|contacting us|that|confirming|the information)\b"
        ),
        r"\bgood\s+(?:morning|afternoon|evening)\b|\b(?:hello|hi)\b",
        r"\b(?:note|write|log|record)\s+(?:down\s+)?(?:your|the)\s+complaint\b",
        r"\bhow (?:can|may) i help(?: you)?(?: today)?\b",
        r"\bif i'?m not mistaken\b|\bto be (?:honest|fair)\b",
        r"\b(?:good\s*)?bye\b|\byou too\b|\bsame to you\b|\btake care\b",
        # a time that suits better (a preference, not praise)
        r"\b(?:the\s+)?(?:morning|afternoon|evening|weekend|\w+day)s?\s+(?:is|are|would be|"
        r"works?)\s+better\b",
    ],
    "id": [
        (
            r"\b(?:mohon\s+)?maaf(?:kan)?\b(?:\s+atas\s+(?:ketidaknyamanan\w*|"
            r"keterlambatan\w*|kendala\w*))?(?:\s+(?:menunggu|"
            r"sudah menunggu)(?:\s+lama)?)?(?:\s+ya)?,?"
        ),
        r"\bterima\s*kasih\s+(?:telah|sudah)\s+(?:menghubungi|menunggu|menelepon)\w*(?:\s+kami)?\b",
        r"\b(?:ada yang bisa (?:saya )?(?:di)?bantu)\b",
        r"\bselamat\s+(?:pagi|siang|sore|malam)\b",
        r"\bkalau\s+(?:nggak|ngga|gak|tidak|ga)\s+salah\b",
        r"\b(?:halaman|menu|pusat|layanan)\s+bantuan\b",  # a place's name, not help given
        # a time that suits better (a preference, not praise)
        r"\b(?:pagi|siang|sore|malam|besok|akhir pekan)\s+(?:lebih\s+)?(?:enak|cocok|baik|bisa)\b",
    ],
}
COMPLAINTS = {
    "en": [
        (
            r"\bnever\s+(?:showed|turned|came|arrived|received|got|called|heard|answered|"
            r"responded|fixed|worked)"
        ),
        r"\b(?:third|fourth|fifth|\w+th)\s+time\b",
        r"\b(?:two|three|four|five|several|many|\d+)\s+times\s+(?:already|now)?",
        (
            r"\bstill\s+(?:not|no|isn'?t|doesn'?t|don'?t|hasn'?t|haven'?t|won'?t|can'?t|"
            r"broken|waiting|down)"
        ),
        r"\b(?:not|isn'?t)\s+possible\b",
        r"\bbalance\s+(?:went|has gone|is going)\s+down\b",
        r"\bkeeps?\s+(?:going\s+down|dropping|disappearing|crashing|logging\s+me\s+out)\b",
        r"\bno\s*(?:one|body)\s+(?:came|called|showed|answered|helped|told|got back)",
        r"\bnobody\s+(?:came|called|showed|answered|helped|told|got back)",
        r"\bnothing\s+(?:happened|changed|works|worked)",
        r"\bkeep\s+(?:getting|being|repeating|calling|telling|waiting)",
        (
            r"\b(?:on hold|waiting|waited)\s+(?:for\s+)?(?:\w+\s+)?(?:minutes|hours|days|"
            r"weeks|all day|since)"
        ),
        r"\bbeen\s+(?:going on|waiting)\s+(?:for\s+)?",
        r"\bcharged\s+(?:twice|two times|again|double)",
        r"\b(?:went|gone)\s+up\s+again\b|\b(?:doubled|tripled)\b",
        r"\bwithout\s+(?:any\s+)?(?:explanation|notice|warning|reason)",
        r"\bstopped\s+(?:working|again)",
        r"\b(?:can'?t|cannot|couldn'?t)\s+(?:get|log|sign|connect|use|make|access)",
        r"\b(?:lost|wasted)\s+(?:a\s+)?(?:whole\s+)?(?:day|morning|afternoon|week|hours?|time)",
        r"\bfor nothing\b",
        r"\bnot what\b.*\btold\b",
        r"\b(?:a different|another)\s+answer\b",
        r"\bwhy\s+(?:do|does|did|is|are|should)\s+i\b",
        r"\b(?:cancel+ing|cancel)\s+my\b",
        r"\bspeak to (?:a|your) (?:manager|supervisor)\b",
        r"\bunacceptable\b|\bridiculous\b|\bfed up\b|\bsick of\b|\bhad enough\b",
        r"\b(?:expected|expect)\s+(?:\w+\s+){0,2}better\b",
        r"\b(?:it'?s|it has|that'?s|that was)\s+been\s+\w+\s+(?:days|weeks|months|hours)\b",
        r"\bhung up\b|\brude\b|\bignored\b|\b(?:nobody|no one)\b",
        r"\bnothing\s+(?:loads|works|happens|shows|comes|changes)\b|\bkeeps?\s+happening\b",
        r"\bhad to\s+(?:\w+\s+){0,2}(?:again|another)\b|\bhave to call again\b",
        r"\bgoes?\s+(?:black|blank|dead|off)\b|\bturns?\s+(?:itself\s+)?off\s+by\s+itself\b",
        r"\bwithout\s+(?:a\s+|any\s+)?(?:internet|power|phone|signal|service|heating|water)\b",
        r"\bnothing (?:more|else) (?:i|we) can do\b|\bdon'?t understand why\b",
        (
            r"\b(?:can'?t|cannot|couldn'?t|won'?t be able|unable|didn'?t|doesn'?t|don'?t|isn'?t|"
            r"wasn'?t|won'?t|never)\s+(?:\w+\s+)?(?:work|working|worked|happen|happened|help|use|"
            r"see|load|open|connect|deliver|arrive|arrived|fix|come|turn|reach|answer)"
        ),
        r"\b(?:heard|got|received)\s+nothing\b|\bno\s+(?:reply|response|answer|signal|service|"
        r"internet|connection|dial tone|one came)\b",
        r"\b(?:crash|crashes|crashed|freezes|froze|keeps? dropping)\b",
        r"\b(?:is|are|was|went)\s+down\b",
        # (not the fee; not "I work late")
        r"(?<!work\s)(?<!works\s)(?<!working\s)(?<!up\s)\blate\b(?!\s+(?:fee|charge|payment))",
        r"\b(?:overdue|suspended|disconnected|cut off|ended|losing|lost)\b",
        r"\b(?:after|since)\s+(?:it was\s+|being\s+)?(?:repaired|fixed|replaced)",
        r"\b(?:i'?m|i am)\s+afraid\b|\bunfortunately\b|\bsadly\b",
        r"\b(?:declined|failed|expired|out of stock|delayed|cancell?ed|beyond repair)\b",
        r"\b(?:crushed|cracked|broken|damaged|drops|logged me out)\b",
    ],
    "id": [
        r"\b(?:udah|sudah)\s+(?:dua|tiga|empat|lima|berkali-kali|\d+)\s+kali\b",
        r"\b(?:dua|tiga|empat|lima|\d+)\s+kali\b.*\b(?:telepon|telpon|jelaskan|bilang|datang)",
        r"\bdioper(?:-oper)?\b|\bdilempar(?:-lempar)?\b",
        (
            r"\b(?:nggak|ngga|gak|ga|tidak|tak|belum)\s+(?:ada\s+yang\s+)?(?:datang|sampai|"
            r"masuk|terima|telepon|nelpon|dihubungi|ditanggapi|dibalas|menghubungi)"
        ),
        r"\bbelum\s+(?:juga|sampai|masuk|bisa|lunas|beres|selesai|ada)\b",
        (
            r"\b(?:masih|tetap|tetep)\s+(?:belum|mati|rusak|error|eror|nggak|ngga|gak|tidak|"
            r"lemot|putus)"
        ),
        (
            r"\b(?:jelaskan|bilang|telepon|telpon|datang|ngomong)\s+(?:dua|tiga|empat|lima|"
            r"berkali-kali|\d+)\s+kali\b"
        ),
        r"\b(?:tidak|nggak|ngga|gak|ga)\s+bisa\b",
        r"\blama\s+(?:banget|sekali|bener)\b",
        r"\bkesel\b|\bketerlaluan\b|\bnyebelin\b",
        r"\bsampai\s+sekarang\b",
        r"\bbeda-beda\b",
        r"\b(?:berhenti|putus)\s+langganan\b",
        r"\bditagih\s+(?:dua\s+kali|lagi|double)",
        r"\bnaik\s+lagi\b|\btanpa\s+(?:penjelasan|kabar|pemberitahuan|konfirmasi)\b",
        (
            r"\bdari\s+(?:pagi|kemarin|tadi|minggu lalu)\b.*\b(?:nunggu|menunggu|tunggu|antre|"
            r"antrean)\b"
        ),
        r"\b(?:nunggu|menunggu|tunggu)\b.*\bdari\s+(?:pagi|kemarin|tadi)\b",
        (
            r"\b(?:sudah|udah)\s+(?:seminggu|sebulan|dua minggu|berhari-hari|\w+\s+minggu|"
            r"\w+\s+hari)\b"
        ),
        r"\bkepotong\b.*\b(?:nggak|tidak|gak|belum)\b",
        r"\bkok\b.*\b(?:terus|lagi|sih|belum)\b",
        r"\bngulang\b|\bmengulang\b.*\bterus\b",
        r"\bgara-gara\b",
        r"\bsayangnya\b",
        r"\b(?:ditolak|gagal|habis|kosong|tertunda|dibatalkan|rusak berat|diblokir)\b",
        # (a contract ending on a date is information)
        r"\bberakhir\b(?!\s+(?:pada\s+)?(?:tanggal|bulan|tahun|hari))",
        r"\btelat\b|\bmati\s+total\b|\b(?:setelah|habis|sesudah)\s+(?:diperbaiki|diganti|diservis)",
        r"\b(?:nggak|tidak|gak|ga|belum)\s+pernah\b|\bcapek\b|\bbosan\b",
        r"\b(?:nggak|ngga|tidak|gak|ga|belum)\s+ada\s+(?:balasan|kabar|respon|respons|tanggapan|"
        r"jawaban|yang|sinyal|hasil|perubahan)\b|\b(?:nggak|tidak|gak)\s+ada\W*$|\bsama sekali\b",
        r"\b(?:keluar|mati|restart|hang|error)\s+sendiri\b|\bselalu\s+(?:keluar|mati|error|hang|gagal)",
        r"\b(?:nggak|tidak|gak|ga)\s+(?:\w+\s+)?(?:membantu|jalan|berfungsi|nyala|masuk|dipakai)\b",
        r"\b(?:sedang|lagi)\s+(?:down|gangguan|error|eror)\b",
        r"\b(?:nutup|menutup|tutup)\s+telepon\w*\b|\bditutup\s+teleponnya\b|\bdicuekin\b",
        r"\bjadi\s+(?:hitam|mati|blank|error|eror|lemot|rusak)\b",
        r"\b(?:barang|paket|item|isi)\w*\s+(?:\w+\s+)?(?:nggak|tidak|gak)\s+ada\b",
        r"\bkenapa\b.*\b(?:terus|lagi|selalu)\b|\bbeda\s+(?:sama|dengan|dari)\b",
        r"\btidak ada (?:lagi )?yang bisa\b|\b(?:sudah\s+)?tidak\s+(?:di\w+|bisa|ada)\s+lagi\b",
        # a long wait given as the earliest there is; a bad surprise ("malah")
        r"\bpaling\s+cepat\b.*\b(?:hari|minggu|bulan)\b",
        r"\bbaru\s+(?:bisa|tersedia|ada)\b.*\b(?:hari|minggu|bulan)\s+lagi\b",
        r"\bbaru\s+bisa\s+(?:\w+\s+){0,3}(?:hari|minggu|bulan|besok|lusa)\b",
        r"\bmalah\b",
        r"\b(?:saya|aku)\s+(?:kira|pikir)\b.*\blebih\s+(?:bagus|baik)\b",
    ],
}
GOOD_NEWS = {
    "en": [
        r"\b(?:at\s+)?no\s+(?:extra\s+|additional\s+)?(?:cost|charge)\b",
        r"\bfree\s+of\s+charge\b|\bfor\s+free\b|\bfree\s+(?:month|upgrade)\b",
        r"\bno\s+problem\b|\bnot\s+a\s+problem\b",
        r"\bdon'?t\s+worry\b|\bno\s+need\s+to\s+worry\b",
        r"\bwon'?t\s+be\s+charged\b|\bnot\s+be\s+charged\b",
        r"\bno\s+more\s+(?:error|errors|problems|issues)\b",
        (
            r"\b(?:full\s+)?refund(?:ed)?\s+(?:it\s+)?(?:right away|today|now)\b|"
            r"\bgive you a (?:full )?refund\b|\brefund has been approved\b"
        ),
        r"\bsend you a replacement\b|\bon its way\b|\bwent through\b|\byou'?re all set\b",
        r"\b(?:waived|unlocked|resolved|sorted|fixed|approved|upgraded)\b",
        r"\bit'?s working\b|\bworking (?:again|now)\b",
        r"\bdiscount\b|\bi (?:really )?(?:like|love)\b",
        r"\bmanaged to\b|\bearlier than (?:planned|expected|scheduled)\b|\bahead of schedule\b",
        r"\bearlier\s+(?:slot|appointment|date|delivery)\b|\bwill (?:fix|repair|sort)\b",
        r"\b(?:credited|refunded|repaired|replaced|extended|restored|reconnected|reactivated|"
        r"compensat\w+|all done|nothing else you need to do)\b",
    ],
    "id": [
        r"\btanpa\s+(?:biaya|dikenakan\s+biaya|tambahan\s+biaya)\b|\bgratis\b",
        r"\btidak\s+(?:masalah|apa-apa)\b|\bnggak\s+(?:masalah|apa-apa)\b",
        r"\b(?:tidak|nggak|ga|gak)\s+(?:usah|perlu)\s+khawatir\b|\bjangan\s+khawatir\b",
        r"\btidak\s+akan\s+dikenakan\s+biaya\b",
        (
            r"\b(?:sudah|udah)\s+(?:beres|teratasi|normal|aktif|berhasil|stabil|nyala|lancar|"
            r"masuk|disetujui|hilang|bisa|hijau)\b"
        ),
        r"\bdalam\s+perjalanan\b|\bsaya\s+proses\b|\bsaya\s+hapus\b|\bdiskon\b",
        # ("perpanjangan", a renewal, is a name: only the verb is good news)
        r"\b(?:diperbaiki|memperbaiki\w*|perpanjang(?!an)\w*|kompensasi|dikembalikan|dipulihkan)\b",
        r"\blebih\s+(?:cepat|awal)\s+dari\s+(?:jadwal|rencana|perkiraan)\b|\bjadwal\s+lebih\s+awal\b",
        r"\btidak perlu (?:melakukan )?apa-apa\b",
        r"\b(?:nggak|ngga|tidak|gak|ga)\s+sampai\s+\w+\s+(?:menit|detik)\b",  # (that quick)
    ],
}
# good news that names a bad thing being taken away ("the charge has been reversed", "tagihannya
# sudah dibatalkan"), read before the complaints that would take it for bad news
REMEDIES = {
    "en": [
        r"\b(?:charge|fee|fine|penalty)s?\s+(?:has\s+been\s+|was\s+)?(?:reversed|removed|cancell?ed|"
        r"refunded|waived|dropped)",
        r"\bno\s+(?:late\s+|cancellation\s+)?(?:fee|penalty|charge)s?\b",
        r"\bsen[dt]\s+(?:you\s+)?a\s+(?:replacement|new one)\b|\bkeep the (?:\w+\s+)?one\b",
        r"\b(?:missing|damaged|broken|lost)\s+(?:\w+\s+)?(?:is|are|was|were|has been|have been|"
        r"will be)\s+(?:being\s+)?(?:sent|replaced|delivered|refunded|found)\b",
        r"\b(?:can|may)\s+(?:be\s+)?(?:safely\s+)?ignored?\b",  # (a notice sent in error)
        r"\b(?:reversed|removed|cancell?ed|refunded|waived|dropped)\s+(?:the|your|that|this)\s+"
        r"(?:\w+\s+){0,2}(?:charge|fee|fine|penalty)",
    ],
    "id": [
        r"\b(?:tagihan|biaya|denda)\w*(?:\s+\w+)?\s+(?:sudah\s+)?(?:saya\s+|kami\s+)?"
        r"(?:dibatalkan|batalkan|dihapus|hapus|digratiskan|gratiskan)",
        r"\b(?:tidak|nggak|tak)\s+(?:akan\s+)?(?:ada|dikenakan)\s+(?:biaya|denda)\b",
        r"\bpengganti\w*\s+(?:sudah\s+)?(?:kami\s+|saya\s+)?(?:di)?kirim\b",
        r"\b(?:tidak|nggak|gak)\s+(?:perlu|usah)\s+(?:di)?kembalikan\b",
    ],
}
# a bad thing feared that did not happen ("I thought I'd lost the deposit"): taken out of the
# clause, so that the relief beside it decides
FEARED = {
    "en": [
        r"\bthought\s+(?:i'?d|i had|i would|we'?d|it was|it had|it'?d)\s+(?:\w+\s+)?(?:lost|gone)"
        r"\b[^.,;!?]*"
    ],
    "id": [r"\b(?:saya|aku)\s+(?:kira|pikir)\b[^.,;!?]*\b(?:hilang|hangus|lenyap)\b[^.,;!?]*"],
}
# a fee or charge the customer has to pay, read after good news ("at no extra cost")
FEES = {
    "en": [
        r"\b(?:there'?s|there is|you'?ll pay|you will pay)\s+a\s+(?:\w+\s+)?(?:fee|charge)\b",
        r"\bfee of\b",
    ],
    "id": [r"\bada\s+biaya\b|\bdikenakan\s+(?:biaya|denda)\b"],
}
QUESTION_RE = re.compile(r"\?\s*$")
# an agent's bare "thank you" acknowledges an answer; it is not praise
AGENT_FORMULAS = {
    "en": [
        r"^\W*(?:thank you|thanks)(?: very much)?\b\W*",
        # a team's name, not support given or a fraud done
        r"\b(?:technical|tech|customer)\s+support\b",
        r"\b(?:fraud|complaints?|disputes?|claims?|collections?)\s+(?:team|department|desk)\b",
    ],
    "id": [
        r"^\W*(?:terima\s*kasih|makasih)(?: banyak)?\b\W*(?:ya\b\W*)?"
        r"(?:pak|bu|bapak|ibu|mas|mbak)?\b\W*",
        r"\b(?:bagian|tim|divisi)\s+(?:penanganan\s+)?(?:penipuan|keluhan|pengaduan|penagihan)\b",
    ],
}
# a good-news cue after a negation ("isn't fixed", "belum diperbaiki") is a complaint
NEGATED_BEFORE = {
    "en": re.compile(r"\b(?:not|no|never|n't|cannot|without)\W+(?:\w+\W+){0,2}$"),
    "id": re.compile(r"\b(?:tidak|nggak|ngga|gak|ga|belum|bukan|tanpa)\W+(?:\w+\W+){0,2}$"),
}


def _clauses(text: str, language: str) -> list[str]:
    found: list[str] = []
    for sentence in SENTENCE_RE.split(text.strip()):
        found.extend(c for c in CONTRAST[language].split(sentence) if c.strip())
    return found


def _matches(patterns: list[str], text: str) -> re.Match[str] | None:
    for pattern in patterns:
        m = re.search(pattern, text, re.I)
        if m:
            return m
    return None


def clause_score(clause: str, language: str, speaker: str | None = None) -> tuple[float, str]:
    """The sentiment of one clause and what decided it (docs/metrics.md#sentiment)."""
    text = clause.lower().replace("’", "'")
    formulas = FORMULAS[language] + (AGENT_FORMULAS[language] if speaker == Speaker.AGENT else [])
    said = text
    for formula in formulas:
        text = re.sub(formula, " ", text, flags=re.I)
    if not re.search(r"[^\W\d_]", text):
        return 0.0, "formula"
    remedy = _matches(REMEDIES[language], text)
    if remedy:
        return CUE_SCORE, remedy.group(0).strip()
    for fear in FEARED[language]:
        text = re.sub(fear, " ", text, flags=re.I)
    complaint = _matches(COMPLAINTS[language], text)
    if complaint:
        return -CUE_SCORE, complaint.group(0).strip()
    good = _matches(GOOD_NEWS[language], text)
    if good:
        if NEGATED_BEFORE[language].search(text[: good.start()]):
            return -CUE_SCORE, text[: good.end()].strip()
        return CUE_SCORE, good.group(0).strip()
    fee = _matches(FEES[language], text)
    if fee:
        return -CUE_SCORE, fee.group(0).strip()
    if QUESTION_RE.search(clause):
        return 0.0, "question"
    value = score_indonesian(text) if language == "id" else score_english(text)
    if abs(value) < LEXICON_FLOOR:
        # a formula and a name or two, nothing felt ("thank you for calling North Wind")
        named = text != said and len(WORD_RE.findall(text)) <= 3
        return 0.0, "formula" if named else "no sentiment words"
    return value, ", ".join(_sentiment_words(text, language))


def _sentiment_words(text: str, language: str) -> list[str]:
    """The words of TEXT that carry sentiment in the lexicon of LANGUAGE."""
    if language == "id":
        return [w for w in WORD_RE.findall(text) if _id_valence(w)]
    lexicon = _vader().lexicon
    return [w for w in re.findall(r"[a-z']+", text) if lexicon.get(w)]


def _clear_clauses(text: str, language: str | None, speaker: str | None) -> list[tuple[float, str]]:
    """(score, what decided it) of each clause of TEXT with a clear sentiment, in order
    (English unless LANGUAGE is "id")."""
    lang = "id" if language == "id" else "en"
    scored = (clause_score(c, lang, speaker) for c in _clauses(text, lang))
    return [(s, why) for s, why in scored if s]


def explain(text: str, language: str | None, speaker: str | None = None) -> list[str]:
    """What decided the sentiment of a line: the cue phrase or the sentiment words of each
    clause with a clear sentiment, in order."""
    return [why for _s, why in _clear_clauses(text, language, speaker)]


def _combined(clear: Sequence[float]) -> float:
    """A line's score from its clear clauses' scores: later clauses weigh more (the last word
    of "late, but fixed" is the one that stays)."""
    weights = [2.0**i for i in range(len(clear))]
    return round(sum(s * w for s, w in zip(clear, weights, strict=True)) / sum(weights), 4)


def score(text: str, language: str | None, speaker: str | None = None) -> float:
    """The rules' sentiment of a line of TEXT said by SPEAKER, in [−1, 1] (English unless
    LANGUAGE is "id"); 0 where they find none."""
    clear = [s for s, _why in _clear_clauses(text, language, speaker)]
    return _combined(clear) if clear else 0.0


def ruled(
    text: str, language: str | None, speaker: str | None = None
) -> tuple[float, list[str]] | None:
    """The rules' reading of a line where they are sure of it, with what decided it: a clause
    with a clear sentiment (a cue, or sentiment words), or nothing but service formulas (and
    no letters at all): neutral. None where they find nothing either way (the learned
    classifier's lines)."""
    lang = "id" if language == "id" else "en"
    scored = [clause_score(c, lang, speaker) for c in _clauses(text, lang)]
    clear = [(s, why) for s, why in scored if s]
    if clear:
        return _combined([s for s, _why in clear]), [why for _s, why in clear]
    if all(why == "formula" for _s, why in scored):
        return 0.0, []
    return None


def _weighted(items: Sequence[tuple[float, float]]) -> float | None:
    """Duration-weighted mean of (score, weight) pairs."""
    weight = sum(w for _s, w in items)
    return sum(s * w for s, w in items) / weight if weight > 0 else None


def _summary(value: float | None) -> dict[str, Any] | None:
    if value is None:
        return None
    value = round(value, 4)
    return {"score": value, "label": label(value), "emoji": EMOJI[label(value)]}


def conversation(segments: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Conversation sentiment from scored segments ({speaker, start_s, end_s, score}).

    Overall and per speaker: the duration-weighted mean of segment scores. Quarters split the
    span from the first segment's start to the last one's end; a segment counts in a quarter for
    the time it overlaps it. Trend: the customer's last quarter minus their first quarter.
    """

    def weights(speaker: str | None = None) -> list[tuple[float, float]]:
        return [
            (s["score"], max(s["end_s"] - s["start_s"], 1e-3))
            for s in segments
            if speaker is None or s["speaker"] == speaker
        ]

    result: dict[str, Any] = {
        "overall": _summary(_weighted(weights())),
        "agent": _summary(_weighted(weights("agent"))),
        "customer": _summary(_weighted(weights("customer"))),
        "quarters": [],
        "trend": None,
    }
    if not segments:
        return result
    first = min(s["start_s"] for s in segments)
    last = max(s["end_s"] for s in segments)
    size = (last - first) / 4
    customer_quarters = []
    for q in range(4):
        lo, hi = first + q * size, first + (q + 1) * size

        def overlap(s: dict[str, Any], lo: float = lo, hi: float = hi) -> float:
            return max(0.0, min(s["end_s"], hi) - max(s["start_s"], lo))

        def of(speaker: str | None, overlap: Any = overlap) -> float | None:
            """The mean score of SPEAKER's (or everyone's) talk in this quarter."""
            return _weighted(
                [
                    (s["score"], overlap(s))
                    for s in segments
                    if (speaker is None or s["speaker"] == speaker) and overlap(s) > 0
                ]
            )

        quarter = _summary(of(None)) or {"score": None, "label": None, "emoji": None}
        customer_score, agent_score = of(Speaker.CUSTOMER), of(Speaker.AGENT)
        customer_quarters.append(customer_score)
        result["quarters"].append(
            {
                "quarter": q + 1,
                "start_s": round(lo, 3),
                "end_s": round(hi, 3),
                **quarter,
                "customer_score": None if customer_score is None else round(customer_score, 4),
                "agent_score": None if agent_score is None else round(agent_score, 4),
            }
        )
    if customer_quarters[0] is not None and customer_quarters[-1] is not None:
        result["trend"] = round(customer_quarters[-1] - customer_quarters[0], 4)
    return result
