"""Speaker separation for single-channel recordings, and who of the speakers is the agent.

Voices are told apart with Resemblyzer's speaker encoder (its pretrained weights ship inside the
PyPI wheel): a 256-value voice embedding for each 1.6 s window of speech, windows clustered into
speakers (two, or more when a third voice is clearly there — a transfer brings a second agent),
each 10 ms frame labelled by its nearest window, each word by the frames it covers.
"""

from __future__ import annotations

import bisect
import itertools
import os
import re
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from callscope.measures.segments import Word
from callscope.speech.media import SAMPLE_RATE
from callscope.vocabulary import Speaker

FRAME_S = 0.01  # one mel frame
WINDOW_FRAMES = 160  # 1.6 s, the encoder's partial utterance
STEP_FRAMES = 40  # a window every 0.4 s
BATCH = 64  # windows through the encoder at once
MAX_SPEAKERS = 4
# A cluster is split into two speakers only when its halves' mean voices are less alike than
# this (the same voice across a call stays above it) and the smaller half has ≥ 10 s of windows
# and ≥ 8 % of all of them.
SPLIT_SIMILARITY = 0.8
MIN_SPLIT_WINDOWS = 25
MIN_SPEAKER_SHARE = 0.08
SHORT_SPAN_S = 6.0  # speech between pauses up to this long is taken as one speaker's
TARGET_DBFS = -30.0

_lock = threading.Lock()
_encoder = None


def _load_encoder():
    """Resemblyzer's voice encoder, loaded once per process."""
    global _encoder
    with _lock:
        if _encoder is None:
            import torch

            # (its imports use a deprecated SciPy name and setuptools' deprecated pkg_resources)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from resemblyzer import VoiceEncoder

            torch.set_num_threads(max(1, os.cpu_count() or 1))
            _encoder = VoiceEncoder("cpu", verbose=False)
            _encoder.eval()
        return _encoder


def speech_spans(audio: np.ndarray) -> list[tuple[float, float]]:
    """Stretches of speech (seconds) by Silero VAD."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return [
        (s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE)
        for s in get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=300))
    ]


def warm_up() -> None:
    """Load what separating speakers and learning voices need (the voice activity detector,
    the speaker encoder, the feature code's compiled parts, the clustering) and run each once."""
    silence = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)
    speech_spans(silence)
    embed_windows(silence, [(0.0, 2.0)])
    cluster(np.random.default_rng(0).normal(size=(8, 256)).astype(np.float32))


HOP = SAMPLE_RATE // 100  # samples per mel frame
N_FFT = 400


def _mel_frames(audio: np.ndarray) -> np.ndarray:
    """The encoder's input: 40-band mel power frames every 10 ms (frames × 40), frame i centred
    on sample i × HOP of AUDIO (zeros beyond its ends)."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=audio.astype(np.float32),
        sr=SAMPLE_RATE,
        n_fft=N_FFT,
        hop_length=HOP,
        n_mels=40,
        center=False,
    )
    return mel.astype(np.float32).T


def _windows(audio: np.ndarray, starts: Sequence[int]) -> np.ndarray:
    """The mel frames of the windows starting at frames STARTS (windows × frames × 40), with
    AUDIO brought to the encoder's level: over the whole of it when the windows cover most of
    it, else window by window (learning a voice from a capped sample of a long call)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    gain = 10 ** (TARGET_DBFS / 20) / rms if rms > 0 else 1.0
    padded = np.pad(audio * gain, N_FFT // 2)
    if len(starts) * WINDOW_FRAMES < len(audio) // HOP // 2:
        span = (WINDOW_FRAMES - 1) * HOP + N_FFT
        return np.stack([_mel_frames(padded[s * HOP : s * HOP + span]) for s in starts])
    frames = _mel_frames(padded)
    return np.stack([frames[s : s + WINDOW_FRAMES] for s in starts])


def embed_windows(
    audio: np.ndarray, spans: Sequence[tuple[float, float]], limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Window centres (seconds) and unit voice embeddings of windows over the speech (at most
    LIMIT windows, spread evenly, when given)."""
    import torch

    n = len(audio) // HOP + 1
    starts: list[int] = []
    for start, end in spans:
        a, b = int(start / FRAME_S), int(end / FRAME_S)
        if b - a <= WINDOW_FRAMES:
            starts.append(max(0, min((a + b - WINDOW_FRAMES) // 2, n - WINDOW_FRAMES)))
        else:
            starts.extend(range(a, b - WINDOW_FRAMES + 1, STEP_FRAMES))
            if (b - WINDOW_FRAMES - a) % STEP_FRAMES:
                starts.append(b - WINDOW_FRAMES)
    starts = sorted(set(s for s in starts if s >= 0 and s + WINDOW_FRAMES <= n))
    if limit is not None and len(starts) > limit:
        starts = [starts[i] for i in np.linspace(0, len(starts) - 1, limit).astype(int)]
    if not starts:
        return np.zeros(0), np.zeros((0, 256), dtype=np.float32)
    windows = _windows(audio, starts)
    encoder = _load_encoder()
    out = []
    with torch.inference_mode():
        for i in range(0, len(starts), BATCH):
            out.append(encoder(torch.from_numpy(windows[i : i + BATCH])).numpy())
    centres = (np.array(starts) + WINDOW_FRAMES / 2) * FRAME_S
    return centres, np.concatenate(out)


def _kmeans(emb: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=10, random_state=0).fit_predict(emb)


def cluster(emb: np.ndarray, max_speakers: int = MAX_SPEAKERS) -> np.ndarray:
    """Speaker label per window: two speakers, and a cluster split again while its halves are
    clearly different voices with enough speech each (a transferred call's second agent)."""
    if len(emb) < 4:
        return np.zeros(len(emb), dtype=int)
    labels = _kmeans(emb, 2)
    while len(set(labels.tolist())) < max_speakers:
        split = _best_split(emb, labels)
        if split is None:
            break
        j, halves = split
        labels[np.flatnonzero(labels == j)[halves == 1]] = labels.max() + 1
    return _relabel(labels)


def _best_split(emb: np.ndarray, labels: np.ndarray) -> tuple[int, np.ndarray] | None:
    """The cluster whose two halves differ most, if they pass as two voices."""
    best = None
    for j in set(labels.tolist()):
        members = emb[labels == j]
        if len(members) < 2 * MIN_SPLIT_WINDOWS:
            continue
        halves = _kmeans(members, 2)
        sizes = np.bincount(halves, minlength=2)
        if sizes.min() < max(MIN_SPLIT_WINDOWS, MIN_SPEAKER_SHARE * len(emb)):
            continue
        sim = float(_unit(members[halves == 0].mean(0)) @ _unit(members[halves == 1].mean(0)))
        if sim < SPLIT_SIMILARITY and (best is None or sim < best[0]):
            best = (sim, j, halves)
    return None if best is None else (best[1], best[2])


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Number speakers 0, 1, … in order of first appearance."""
    order: dict[int, int] = {}
    for x in labels.tolist():
        order.setdefault(x, len(order))
    return np.array([order[x] for x in labels.tolist()], dtype=int)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) or 1.0)


def _nearest_labels(centres: np.ndarray, labels: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The label of the window centred nearest each of TIMES."""
    i = np.clip(np.searchsorted(centres, times), 1, len(centres) - 1)
    left_nearer = (times - centres[i - 1]) <= (centres[i] - times)
    return labels[np.where(left_nearer, i - 1, i)]


def _smooth(labels: np.ndarray) -> np.ndarray:
    """A single window between two of another speaker is taken as that speaker."""
    out = labels.copy()
    for i in range(1, len(labels) - 1):
        if labels[i - 1] == labels[i + 1] != labels[i]:
            out[i] = labels[i - 1]
    return out


def _one_voice_per_short_span(
    spans: Sequence[tuple[float, float]],
    centres: np.ndarray,
    emb: np.ndarray,
    labels: np.ndarray,
    voices: dict[int, np.ndarray],
) -> None:
    """A stretch of speech between pauses that is short is one speaker's: its windows take the
    speaker whose voice is nearest their mean (a window alone straddles the turn before)."""
    ids = sorted(voices)
    matrix = np.array([voices[j] for j in ids])
    for start, end in spans:
        if end - start > SHORT_SPAN_S:
            continue
        inside = np.flatnonzero((centres >= start - FRAME_S) & (centres <= end + FRAME_S))
        if len(inside):
            labels[inside] = ids[int(np.argmax(matrix @ _unit(emb[inside].mean(axis=0))))]


@dataclass(frozen=True)
class Diarization:
    """Who speaks when: speaker turns over the speech, and each speaker's mean voice."""

    turns: list[tuple[float, float, int]]  # (start s, end s, speaker), in time order, speech only
    voices: dict[int, np.ndarray]  # speaker → unit mean embedding

    def speaker_of(self, start: float, end: float) -> int | None:
        """The speaker with most of the time from START to END (the nearest turn's when no
        turn overlaps it)."""
        if not self.turns:
            return None
        starts = [t[0] for t in self.turns]  # (turns do not overlap)
        i = bisect.bisect_left(starts, end)
        share: dict[int, float] = {}
        for t0, t1, who in reversed(self.turns[max(0, i - 50) : i]):
            if t1 <= start:
                break
            share[who] = share.get(who, 0.0) + min(t1, end) - max(t0, start)
        if share:
            return max(share, key=lambda who: share[who])
        near = self.turns[max(0, i - 1) : i + 1]
        mid = (start + end) / 2
        return min(near, key=lambda t: min(abs(t[0] - mid), abs(t[1] - mid)))[2]


def diarize(audio: np.ndarray, max_speakers: int = MAX_SPEAKERS) -> Diarization:
    """Separate the speakers of 16 kHz mono AUDIO."""
    spans = speech_spans(audio)
    centres, emb = embed_windows(audio, spans)
    if len(centres) == 0:
        return Diarization([], {})
    labels = _smooth(cluster(emb, max_speakers))
    voices = {int(j): _unit(emb[labels == j].mean(axis=0)) for j in set(labels.tolist())}
    _one_voice_per_short_span(spans, centres, emb, labels, voices)
    turns: list[tuple[float, float, int]] = []
    for start, end in spans:
        times = np.arange(start, end, FRAME_S)
        if len(centres) == 1:
            frame_labels = np.full(len(times), labels[0])
        else:
            frame_labels = _nearest_labels(centres, labels, times + FRAME_S / 2)
        cuts = np.flatnonzero(np.diff(frame_labels)) + 1
        bounds = [0, *cuts.tolist(), len(times)]
        for a, b in itertools.pairwise(bounds):
            turns.append(
                (float(times[a]), float(min(times[b - 1] + FRAME_S, end)), int(frame_labels[a]))
            )
    return Diarization(turns, voices)


# --- Roles: which speaker is the agent ------------------------------------------------------

VOICEPRINT_MATCH = 0.8  # cosine similarity from which a speaker's voice is a known agent's
VOICEPRINT_MARGIN = 0.04  # … and by how much it must beat every other speaker
VOICEPRINT_CAP = 500  # windows an agent's voiceprint averages at most, so it follows changes
FIRST_SPEAKER_WEIGHT = 0.5
REVERSED_MARGIN = 2.0  # phrase points each side must be the wrong way to warn

# Things an agent says (weight 2: scripted openings; 1: service phrasing) and a customer says.
AGENT_PHRASES = {
    "en": [
        (2, r"thank(s| you) for (calling|contacting|holding|your patience)"),
        (2, r"my name is \w+,? (and )?(how|what) (can|may) i"),
        (2, r"how (can|may) i (help|assist)"),
        (2, r"is there anything else (i can|we can)"),
        (1, r"(can|could|may) i (have|get|ask|confirm|verify) (your|the)"),
        (1, r"let me (check|look|see|pull|transfer)"),
        (1, r"would you like"),
        (1, r"(one|a) moment"),
        (1, r"bear with me"),
        (1, r"i('m| am) sorry to hear"),
        (1, r"have a (great|nice|good|wonderful) (day|evening|afternoon)"),
        (1, r"\b(certainly|absolutely|terrific)\b"),
    ],
    "id": [
        (2, r"terima kasih (telah|sudah) menghubungi"),
        (2, r"ada yang bisa (saya |kami )?(bantu|dibantu)"),
        (2, r"dengan (saya )?\w+,? ada yang"),
        (2, r"apakah ada (lagi )?yang bisa"),
        (1, r"mohon (ditunggu|menunggu|maaf|kesediaannya)"),
        (1, r"boleh (saya|dibantu)"),
        (1, r"\b(bapak|ibu)\b"),
        (1, r"saya (akan|bantu) (cek|periksa|blokir|proses)"),
    ],
}
CUSTOMER_PHRASES = {
    "en": [
        (2, r"i('d| would) like to (buy|order|cancel|return|report|know|change)"),
        (2, r"i('m| am) calling (about|because|to|regarding)"),
        (2, r"i (have|had|got) a (problem|question|issue)"),
        (1, r"i (want|need|ordered|bought|was wondering)"),
        (1, r"(can|could) you (help|tell|check) me"),
        (1, r"\bmy (order|bill|internet|phone|account|card|package|speaker|car)\b"),
        (1, r"thank you (very|so) much"),
    ],
    "id": [
        (2, r"saya (mau|ingin|perlu) (melaporkan|menanyakan|komplain|membatalkan|bertanya)"),
        (1, r"saya (mau|ingin|perlu)"),
        (1, r"(kartu|akun|pesanan|rekening|tagihan) saya"),
        (1, r"tolong (bantu|dibantu)|bisa (bantu|bantuin|dibantu) saya"),
        (1, r"\b(mbak|mas)\b"),
    ],
}


@dataclass(frozen=True)
class Roles:
    """Which diarized speakers are agents, how that was decided and how sure it is."""

    agents: frozenset[int]
    method: str  # "voiceprint" | "phrases" | "first_speaker" | "manual"
    confidence: float  # 0..1
    speakers: int

    def role(self, speaker: int | None) -> str:
        return Speaker.AGENT if speaker in self.agents else Speaker.CUSTOMER

    def as_dict(self) -> dict:
        return {
            "source": "diarization",
            "speakers": self.speakers,
            "method": self.method,
            "confidence": round(self.confidence, 2),
        }


def normalised(text: str) -> str:
    """TEXT as the phrase patterns read it: lower case, words and apostrophes only."""
    return " ".join(re.sub(r"[^\w' ]", " ", text.lower()).split())


def phrase_score(text: str, language: str) -> float:
    """How much TEXT sounds like an agent (positive) rather than a customer (negative)."""
    text = normalised(text)
    agent = sum(
        w for w, p in AGENT_PHRASES.get(language, AGENT_PHRASES["en"]) if re.search(p, text)
    )
    customer = sum(
        w for w, p in CUSTOMER_PHRASES.get(language, CUSTOMER_PHRASES["en"]) if re.search(p, text)
    )
    return float(agent - customer)


def looks_reversed(words: Sequence[Word], language: str) -> bool:
    """Whether the agent's words sound like a customer's and the customer's like an agent's
    (a channel map the wrong way round): each side's phrases point clearly the other way."""
    said = {
        role: " ".join(w.text for w in words if w.speaker == role)
        for role in (Speaker.AGENT, Speaker.CUSTOMER)
    }
    return (
        phrase_score(said[Speaker.AGENT], language) <= -REVERSED_MARGIN
        and phrase_score(said[Speaker.CUSTOMER], language) >= REVERSED_MARGIN
    )


def assign_roles(
    dz: Diarization,
    texts: Mapping[int, str],
    first_speaker: int | None,
    language: str,
    voiceprints: Sequence[np.ndarray] = (),
) -> Roles:
    """Decide which speakers are agents: by the voiceprints of the call's agents where one
    matches a speaker clearly, otherwise by what each speaker says and who speaks first."""
    speakers = sorted(dz.voices)
    if len(speakers) < 2:
        return Roles(frozenset(speakers), "first_speaker", 0.5, len(speakers))
    if voiceprints:
        best = {
            s: max(float(dz.voices[s] @ _unit(np.asarray(v))) for v in voiceprints)
            for s in speakers
        }
        ranked = sorted(speakers, key=lambda s: best[s], reverse=True)
        top, runner_up = best[ranked[0]], best[ranked[1]]
        if top >= VOICEPRINT_MATCH and top - runner_up >= VOICEPRINT_MARGIN:
            agents = {s for s in speakers if best[s] >= VOICEPRINT_MATCH}
            agents = agents if len(agents) < len(speakers) else {ranked[0]}
            confidence = min(1.0, 0.5 + 5 * (top - runner_up))
            return Roles(frozenset(agents), "voiceprint", confidence, len(speakers))
    score = {s: phrase_score(texts.get(s, ""), language) for s in speakers}
    if first_speaker in score:
        score[first_speaker] += FIRST_SPEAKER_WEIGHT
    ranked = sorted(speakers, key=lambda s: score[s], reverse=True)
    lead = score[ranked[0]] - score[ranked[1]]
    agents = {ranked[0]} | {s for s in ranked[1:-1] if score[s] > 0}
    if lead <= FIRST_SPEAKER_WEIGHT and all(abs(v) <= FIRST_SPEAKER_WEIGHT for v in score.values()):
        return Roles(frozenset(agents), "first_speaker", 0.5, len(speakers))
    confidence = 1 - 0.5 * np.exp(-lead / 2)
    return Roles(frozenset(agents), "phrases", float(confidence), len(speakers))


def voice_of(
    audio: np.ndarray, spans: Sequence[tuple[float, float]], limit: int
) -> tuple[np.ndarray, int] | None:
    """The mean voice over SPANS of one speaker's clean audio, from at most LIMIT windows."""
    _centres, emb = embed_windows(audio, spans, limit)
    if len(emb) == 0:
        return None
    return _unit(emb.mean(axis=0)), len(emb)


def updated_voiceprint(
    old: np.ndarray | None, old_windows: int, new: np.ndarray, new_windows: int
) -> tuple[np.ndarray, int]:
    """A voiceprint with a new call's voice averaged in, weighted by windows (capped)."""
    if old is None:
        return new, new_windows
    kept = min(old_windows, VOICEPRINT_CAP - new_windows) if new_windows < VOICEPRINT_CAP else 0
    return _unit(old * kept + new * new_windows), min(kept + new_windows, VOICEPRINT_CAP)
