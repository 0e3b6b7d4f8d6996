"""The call summary (docs/metrics.md#summary): why the customer called, how it ended, its
highlights, the action items with their owner, and the questions each side asked. Extractive
and explainable: every item is a sentence of the transcript, with its speaker and times, chosen
by the phrases below (English and Indonesian). Pure functions over lines of words.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from callscope.measures.segments import SENTENCE_END, Segment
from callscope.vocabulary import Speaker

OTHER: dict[str, str] = {Speaker.AGENT: Speaker.CUSTOMER, Speaker.CUSTOMER: Speaker.AGENT}


@dataclass(frozen=True)
class Sentence:
    """One sentence of a line: its speaker, times and text."""

    speaker: str
    start: float
    end: float
    text: str
    whole: bool = False  # the sentence is all its speaker said in that line
    confidence: float | None = None  # the mean of its words' (None: not known)

    def item(self, **extra: Any) -> dict[str, Any]:
        found = {
            **extra,
            "speaker": self.speaker,
            "start_s": round(self.start, 3),
            "end_s": round(self.end, 3),
            "text": self.text,
        }
        if self.confidence is not None:
            found["confidence"] = round(self.confidence, 2)
        return found


def sentences(lines: Sequence[Segment]) -> list[Sentence]:
    """The sentences of LINES in time order. A line without any end punctuation (as 8 kHz
    recognition often gives) is cut where a question starts ("… my name is josh how can i
    help")."""
    found: list[Sentence] = []
    for line in lines:
        before = len(found)
        punctuated = any(SENTENCE_END.search(w.text) for w in line.words)
        run: list = []
        for i, word in enumerate(line.words):
            if run and not punctuated and len(run) >= 3 and not ASKING_ABOUT.search(run[-1].text):
                rest = " ".join(w.text for w in line.words[i : i + 6])
                if QUESTION_START.search(rest) and not NOT_A_QUESTION.search(rest):
                    found.append(_sentence(line.speaker, run))
                    run = []
            run.append(word)
            if SENTENCE_END.search(word.text):
                found.append(_sentence(line.speaker, run))
                run = []
        if run:
            found.append(_sentence(line.speaker, run))
        if len(found) == before + 1:
            found[-1] = dataclasses.replace(found[-1], whole=True)
    return sorted(found, key=lambda s: (s.start, s.end))


def _sentence(speaker: str, words: list) -> Sentence:
    known = [w.confidence for w in words if w.confidence is not None]
    return Sentence(
        speaker,
        words[0].start,
        words[-1].end,
        " ".join(w.text for w in words),
        confidence=sum(known) / len(known) if known else None,
    )


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


# --- questions ----------------------------------------------------------------------------
# a sentence ending with "?", or one that starts the way a question starts
ID_LEAD = (
    r"(?:(?:baik|oke|ok|ya|iya|nah|terus|lalu|jadi|trus),? )+"
    r"(?:(?:pak|bu|bapak|ibu|kak|mas|mbak),? )?"
)
QUESTION_START = _any(
    r"^(?:so |and |but |um,? |uh,? |okay,? |ok,? )?(?:what|when|where|which|who|whom|whose|why|"
    r"how)\b",
    r"^(?:so |and |but |okay,? )?(?:can|could|would|will|shall|should|may|do|does|did|is|are|"
    r"was|were|have|has|had|isn't|aren't|don't|doesn't|didn't|won't|wouldn't|couldn't)"
    r" (?:you|i|we|it|they|he|she|there|this|that|my|your|the)\b",
    r"^(?:apa|apakah|bagaimana|gimana|kapan|berapa|mengapa|kenapa|siapa|dimana|di mana|ke mana|"
    r"kemana|bisakah|bolehkah|adakah|sudahkah)\b",
    # (Indonesian requests for details, which recognition often leaves without "?"; after
    # "baik bu", "terus", as they often start)
    rf"^{ID_LEAD}(?:apa|apakah|bagaimana|gimana|kapan|berapa|mengapa|kenapa|siapa|boleh "
    r"(?:saya|minta|disebutkan|dibantu|tahu)|bisa (?:dibantu|disebutkan|minta|sebutkan))\b",
    r"^(?:kalau|kalo) .+ (?:bisa|boleh|gimana|bagaimana|berapa|kapan|ya)$",
    r"^(?:ada yang bisa (?:saya |kami )?(?:bantu|dibantu)|boleh (?:saya|minta|disebutkan|"
    r"dibantu|tahu)|bisa (?:dibantu|disebutkan|minta|sebutkan))\b",
)
# words after which a question is the reason, not one asked: "saya mau tanya kenapa …"
ASKING_ABOUT = re.compile(r"\b(?:tanya|nanya|menanyakan|ask|asking|wondering|know|tahu)$", re.I)
NOT_A_QUESTION = _any(r"^(?:how are you|what a)\b", r"^(?:how|what) about that\b")


def is_question(text: str) -> bool:
    """A question: it ends with "?" or starts as one does (not "how are you")."""
    stripped = text.strip()
    if NOT_A_QUESTION.search(stripped):
        return False
    return stripped.endswith("?") or bool(QUESTION_START.search(stripped))


MIN_QUESTION_WORDS = 3  # fewer is a fragment ("is the"), unless it is all the speaker said
# no question ends on these without a question mark: "is the", "what do for" are pieces
DANGLING = re.compile(
    r"\b(?:the|a|an|to|of|for|with|my|your|our|and|or|but|from|yang|di|ke|dari|"
    r"untuk|dan|atau|dengan)$",
    re.IGNORECASE,
)


def asked(sentence: Sentence) -> bool:
    """SENTENCE is a question someone asked, not a piece of one (as crosstalk and cut-off
    speech leave): three words or more, or a shorter one heard as a question ("Four hours?")
    or said as the speaker's whole line; none that ends on "the" or "for" unless heard as a
    question."""
    text = sentence.text.strip()
    heard = text.endswith("?")
    if not heard and DANGLING.search(text.rstrip(" ,.!")):
        return False
    if len(text.split()) < MIN_QUESTION_WORDS and not (heard or sentence.whole):
        return False
    return is_question(text)


# --- why they called ----------------------------------------------------------------------
# the agent's opening question; the customer's answer to it states the reason
HOW_CAN_I_HELP = _any(
    r"how (?:can|may|might) (?:i|we) (?:help|assist)",
    r"what can (?:i|we) do for you",
    r"how can i be of",
    r"(?:ada )?yang (?:bisa|dapat) (?:saya|kami) bantu",
    r"ada yang bisa dibantu",
    r"apa yang bisa (?:saya|kami) bantu",
)
REASON = _any(
    r"\bi(?:'m| am) calling\b",
    r"\bcalling (?:about|because|to|regarding)\b",
    r"\bi (?:want|wanted|need|needed|would like|'d like|d like) to\b",
    r"\bi'd like\b",
    r"\bi(?: have|'ve got| got) (?:a|an|some) (?:problem|issue|question|complaint|query)\b",
    r"\b(?:my|our) (?!name\b)[\w' -]{1,30}? (?:is|isn't|is not|was|wasn't|has|hasn't|doesn't|"
    r"does not|won't|will not|keeps|stopped|broke|arrived|never|still|can't|cannot)\b",
    r"\bi (?:ordered|bought|paid|was charged|received|got|lost|can't|cannot|haven't|have not|"
    r"didn't|did not|never)\b",
    r"\b(?:there's|there is) (?:a|an) (?:problem|issue|charge|error)\b",
    r"\b(?:saya|aku|sy) (?:mau|ingin|pengen|perlu|butuh|ingin|hendak) \w+",
    r"\bmau (?:tanya|komplain|lapor|melaporkan|mengajukan|minta|ganti|batalkan|bayar|pesan)\b",
    r"\b(?:saya|aku) (?:menelepon|telepon|nelpon|menghubungi)\b",
    r"\b(?:ada|punya) (?:masalah|kendala|keluhan|pertanyaan)\b",
    r"\b(?:kartu|paket|pesanan|tagihan|internet|rekening|akun|saldo|barang|aplikasi|"
    r"transaksi) (?:saya|aku|kami)\b",
    r"\b(?:saya|aku) (?:kehilangan|sudah bayar|belum (?:terima|menerima|dapat))\b",
)
# who is speaking, not why: "my name is Jack", "nama saya Rina" (the name: a word, and a
# second if it is capitalised) anywhere; "I'm Michelle", "ini dengan Budi" as a whole clause
NAMED = _any(
    r"\b(?:my name(?:'s| is)|nama saya(?: adalah)?|saya bernama) \w+(?: (?-i:[A-Z])\w+)?",
)
SELF = _any(
    r"^(?:(?:hi|hello|hey|yes|yeah|ok(?:ay)?|halo|ya|iya|selamat \w+)[,.!]? )*"
    r"(?:(?:this is|it's|i'm|i am|saya|ini) (?-i:[A-Z])\w+(?: (?-i:[A-Z])\w+)?|"
    r"(?:ini )?dengan (?:(?:bapak|ibu|pak|bu|mas|mbak|kak) )?\w+)$",
)
CLAUSE_BREAK = re.compile(r"(?<=[,.!?])\s+|\s+(?=(?:and|dan) )", re.IGNORECASE)
GREETING_ONLY = _any(
    r"^(?:hi|hello|hey|yes|yeah|yep|sure|ok|okay|good (?:morning|afternoon|evening)|thanks?|"
    r"thank you|halo|selamat (?:pagi|siang|sore|malam)|iya|ya|baik|oke|terima kasih)"
    r"\b[\w ,.'!-]{0,25}$",
)


# --- how it ended -------------------------------------------------------------------------
DONE = (
    r"processed|issued|sent|scheduled|booked|arranged|cancell?ed|canceled|blocked|updated|reset|"
    r"refunded|credited|applied|escalated|created|raised|submitted|placed|ordered|changed|fixed|"
    r"restored|resolved|reactivated|activated|added|removed|waived|opened|logged|approved|"
    r"shipped|confirmed"
)
OUTCOME_DONE = _any(  # what was done, or cannot be
    rf"\b(?:i|we)(?:'ve| have) (?:now |just |already )?(?:{DONE})\b",
    # any other thing done to the account ("I've upgraded …", "I've put in …"), not a look
    r"\b(?:i|we)(?:'ve| have) (?:now |just |already )?(?!(?:checked|looked|noticed|found|"
    r"pulled|seen|reviewed|verified|confirmed that|tried)\b)(?:\w+ed|put in|set up|made)\b",
    r"^(?:ok(?:ay)?,? )?(?:done|all done|all set)\b",
    # said in the past or passive: "I applied a credit", "a credit of $20 was applied"
    rf"\b(?:i|we) (?:just |now |already |also )?(?:{DONE})\b",
    rf"\b(?:was|were|got) (?:now |just |already |also )?(?:{DONE})\b",
    r"\b(?:i|we)(?:'ve| have)? (?:gone|went) ahead and\b",
    r"\b(?:refund|credit|payment|replacement|order|request|ticket|claim)\b[\w ]{0,20}? "
    r"(?:has|have) gone through\b",
    r"\b(?:is|are) now (?:for|on|set|booked|active|scheduled)\b",
    rf"\b(?:has|have) (?:now |just |already )?been (?:{DONE})\b",
    rf"\b(?:is|are|'s|'re) (?:now |all )?(?:{DONE}|set|done|sorted|on (?:its|the) way|set up)\b",
    r"\b(?:it's|it is|that's|that is|you're|you are) (?:all )?(?:set|done|on the way|sorted|"
    r"fixed|resolved|confirmed|active|working)\b",
    r"\b(?:i|we)(?:'m| am|'re| are) (?:not able|unable)\b",
    r"\b(?:i|we) (?:can't|cannot|won't be able)\b",
    r"\bsudah (?:saya|kami|kita)? ?(?:proses|blokir|kirim|kirimkan|ajukan|batalkan|ganti|buat|"
    r"buatkan|aktifkan|perbaiki|catat|teruskan|selesaikan|ubah|reset|kreditkan|kembalikan|"
    r"refund|jadwalkan|transfer|tambahkan|hapus|masukkan|input|buka)\w*",
    r"\bsudah (?:saya|kami|kita) (?!cek|periksa|lihat|tanyakan)\w+kan\b",
    r"\bsudah (?:di\w+|ter\w+|selesai|aktif|normal|beres)\b",
    r"\b(?:tidak|belum) (?:bisa|dapat) (?:kami|saya) \w+",
)
OUTCOME_NEXT = _any(  # what will happen: a fix time, a credit or refund to come, a follow-up
    r"\b(?:will|should) (?:be )?(?:arrive|get it to you|be delivered|be refunded|be credited|"
    r"be shipped|reach you|show up|appear|be back)\b",
    r"\b(?:will|should|'ll) be (?:back|up|working|restored|running|fixed|resolved|sorted|"
    r"reconnected|online)\b",
    r"\b(?:text|sms|e-?mail|message|confirmation|letter|call|technician|engineer|courier)\b"
    r"[\w' ]{0,30}? (?:will|'ll|should) (?:follow|come|arrive|be with you|reach you|call)\b",
    r"\byou(?:'ll| will| should) (?:also )?(?:receive|get|see|be (?:getting|receiving|"
    r"contacted|called|notified|refunded|credited|emailed|texted|sent))\b",
    r"\b(?:refund|credit|money|amount|funds?)\b[\w' ]{0,30}? (?:within|in|takes?|up to) "
    r"(?:\d+|one|two|three|four|five|six|seven|ten|fourteen|a few) (?:to \w+ )?"
    r"(?:business |working )?(?:days?|hours?|weeks?)\b",
    r"\bwill be (?:sent|issued|corrected|processed|fixed|replaced|posted|emailed|reviewed)\b",
    r"\b(?:akan|bakal) (?:dikirim|diproses|dikembalikan|dikreditkan|sampai|tiba|aktif|"
    r"diganti|ditransfer|dihubungi)\w*",
    r"\b(?:akan|bakal|sudah bisa) (?:kembali|normal|pulih|menyala|nyala|masuk|diperbaiki|"
    r"tersambung|terhubung)\w*",
    r"\b(?:anda|bapak|ibu|kakak|kak) (?:juga |nanti |langsung )?(?:akan|nanti) "
    r"(?:menerima|mendapat|mendapatkan|dihubungi|ditelepon|dikirimi)\w*",
    r"\b(?:nanti|akan) (?:ada )?(?:sms|email|notifikasi|konfirmasi|teknisi|petugas|kurir)\b",
    r"\b(?:teknisi|petugas|kurir|tim) (?:kami )?(?:akan|nanti|segera) (?:datang|ke|menghubungi|"
    r"mengirim|memperbaiki|mengecek)\w*",
    r"\b(?:paling lambat|maksimal|dalam (?:waktu )?(?:\d+|satu|dua|tiga|tujuh|empat belas) ?"
    r"(?:x ?24 )?(?:jam|hari))\b",
)


# --- action items -------------------------------------------------------------------------
# what someone will do after the call (not "let me check", which happens while it lasts)
LATER = (
    r"send|e-?mail|text|message|call(?: you)? back|call|ship|deliver|refund|credit|schedule|book|"
    r"arrange|follow up|escalate|process|cancel|replace|reset|submit|visit|come|bring|return|"
    r"pay|upload|restart|reboot|reply|contact|mail|post|forward|file|review|investigate|"
    r"update|notify|reach out|get back|issue|waive|open|install|activate|check back|try again|"
    r"keep an eye|confirm by|sign|fill|add|include|apply|put|drop|ask|bring"
)
PROMISE = _any(  # the speaker will do it
    rf"\b(?:i|we)(?:'ll| will| shall|'m going to| am going to|'re going to| are going to)"
    r" (?:also |personally |then |now |just |immediately |definitely |make sure to )?"
    rf"(?:{LATER})\b",
    rf"\b(?:let me|allow me to) (?:{LATER})\b(?! (?:you )?(?:through|to the))",
    r"\b(?:saya|kami|aku|kita) (?:akan|nanti|segera|langsung|bakal) ?(?:segera |langsung )?"
    r"(?:kirim|kirimkan|hubungi|telepon|proses|ajukan|ganti|jadwalkan|teruskan|cek ulang|"
    r"informasikan|kabari|kabarkan|kembalikan|transfer|bayar|datang|email|sms|balas|"
    r"bantu proses)\w*",
    r"\bnanti (?:saya|kami|aku) (?:kirim|hubungi|telepon|kabari|proses|informasikan)\w*",
    r"\b(?:i|we)(?:'ll| will) (?:do|handle|sort out) (?:that|it|this)\b",
    r"\b(?:besok|nanti|lusa|minggu depan|sore ini|malam ini|hari ini)(?: \w+)? "
    r"(?:saya|aku|kami) \w+",
    r"\bakan (?:segera )?(?:kami|saya) \w+",
)
DELIVERED = _any(  # the company will do it, said as what the customer gets
    r"\byou(?:'ll| will| should) (?:also )?(?:receive|get|see|be (?:receiving|getting|"
    r"contacted|called|notified|charged|refunded|credited|emailed|texted|sent))\b",
    r"\b(?:a|an|the|our) (?:\w+ ){0,2}(?:technician|engineer|courier|specialist|team|"
    r"supervisor|manager|handler|replacement|refund|email|text|sms|message|confirmation|link|"
    r"label|letter|agent|representative|someone|crew|driver|plumber|staff|assessor|adjuster|"
    r"inspector|installer|surveyor|advisor|adviser|consultant|nurse|doctor)\b[\w ]{0,20}? will\b",
    r"\b(?:anda|bapak|ibu|bapak/ibu|kakak|kak|mas|mbak) (?:juga |nanti |langsung )?(?:akan|nanti) "
    r"(?:menerima|mendapat|mendapatkan|dihubungi|ditelepon|dikirimi|dikirimkan)\w*",
    r"\bakan (?:segera |langsung )?di(?:kirim|proses|ganti|kembalikan|hubungi|transfer|"
    r"jadwalkan|tindaklanjuti|perbaiki|aktifkan|informasikan|kabarkan|beritahukan)\w*",
    r"\b(?:teknisi|kurir|petugas|tim kami|sms|email|kartu baru|dana|refund|pengembalian dana)"
    r"[\w ]{0,20}? (?:akan|nanti)\b",
    r"\bwill be (?:sent|delivered|shipped|refunded|credited|issued|posted|emailed|corrected|"
    r"picked up|replaced)\b",
)
ASKED_OF_OTHER = _any(  # the one spoken to must do it
    rf"\b(?:please|kindly) (?:\w+ )?(?:{LATER}|keep|make sure|go|log|let|take|unplug|plug|"
    r"check|wait|have|use|turn|hold on to|look out)\b",
    r"\b(?:please|kindly) (?!(?:hold|wait|bear|confirm|give|tell|spell|repeat|verify|provide|"
    r"read|let me|note)\b)[a-z]+ (?:up|back|off|in|out|down|over)\b",
    r"\byou(?:'ll| will)? (?:need|have) to\b",
    r"\byou (?:should|must) (?:\w+ )?(?:call|send|bring|return|restart|check|visit|log|"
    r"upload|pay|reply|contact|try|go|use|keep|wait)\b",
    # ("you can keep watching" allows, it asks nothing)
    r"\byou can (?:\w+ )?(?:call|send|bring|return|visit|upload|pay|reply|contact)\b",
    r"\bmake sure (?:you|to)\b",
    r"\b(?:silakan|silahkan|mohon|harap|tolong|jangan lupa) (?:bapak |ibu |kak |kakak |anda )?"
    r"(?!maaf\b)\w+",
    rf"^(?:can|could|would) you (?:please )?(?:ask|{LATER})\b",
    r"\b(?:bapak|ibu|anda|kakak) (?:perlu|harus|wajib|cukup|tinggal) (?:\w+)",
    # what the customer collects, bringing what: "bisa diambil di cabang dengan membawa KTP"
    r"\b(?:bisa|dapat) (?:diambil|dijemput|diunduh|ditukarkan)\b",
    r"\bdengan membawa\b",
)
# a sentence that starts with a verb: from the agent, an instruction to the customer (from the
# customer, a request the agent carries out while the call lasts: "just cancel it please")
INSTRUCTION = re.compile(
    r"^(?:(?:yes|yeah|ok|okay|so|then|and),? )?(?:just |simply |also )?"
    rf"(?:{LATER}|keep|bring|unplug|log in|dial|press|enter|download|top up)\b(?! you\b)",
    re.IGNORECASE,
)
IN_CALL = _any(  # said while it happens: not left to do after the call
    r"\b(?:one|a) moment\b",
    r"\bhold (?:on|the line)\b",
    r"\bbear with me\b",
    r"\b(?:mohon|harap|silakan|silahkan) (?:ditunggu|tunggu|menunggu) sebentar\b",
    r"\bsebentar\b",
    r"\b(?:please|can you|could you) (?:confirm|give me|tell me|spell|repeat|describe|verify|"
    r"provide|read|hold)\b",
    r"\b(?:mohon|boleh|bisa|tolong) (?:disebutkan|sebutkan|dibantu|dikonfirmasi|konfirmasi|"
    r"diulang|dieja|informasikan)\w*",
    r"\blet me (?:check|look|see|pull|verify|confirm|just|transfer|put)\b",
)


def action_owner(sentence: Sentence) -> str | None:
    """Who must act on SENTENCE after the call (agent or customer), or None if it asks
    nothing of anyone."""
    text = sentence.text
    if is_question(text) and not ASKED_OF_OTHER.search(text):
        return None
    if IN_CALL.search(text):
        return None
    if PROMISE.search(text) or DELIVERED.search(text):
        return sentence.speaker if PROMISE.search(text) else Speaker.AGENT
    if ASKED_OF_OTHER.search(text):
        return OTHER.get(sentence.speaker)
    if sentence.speaker == Speaker.AGENT and INSTRUCTION.search(text):
        return Speaker.CUSTOMER  # ("Just drop the box at any post office": the customer's)
    return None


# --- highlights ---------------------------------------------------------------------------
ESCALATION = _any(
    r"\b(?:speak|talk) (?:to|with) (?:a|your|the) (?:manager|supervisor|someone else)\b",
    r"\b(?:cancel|close) my (?:account|subscription|contract|service|plan|card)\b",
    r"\b(?:file|make|lodge) a (?:formal )?complaint\b",
    r"\b(?:lawyer|legal action|ombudsman|regulator|consumer protection)\b",
    r"\b(?:minta|mau) (?:bicara|ngomong) (?:dengan|sama) (?:atasan|supervisor|manajer|"
    r"pimpinan)\b",
    r"\b(?:tutup|batalkan|berhenti) (?:langganan|akun|rekening|kartu)\b",
    r"\b(?:lapor|laporkan|bawa) (?:ke )?(?:ojk|ylki|polisi|pengacara|jalur hukum)\b",
)
MONEY = _any(
    r"(?:\$|€|£|rp\.? ?)\s?\d",
    r"\b\d[\d.,]* (?:dollars?|euros?|pounds?|rupiah|ribu|juta)\b",
    r"\b(?:fee|charge|charged|price|cost|refund|credit|discount|biaya|harga|tagihan|potongan|"
    r"diskon|denda)\b",
)
STRONG = 0.5  # a customer sentence at least this negative (or positive) is a highlight


# where a sentence holds two things to do: "please call us back and we'll send a technician"
CLAUSES = re.compile(r",? (?=(?:and|then|but|dan|lalu|terus|tapi) (?:we|i|you|kami|saya)\b)", re.I)


def action_items(said: Sequence[Sentence]) -> list[dict[str, Any]]:
    """The action items of SAID: each clause that leaves something to do, with its owner
    (one item per sentence and owner)."""
    found = []
    for sentence in said:
        owners = []
        for clause in CLAUSES.split(sentence.text):
            owner = action_owner(Sentence(sentence.speaker, sentence.start, sentence.end, clause))
            if owner is not None and owner not in owners:
                owners.append(owner)
        found += [sentence.item(owner=owner) for owner in owners]
    return found


def summarise(
    lines: Sequence[Segment],
    scores: Sequence[float | None] = (),
) -> dict[str, Any]:
    """The summary of the call made of LINES (with their sentiment SCORES, if known)."""
    said = sentences(lines)
    line_scores = {id(line): score for line, score in zip(lines, scores, strict=False)}
    reason = _reason(said)
    return {
        "reason": reason,
        "outcome": _outcome(said, reason["end_s"] if reason else None),
        "highlights": _highlights(lines, said, line_scores),
        "action_items": action_items(said),
        "questions": [s.item() for s in said if asked(s)],
    }


def _reason(said: list[Sentence]) -> dict[str, Any] | None:
    """The customer's sentence that says why they called: the first with a reason phrase in
    the first half of the call, preferring the answer to "how can I help"; else the first
    customer sentence after that question that is more than a greeting."""
    if not said:
        return None
    half = said[0].start + (said[-1].end - said[0].start) / 2
    opened = next(
        (s.end for s in said if s.speaker != Speaker.CUSTOMER and HOW_CAN_I_HELP.search(s.text)),
        None,
    )
    customer = [
        s
        for s in said
        if s.speaker == Speaker.CUSTOMER and s.start <= half and _without_introduction(s.text)
    ]
    after = [s for s in customer if opened is None or s.start >= opened]
    for pool in (after, customer):
        stated = [s for s in pool if REASON.search(_without_introduction(s.text))]
        chosen = next((s for s in stated if not is_question(s.text)), None)
        if chosen or stated:
            return (chosen or stated[0]).item()
    first = next(
        (
            s
            for s in after
            if not GREETING_ONLY.search(rest := _without_introduction(s.text))
            and len(rest.split()) >= 4
        ),
        None,
    )
    return first.item() if first else None


def _without_introduction(text: str) -> str:
    """TEXT without the speaker's name ("Hi, I'm Michelle, my name is Jack." leaves nothing)."""
    clauses = [c.strip(" ,.!") for c in CLAUSE_BREAK.split(NAMED.sub("", text))]
    return " ".join(" ".join(c for c in clauses if c and not SELF.search(c)).split())


def _outcome(said: list[Sentence], reason_end: float | None) -> dict[str, Any] | None:
    """The last agent sentence after the customer said why they called (or in the second half
    of the call) that says what was done (or that it cannot be), else the last that says what
    will happen: a fix time, a credit or refund to come, a follow-up."""
    if not said:
        return None
    half = said[0].start + (said[-1].end - said[0].start) / 2
    since = half if reason_end is None else min(half, reason_end)
    late = [s for s in said if s.speaker == Speaker.AGENT and s.start >= since]
    for pattern in (OUTCOME_DONE, OUTCOME_NEXT):
        stated = [s for s in late if _states(pattern, s.text) and not is_question(s.text)]
        if stated:
            return stated[-1].item()
    return None


# "… when it is restored": what is done only on a condition has not been done
CONDITION = re.compile(
    r"\b(?:when|once|after|if|until|as soon as|begitu|setelah|kalau|jika|bila)\s+"
    r"(?:[^\s,]+\s+){0,3}$",
    re.IGNORECASE,
)


def _states(pattern: re.Pattern[str], text: str) -> bool:
    """TEXT says what PATTERN finds, and not as a condition."""
    return any(not CONDITION.search(text[: m.start()]) for m in pattern.finditer(text))


def _highlights(
    lines: Sequence[Segment], said: list[Sentence], scores: dict[int, float | None]
) -> list[dict[str, Any]]:
    """Escalations, money talk, and the customer's strongest complaint and praise."""
    found = [s.item(kind="escalation") for s in said if ESCALATION.search(s.text)]
    found += [s.item(kind="money") for s in said if MONEY.search(s.text)][:3]
    customer = [
        (score, line)
        for line in lines
        if line.speaker == Speaker.CUSTOMER and (score := scores.get(id(line))) is not None
    ]
    if customer:
        worst, line = min(customer, key=lambda pair: pair[0])
        if worst <= -STRONG:
            found.append(_line_item(line, "complaint"))
        best, line = max(customer, key=lambda pair: pair[0])
        if best >= STRONG:
            found.append(_line_item(line, "praise"))
    return sorted(found, key=lambda item: item["start_s"])


def _line_item(line: Segment, kind: str) -> dict[str, Any]:
    return _sentence(line.speaker, line.words).item(kind=kind)
