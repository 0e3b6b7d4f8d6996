"""Words as a reader expects them: pieces the recogniser split off a word join back to it, how
sure the recogniser was is shown, and a channel map the wrong way round is noticed."""

from __future__ import annotations

import json
import re

import pytest

from callscope.db.models import Conversation
from callscope.governance import auth, policy
from callscope.governance.audit import Actor
from callscope.measures.segments import Word, build_lines, build_segments
from callscope.processing.ingest import Ingestor
from callscope.processing.results import save_results, session_spans, swap_speakers
from callscope.review import document
from callscope.speech import diarization
from callscope.speech.asr import RecognisedWord, apply_vocabulary, join_pieces
from tests.support import DEMO_CALLS, PASSWORD, make_meta, sign_in


def pieces(*texts: str) -> list[RecognisedWord]:
    return [RecognisedWord(t, i * 0.5, i * 0.5 + 0.4, 0.9 - i * 0.1) for i, t in enumerate(texts)]


@pytest.mark.parametrize(
    "heard,read",
    [
        (("a", "high", "-end", "phone"), "a high-end phone"),
        (("an", "in", "-house", "team"), "an in-house team"),
        (("at", "8", "a", ".m."), "at 8 a.m."),
        (("at", "3", ":30pm"), "at 3:30pm"),
        (("at", "3", ".30pm"), "at 3.30pm"),
        (("Mm", "-hmm"), "Mm-hmm"),
        (("e", "-commerce"), "e-commerce"),
        (("e-", "commerce", "sites"), "e-commerce sites"),
        (("S", "-I", "-T", "-I", "-L", "-L", "-E", "-S"), "S-I-T-I-L-L-E-S"),
        (("it", "'s", "fine"), "it's fine"),
        (("well", "-", "maybe"), "well - maybe"),  # a dash between words stays apart
        (("Of", "course,", "I'm", "sorry."), "Of course, I'm sorry."),
        (("e", ".g.", "this"), "e.g. this"),
        # an e-mail address's parts stay apart, as personal data detection reads them
        (("maria", ".lopez", "at", "example", ".com"), "maria .lopez at example .com"),
    ],
)
def test_pieces_of_a_word_join_without_a_space(heard, read):
    assert " ".join(w.text for w in join_pieces(pieces(*heard))) == read


def test_a_joined_word_spans_its_pieces_with_their_lowest_confidence():
    [_a, word, _phone] = join_pieces(pieces("a", "high", "-end", "phone"))
    assert (word.text, word.start, word.end, word.confidence) == ("high-end", 0.5, 1.4, 0.7)


def test_the_transcripts_confidence_is_in_the_document_the_overview_and_the_list(ctx, client):
    transcript = {
        "language": "en",
        "segments": [
            {
                "speaker": "agent",
                "start_s": 0.0,
                "end_s": 2.0,
                "words": [
                    {"text": "hello", "start_s": 0.0, "end_s": 0.5, "confidence": 0.9},
                    {"text": "there", "start_s": 0.6, "end_s": 1.0, "confidence": 0.2},
                ],
            }
        ],
    }
    ingestor = Ingestor(ctx)
    conv = ingestor.import_transcript(
        json.dumps(transcript).encode(), "json", ingestor.check_metadata(make_meta(mono=True))
    )
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
        auth.add_user(session, "boss", "admin", PASSWORD)
        doc = document.document(session, session.get_one(Conversation, conv.id))
    assert doc["transcript"]["confidence"] == 0.55
    sign_in(client, "boss")
    page = client.get(f"/conversations/{conv.id}").text
    assert re.search(r'id="confidence">55 % · many words are uncertain', page)
    assert '<td class="confidence">55 %</td>' in client.get("/conversations").text
    api = client.get(f"/api/v1/conversations/{conv.id}/analysis").json()
    assert api["transcript"]["confidence"] == 0.55
    assert api["recording"] is None  # (an import without audio: no recording to warn about)
    assert [w["confidence"] for w in api["transcript"]["segments"][0]["words"]] == [0.9, 0.2]


def said(speaker: str, start: float, text: str) -> list[Word]:
    return [
        Word(speaker, start + i * 0.4, start + i * 0.4 + 0.3, token, 0.9)
        for i, token in enumerate(text.split())
    ]


@pytest.mark.parametrize(
    "language,agent_line,customer_line",
    [
        ("en", "Thank you for calling, how can I help you?", "I'm calling about my bill."),
        (
            "id",
            "Terima kasih telah menghubungi kami, ada yang bisa saya bantu?",
            "Saya mau melaporkan gangguan, kartu saya hilang.",
        ),
    ],
)
def test_a_channel_map_the_wrong_way_round_is_noticed_and_a_swap_clears_it(
    ctx, client, language, agent_line, customer_line
):
    conv = Ingestor(ctx).ingest_file(DEMO_CALLS / "synthetic_en_stereo.wav", make_meta())
    # the "agent" channel greets like a customer, the "customer" channel like an agent
    words = said("customer", 0.0, agent_line) + said("agent", 5.0, customer_line)
    with ctx.db.session() as session:
        record = session.get_one(Conversation, conv.id)
        save_results(session, conv.id, words, language, session_spans(record), None)
        record.processing_status = "processed"
        auth.add_user(session, "sup", "admin", PASSWORD)
    with ctx.db.session() as session:
        doc = document.document(session, session.get_one(Conversation, conv.id))
    assert [w["code"] for w in doc["recording"]["warnings"]] == ["channels_reversed"]
    sign_in(client, "sup")
    assert 'id="reversed-warning"' in client.get(f"/conversations/{conv.id}").text
    with ctx.db.session() as session:
        swap_speakers(session, conv.id, Actor.cli())
    with ctx.db.session() as session:
        doc = document.document(session, session.get_one(Conversation, conv.id))
    assert doc["recording"]["warnings"] == []
    assert 'id="reversed-warning"' not in client.get(f"/conversations/{conv.id}").text


def test_a_call_the_right_way_round_carries_no_warning():
    words = said("agent", 0.0, "Thank you for calling, how can I help?") + said(
        "customer", 4.0, "I'd like to cancel my order"
    )
    assert not diarization.looks_reversed(words, "en")


def spoken(speaker: str, *timed: tuple[str, float]) -> list[Word]:
    """Words of SPEAKER, each (text, start) lasting 0.3 s."""
    return [Word(speaker, start, start + 0.3, text, 0.9) for text, start in timed]


def read(lines) -> list[tuple[str, str]]:
    return [(line.speaker, line.text) for line in lines]


def test_a_pause_inside_a_sentence_does_not_cut_the_line():
    words = spoken("agent", ("help", 0.0), ("you", 0.4), ("today?", 0.8), ("Of", 2.5))
    words += spoken("agent", ("course,", 4.0), ("I'm", 4.4), ("sorry.", 4.8))
    lines = build_lines(words)
    assert read(lines) == [("agent", "help you today?"), ("agent", "Of course, I'm sorry.")]
    assert len(build_segments(words)) == 3  # the metric segments still split at every 1 s gap


def test_a_line_ends_at_a_sentence_end_with_a_pause_or_a_long_pause():
    words = spoken("customer", ("It", 0.0), ("works.", 0.4), ("Thanks.", 0.8), ("Bye", 2.2))
    words += spoken("customer", ("now", 6.0))
    assert read(build_lines(words)) == [
        ("customer", "It works. Thanks."),
        ("customer", "Bye"),
        ("customer", "now"),
    ]


def test_the_other_speaker_in_the_pause_starts_a_new_line_after_a_clause():
    agent = spoken("agent", ("Right,", 0.0), ("please", 1.2), ("go", 1.6), ("ahead.", 2.0))
    agent += spoken("agent", ("Of", 3.0), ("course", 3.5))
    customer = spoken("customer", ("ok", 0.5), ("mm", 3.35))
    assert read(build_lines(agent + customer)) == [
        ("agent", "Right,"),
        ("customer", "ok"),
        ("agent", "please go ahead. Of course"),  # "mm" under "Of course" cuts nothing
        ("customer", "mm"),
    ]


def test_a_long_monologue_is_cut_at_a_sentence_end():
    texts = [f"w{i}" for i in range(44)]
    texts[41] += "."
    words = spoken("customer", *((t, i * 0.4) for i, t in enumerate(texts)))
    lines = build_lines(words)
    assert [len(line.words) for line in lines] == [42, 2]
    assert len(build_segments(words)) == 1


def heard(*texts: str) -> list[RecognisedWord]:
    return [RecognisedWord(t, i * 0.5, i * 0.5 + 0.4, 0.9 - i * 0.01) for i, t in enumerate(texts)]


@pytest.mark.parametrize(
    "words,read",
    [
        (("calling", "North", "Wind", "Electronics."), "calling Northwind Electronics."),
        (("calling", "northwind", "electronics"), "calling Northwind Electronics"),
        (("di", "Bank", "Sejahtra,", "ya"), "di Bank Sejahtera, ya"),
        (("the", "sound", "wave", "X2"), "the SoundWave X2"),
        (("a", "north", "window"), "a north window"),  # not close enough
        (("Bank", "sentral"), "Bank sentral"),
    ],
)
def test_a_custom_vocabulary_writes_close_spellings_as_the_terms(words, read):
    terms = ["Northwind Electronics", "Bank Sejahtera", "SoundWave X2", "Rin"]
    assert " ".join(w.text for w in apply_vocabulary(heard(*words), terms)) == read


def test_a_vocabulary_term_takes_the_times_of_the_words_it_replaces_and_invents_none():
    words = heard("calling", "North", "Wind", "Electronics")
    fixed = apply_vocabulary(words, ["Northwind Electronics"])
    assert [(w.text, w.start, w.end, w.confidence) for w in fixed] == [
        ("calling", 0.0, 0.4, 0.9),
        ("Northwind", 0.5, 1.13, 0.87),  # 9 of the 20 letters of the words' 1.4 s
        ("Electronics", 1.13, 1.9, 0.87),
    ]
    assert apply_vocabulary([], ["Northwind Electronics"]) == []
    assert apply_vocabulary(words, []) == words
