"""Truth files of the synthetic calls and the measures taken against them (used by the tests
and the benchmarks)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from callscope.measures.segments import Word
from callscope.speech import asr, attribution, media
from callscope.vocabulary import Speaker
from tests.support import write_wav

TRUTH_DIR = Path(__file__).resolve().parent / "data" / "calls"


def truth_turns(name: str) -> list[dict] | None:
    """The turns of a call's truth file (speaker, start, end, text), or None if it has none."""
    path = TRUTH_DIR / f"{name}.truth.json"
    return json.loads(path.read_text())["turns"] if path.exists() else None


def quiet_caller(source: Path, target: Path, db: float = -20.0) -> Path:
    """SOURCE (stereo, customer on the right) as a PBX records a call: the caller's side DB
    quieter, both sides at 8 kHz through G.711 mu-law."""
    import av

    audio, rate = media.decode(source, sample_rate=8000)
    audio[1] *= 10 ** (db / 20)
    samples = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    with av.open(str(target), "w", format="wav") as out:
        stream = out.add_stream("pcm_mulaw", rate=rate, layout="stereo")
        frame = av.AudioFrame.from_ndarray(samples.T.reshape(1, -1), format="s16", layout="stereo")
        frame.rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return target


def truth_words(turns: list[dict]) -> list[Word]:
    """Each turn's words, spread evenly over the turn (the truth gives turn times only)."""
    words = []
    for turn in turns:
        tokens = turn["text"].split()
        step = (turn["end"] - turn["start"]) / len(tokens)
        words += [
            Word(turn["speaker"], turn["start"] + i * step, turn["start"] + (i + 1) * step, token)
            for i, token in enumerate(tokens)
        ]
    return words


def doc_words(doc: dict) -> list[Word]:
    """The words of an analysis document's transcript, with their speakers."""
    return [
        Word(seg["speaker"], word["start_s"], word["end_s"], word["text"], word.get("confidence"))
        for seg in doc["transcript"]["segments"]
        for word in seg["words"]
    ]


def stereo_words(transcriber: asr.Transcriber, path: Path, language: str = "en") -> list[Word]:
    """The words of a stereo call (agent left, customer right) as processing attributes them:
    the speech layer alone, without a database."""
    audio, rate = media.decode(path, sample_rate=media.SAMPLE_RATE)
    roles = {0: Speaker.AGENT, 1: Speaker.CUSTOMER}
    return attribution.attribute(
        attribution.recognise(transcriber, audio, roles, language), audio, rate
    )


def speaker_accuracy(words: list[Word], turns: list[dict]) -> float | None:
    """Share of WORDS whose speaker is the speaker of the truth turn around them."""
    right = 0
    for word in words:
        mid = (word.start + word.end) / 2
        nearest = min(turns, key=lambda t: max(t["start"] - mid, mid - t["end"], 0.0))
        right += nearest["speaker"] == word.speaker
    return right / len(words) if words else None


def rttm_turns(path: Path) -> list[tuple[float, float, str]]:
    """Speaker turns (start, end, speaker) of an RTTM file."""
    turns = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "SPEAKER":
            start, length = float(fields[3]), float(fields[4])
            turns.append((start, start + length, fields[7]))
    return turns


def _frames(turns: list, n: int, speakers: list) -> np.ndarray:
    grid = np.zeros((n, len(speakers)), dtype=bool)
    for start, end, who in turns:
        grid[int(round(start * 100)) : int(round(end * 100)), speakers.index(who)] = True
    return grid


def diarization_error(reference: list, hypothesis: list, collar: float = 0.0) -> dict:
    """Diarization error rate on a 10 ms grid: missed speech, false alarm and speaker
    confusion over the reference speech, speakers mapped one-to-one for the least error;
    COLLAR seconds either side of each reference boundary are not scored (NIST's 0.25 s).
    Overlapped reference speech counts: a single-speaker output misses the second voice."""
    n = int(max(t[1] for t in [*reference, *hypothesis]) * 100) + 2
    ref_speakers = sorted({t[2] for t in reference})
    hyp_speakers = sorted({t[2] for t in hypothesis})
    ref, hyp = _frames(reference, n, ref_speakers), _frames(hypothesis, n, hyp_speakers)
    scored = np.ones(n, dtype=bool)
    for start, end, _who in reference:
        for edge in (start, end):
            scored[max(0, int((edge - collar) * 100)) : int((edge + collar) * 100)] = False
    ref, hyp = ref[scored], hyp[scored]
    rows, cols = linear_sum_assignment(-(ref.T.astype(int) @ hyp.astype(int)))
    mapped = np.zeros_like(ref)
    for r, c in zip(rows, cols, strict=True):
        mapped[:, r] = hyp[:, c]
    n_ref, n_hyp = ref.sum(axis=1), hyp.sum(axis=1)
    total = max(int(n_ref.sum()), 1)
    missed = int(np.maximum(n_ref - n_hyp, 0).sum())
    false_alarm = int(np.maximum(n_hyp - n_ref, 0).sum())
    confusion = int((np.minimum(n_ref, n_hyp) - (ref & mapped).sum(axis=1)).sum())
    return {
        "der": (missed + false_alarm + confusion) / total,
        "missed": missed / total,
        "false_alarm": false_alarm / total,
        "confusion": confusion / total,
    }


def mixdown(path: Path, folder: Path) -> Path:
    """A single-channel copy of a stereo recording (the channels averaged), as WAV in FOLDER."""
    audio, rate = media.decode(path)
    return write_wav(folder / f"{path.stem}_mono.wav", [audio.mean(axis=0)], rate)


def _token(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _matches(word: Word, others: list[Word], slack: float = 0.5) -> bool:
    return any(
        _token(o.text) == _token(word.text) and o.start - slack <= word.start <= o.end + slack
        for o in others
    )


def leaked(heard: list[Word], clean: list[Word]) -> list[Word]:
    """The words of HEARD (a call with crosstalk) that are the other side's: on a speaker whose
    clean channel has no such word then, the other speaker's has. CLEAN is the same call read
    without crosstalk, where each channel holds only its own speaker."""
    by = {s: [w for w in clean if w.speaker == s] for s in {w.speaker for w in clean}}
    return [
        w
        for w in heard
        if not _matches(w, by.get(w.speaker, []))
        and any(_matches(w, words) for s, words in by.items() if s != w.speaker)
    ]


def overlapped(words: list[Word]) -> list[Word]:
    """The words said while the other side was speaking a word too."""
    return [
        w
        for w in words
        if any(o.speaker != w.speaker and o.start < w.end and w.start < o.end for o in words)
    ]


def kept(heard: list[Word], clean: list[Word]) -> float | None:
    """The share of CLEAN's words that HEARD has a word for on the same speaker at the same
    time, whatever its spelling (a word heard, not lost; its text is WER's business)."""
    found = [
        w
        for w in clean
        if any(h.speaker == w.speaker and h.start < w.end and w.start < h.end for h in heard)
    ]
    return len(found) / len(clean) if clean else None


UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
NUMBER_WORDS = {w: str(i) for i, w in enumerate(UNITS)} | {
    w: str(20 + 10 * i) for i, w in enumerate(TENS)
}


def normalise(text: str) -> str:
    """Lower case, English number words as digits, digits one by one, no punctuation."""
    text = re.sub(r"[^\w\s']", " ", text.lower().replace("-", " "))
    text = " ".join(NUMBER_WORDS.get(word, word) for word in text.split())
    text = re.sub(r"\d", lambda m: f" {m.group(0)} ", text)
    return " ".join(text.split())


def edits(ref: list[str], hyp: list[str]) -> int:
    """Word substitutions, deletions and insertions turning REF into HYP (Levenshtein)."""
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, start=1):
        diagonal, row[0] = row[0], i
        for j, heard in enumerate(hyp, start=1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (word != heard))
    return row[-1]


def wer(refs: list[str], hyps: list[str]) -> float:
    """Word error rate over all pieces (speakers) together."""
    pairs = [(normalise(r).split(), normalise(h).split()) for r, h in zip(refs, hyps, strict=True)]
    return sum(edits(r, h) for r, h in pairs) / max(sum(len(r) for r, _h in pairs), 1)
