"""The call summary: extraction measured on the labelled calls (development and held-out), the
rules on single sentences, and the summary stored with a call and served (or withheld)."""

from __future__ import annotations

import json

import pytest

from callscope.governance import policy
from callscope.measures import summary
from callscope.measures.segments import Segment, Word
from tests.summary_set import SET, held_out, lines_of, scored, totals
from tests.support import make_meta

ROWS = scored()
LAST = held_out(ROWS)


def test_the_development_calls_are_summarised_as_labelled():
    found = totals([r for r in ROWS if r["round"] < LAST])
    assert found["calls"] == 34
    assert found["reason"] >= 0.95 and found["outcome"] >= 0.95
    assert found["action_precision"] >= 0.95 and found["action_recall"] >= 0.95
    assert found["question_precision"] >= 0.95 and found["question_recall"] >= 0.95


def test_the_held_out_calls_stay_near_what_docs_report():
    # docs/benchmarks.md#call-summary, round 5 with the rules mended on it: reason 100 %, outcome
    # 100 %, action items 93 / 100 %, questions 97 / 100 % (floors with a margin: a change that
    # loses more fails here)
    found = totals([r for r in ROWS if r["round"] == LAST])
    assert LAST == 5 and found["calls"] == 8
    assert found["reason"] >= 0.85 and found["outcome"] >= 0.85
    assert found["action_precision"] >= 0.85 and found["action_recall"] >= 0.85
    assert found["question_precision"] >= 0.9 and found["question_recall"] >= 0.9


def sentence(speaker: str, text: str) -> summary.Sentence:
    return summary.Sentence(speaker, 0.0, 1.0, text)


@pytest.mark.parametrize(
    ("text", "asked"),
    [
        ("Can I have the account number please?", True),
        ("can you give me the account number", True),  # no punctuation (8 kHz recognition)
        ("Boleh saya minta nomor polis Bapak?", True),
        ("Apakah ada biaya untuk penggantian kartu", True),
        ("How are you doing today", False),
        ("I was charged twice.", False),
        ("Saya mau komplain.", False),
    ],
)
def test_questions(text, asked):
    assert summary.is_question(text) is asked


@pytest.mark.parametrize(
    ("speaker", "text", "owner"),
    [
        ("agent", "I'll send you an email confirming the refund today.", "agent"),
        ("agent", "You will receive a tracking number by email.", "agent"),
        ("agent", "Please call us back if the money has not arrived.", "customer"),
        ("customer", "I'll call the shop this afternoon.", "customer"),
        ("customer", "Tolong kirimkan bukti transfernya ke email saya.", "agent"),
        ("agent", "Saya akan kirimkan email bukti pengajuan hari ini.", "agent"),
        ("agent", "Silakan Kakak kirimkan alamat lengkap lewat WhatsApp.", "customer"),
        ("agent", "Let me check the warehouse.", None),  # done while the call lasts
        ("agent", "One moment please.", None),
        ("agent", "Mohon maaf atas ketidaknyamanannya, Bu.", None),  # an apology asks nothing
        ("agent", "Could you confirm your phone number for me?", None),
    ],
)
def test_action_items_and_their_owner(speaker, text, owner):
    assert summary.action_owner(sentence(speaker, text)) == owner


@pytest.mark.parametrize(
    ("said", "outcome"),
    [
        ("A credit of twenty dollars was applied to your account.", "credit"),
        ("I applied a credit of twenty dollars.", "credit"),
        ("I've gone ahead and waived the late fee.", "waived"),
        ("Your service will be back by six tonight.", "back by six"),
        ("It should be working again within two hours.", "working again"),
        ("A text message will follow with the details.", "text message"),
        ("You'll receive a confirmation email shortly.", "confirmation"),
        ("The refund takes five to seven business days to reach your card.", "refund"),
        ("Pulsanya sudah kami kembalikan ya Bu.", "kembalikan"),
        ("Internetnya akan kembali normal paling lambat jam enam sore.", "normal"),
        ("Nanti ada SMS konfirmasi ke nomor Bapak.", "SMS"),
        ("Teknisi kami akan datang besok pagi.", "Teknisi"),
    ],
)
def test_an_agent_stating_a_resolution_credit_fix_time_or_follow_up_gives_the_outcome(
    said, outcome
):
    call = lines_of(
        [
            ["agent", "Thanks for calling, how can I help?"],
            ["customer", "My internet has been down since this morning."],
            ["agent", "I'm sorry to hear that, let me check."],
            ["agent", said],
            ["customer", "Okay, thank you."],
        ]
    )
    found = summary.summarise(call)["outcome"]
    assert found is not None and outcome in found["text"]


def test_what_is_done_only_on_a_condition_is_not_the_outcome():
    call = lines_of(
        [
            ["customer", "My card was charged twice."],
            ["agent", "I've refunded the second charge."],
            ["agent", "You will get an email once the refund is processed."],
        ]
    )
    assert "refunded" in summary.summarise(call)["outcome"]["text"]


@pytest.mark.parametrize(
    "introduction",
    [
        "I'm Michelle, my name is Jack.",
        "Hi, this is Maria Lopez.",
        "hi my name is jack",
        "Selamat pagi, dengan Budi.",
        "Halo, nama saya Rina.",
        "Good morning.",
    ],
)
def test_why_they_called_is_never_a_greeting_or_a_name(introduction):
    call = lines_of(
        [
            ["agent", "Thank you for calling, my name is Daniel, how can I help you today?"],
            ["customer", introduction],
            ["customer", "Well the speaker I got last week arrived broken."],
            ["agent", "I'm sorry about that, could you give me the order number please?"],
            ["customer", "Sure, it is four eight one five two seven."],
            ["agent", "Thank you, I'll send a replacement today with express shipping."],
        ]
    )
    assert "arrived broken" in summary.summarise(call)["reason"]["text"]


def test_a_name_said_with_the_reason_leaves_the_reason():
    call = lines_of([["customer", "Hi, my name is Jack and my bill is wrong again."]])
    assert "bill is wrong" in summary.summarise(call)["reason"]["text"]


@pytest.mark.parametrize(
    ("lines", "questions"),
    [
        ([["customer", "is the"]], []),  # a piece left by crosstalk, though its whole line
        ([["agent", "what do for"]], []),
        ([["agent", "okay so is the"], ["agent", "let me see"]], []),
        ([["customer", "Four hours? That is far too long."]], ["Four hours?"]),
        ([["customer", "why"]], ["why"]),  # a short question that is all the line
        ([["agent", "Is the router on?"]], ["Is the router on?"]),
        ([["agent", "What is it for?"]], ["What is it for?"]),
    ],
)
def test_a_piece_of_a_question_is_no_question(lines, questions):
    found = summary.summarise(lines_of(lines))["questions"]
    assert [q["text"] for q in found] == questions


def test_sentences_keep_their_words_times():
    words = [
        Word("agent", 0.0, 0.4, "Hello."),
        Word("agent", 0.5, 0.9, "How"),
        Word("agent", 1.0, 1.2, "can"),
        Word("agent", 1.3, 1.5, "I"),
        Word("agent", 1.6, 2.0, "help?"),
    ]
    found = summary.sentences([Segment.of(words)])
    assert [(s.start, s.end, s.text) for s in found] == [
        (0.0, 0.4, "Hello."),
        (0.5, 2.0, "How can I help?"),
    ]


def test_each_item_carries_the_confidence_of_its_words():
    heard = [Word("customer", i * 0.4, i * 0.4 + 0.3, w, c) for i, (w, c) in enumerate(
        [("My", 0.9), ("bill", 0.3), ("is", 0.9), ("wrong", 0.2), ("again.", 0.7)]
    )]  # fmt: skip
    reason = summary.summarise([Segment.of(heard)])["reason"]
    assert reason["confidence"] == 0.6 and reason["text"] == "My bill is wrong again."
    unknown = [Word("customer", w.start, w.end, w.text) for w in heard]
    assert "confidence" not in summary.summarise([Segment.of(unknown)])["reason"]


def test_an_empty_call_has_an_empty_summary():
    assert summary.summarise([]) == {
        "reason": None,
        "outcome": None,
        "highlights": [],
        "action_items": [],
        "questions": [],
    }


def transcript_of(path) -> bytes:
    """A labelled call as our JSON transcript (times as the benchmark gives them)."""
    case = json.loads(path.read_text(encoding="utf-8"))
    lines = lines_of(case["turns"])
    return json.dumps(
        {
            "language": case["language"],
            "transcript": {
                "segments": [
                    {
                        "speaker": line.speaker,
                        "start_s": line.start,
                        "end_s": line.end,
                        "text": line.text,
                        "words": [
                            {"text": w.text, "start_s": w.start, "end_s": w.end} for w in line.words
                        ],
                    }
                    for line in lines
                ]
            },
        }
    ).encode()


def import_call(api, name: str) -> int:
    files = {
        "metadata": (None, json.dumps(make_meta(mono=True)), "application/json"),
        "transcript": ("t.json", transcript_of(SET / f"{name}.json"), "application/json"),
    }
    res = api.post("/api/v1/conversations/import", files=files)
    assert res.status_code == 201, res.text
    return res.json()["id"]


def test_an_imported_call_is_summarised_in_its_analysis_document(ctx, api):
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
    conversation_id = import_call(api, "id-tagihan-ganda")
    doc = api.get(f"/api/v1/conversations/{conversation_id}/analysis").json()
    found = doc["summary"]
    assert found["reason"]["speaker"] == "customer"
    assert "kepotong dua kali" in found["reason"]["text"]
    assert found["reason"]["start_s"] < found["reason"]["end_s"]
    assert {a["owner"] for a in found["action_items"]} == {"agent"}
    assert [q["speaker"] for q in found["questions"]] == ["agent", "agent", "customer", "agent"]
    assert {h["kind"] for h in found["highlights"]} >= {"money"}
    assert doc["categories"] == [] and doc["comments"] == []


def test_the_summary_is_withheld_with_the_transcript(ctx, api):
    conversation_id = import_call(api, "en-billing-dispute")
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", False)
    doc = api.get(f"/api/v1/conversations/{conversation_id}/analysis").json()
    assert doc["transcript"]["withheld"] and doc["summary"] is None
    assert "charged twice" not in json.dumps(doc)
