"""Voices in a call, without the database: the words of a single-channel recording with the
role of each speaker told apart by voice, and each agent's voice in a stereo call (for the
voiceprints the processing keeps)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from callscope.measures import segments
from callscope.speech import asr, attribution, diarization
from callscope.vocabulary import Speaker

VOICE_GAP_S = 0.5  # words this close are one stretch of an agent's voice
VOICE_WINDOWS_PER_CALL = 50  # about 20 s of an agent's speech per stereo call (≤ 0.5 s of work)


def diarized_words(
    audio: np.ndarray,
    recognised: Sequence[asr.RecognisedWord],
    language: str,
    voiceprints: list[np.ndarray],
) -> tuple[list[segments.Word], diarization.Roles]:
    """The words of a single-channel recording with the speaker role of each."""
    dz = diarization.diarize(audio)
    who = [dz.speaker_of(w.start, w.end) for w in recognised]
    texts: dict[int, str] = {}
    for w, s in zip(recognised, who, strict=True):
        if s is not None:
            texts[s] = f"{texts.get(s, '')} {w.text}"
    first = next((s for s in who if s is not None), None)
    found = diarization.assign_roles(dz, texts, first, language, voiceprints)
    words = [
        segments.Word(found.role(s), w.start, w.end, w.text, w.confidence)
        for w, s in zip(recognised, who, strict=True)
    ]
    return words, found


def agent_voices(
    channel: np.ndarray, words: list[segments.Word], spans: list[attribution.SessionSpan]
) -> dict[int, tuple[np.ndarray, int]]:
    """Each agent's voice in this call, from the agent channel where that agent's words are."""
    stretches: dict[int, list[tuple[float, float]]] = {}
    for w in words:
        agent = attribution.agent_at(w.start, spans) if w.speaker == Speaker.AGENT else None
        if agent is None:
            continue
        own = stretches.setdefault(agent, [])
        if own and w.start - own[-1][1] <= VOICE_GAP_S:
            own[-1] = (own[-1][0], w.end)
        else:
            own.append((w.start, w.end))
    voices = {}
    for agent, own in stretches.items():
        voice = diarization.voice_of(channel, own, VOICE_WINDOWS_PER_CALL)
        if voice is not None:
            voices[agent] = voice
    return voices
