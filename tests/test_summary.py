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
    assert found["calls"] == 28
    assert found["reason"] >= 0.95 and found["outcome"] >= 0.95
    assert found["action_precision"] >= 0.95 and found["action_recall"] >= 0.95
    assert found["question_precision"] >= 0.95 and found["question_recall"] >= 0.95


def test_the_held_out_calls_stay_near_what_docs_report():
    # docs/benchmarks.md#call-summary, round 4: reason 100 %, outcome 83 %, action items 100 / 86 %,
    # questions 95 / 95 % (floors with a margin: a change that loses more fails here)
    found = totals([r for r in ROWS if r["round"] == LAST])
    assert LAST == 4 and found["calls"] == 6
    assert found["reason"] >= 0.8 and found["outcome"] >= 0.66
    assert found["action_precision"] >= 0.85 and found["action_recall"] >= 0.7
    assert found["question_recall"] >= 0.85


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
