"""Words as a reader expects them: pieces the recogniser split off a word join back to it."""

from __future__ import annotations

import pytest

from callscope.speech.asr import RecognisedWord, join_pieces


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
    ],
)
def test_pieces_of_a_word_join_without_a_space(heard, read):
    assert " ".join(w.text for w in join_pieces(pieces(*heard))) == read


def test_a_joined_word_spans_its_pieces_with_their_lowest_confidence():
    [_a, word, _phone] = join_pieces(pieces("a", "high", "-end", "phone"))
    assert (word.text, word.start, word.end, word.confidence) == ("high-end", 0.5, 1.4, 0.7)
