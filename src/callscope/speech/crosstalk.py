"""Crosstalk removal: each channel of a call without the other side's voice leaking into it.

On many lines each channel of a stereo recording also carries the other side, faintly and a
moment late: a PBX's hybrid echo, a headset's sidetone, channels mixed before they were split.
A recogniser hears that leak as words and puts them on the wrong speaker. Removing it before
recognition, from the sound itself:

1. **The delay** of each leak (one channel into another), from the cross-correlation of the
   two over the whole call (whitened, so that the voice's own colour does not decide; over
   the telephone band; summed over blocks, so that a long call needs little memory), within
   0 … `MAX_DELAY_S`.
2. **How much leaks, frequency by frequency**: with the source aligned by that delay, the
   transfer from source to target over the frames where the source is the louder (a Wiener
   estimate: the target's own voice, in some of those frames, does not correlate with the
   source and drops out of it).
3. **Suppression**: in each short frame and frequency, the target keeps what is left of its
   power after taking away `MARGIN` times the leak the source predicts there (unless that leak
   is below the channel's own line noise, which then hides it). Where the leak is all there
   is, nothing is left; where the target's own speaker is louder than the leak, almost all of
   it is.

All of it twice: when both sides leak, a source also carries the target's own voice, which the
first estimate takes for more leak; the second predicts from the sources the first cleaned.
The leaks found (delay, level) tell a caller when a leak was too loud to be told from the
voice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_DELAY_S = 0.4
FRAME_S = 0.032  # 512 samples at 16 kHz
MARGIN = 4.0  # take away this many times the predicted leak (6 dB to spare)
FLOOR = 10 ** (-40 / 20)  # a suppressed frequency keeps at least this (no silence-holes)
NEGLIGIBLE_DB = -45.0  # a leak quieter than this against its source is left alone
NOISE_PERCENTILE = 20  # a channel's line noise: this percentile of its power, per frequency
BLOCK_S = 4.0  # the cross-correlation is summed over blocks of this length
BAND_HZ = (300, 3400)  # what every telephone line carries


@dataclass(frozen=True)
class Leak:
    """What leaked into one channel from another."""

    into: int
    source: int
    delay_s: float
    level_db: float  # the leak's power against its source's, over the speech band


def _frames(x: np.ndarray, size: int) -> np.ndarray:
    hop = size // 2
    count = max(0, (len(x) - size) // hop + 1)
    index = np.arange(size)[None, :] + hop * np.arange(count)[:, None]
    return x[index] * np.hanning(size)[None, :].astype(np.float32)


def delay(target: np.ndarray, source: np.ndarray, rate: int) -> int:
    """The lag (samples, 0 … MAX_DELAY_S) at which SOURCE best matches TARGET later on."""
    block, max_lag = int(BLOCK_S * rate), int(MAX_DELAY_S * rate)
    size = 1 << (block + max_lag).bit_length()
    cross = np.zeros(size // 2 + 1, dtype=np.complex128)
    for start in range(0, len(target), block):
        t = target[start : start + block]
        s = source[start : start + block]
        if not np.any(t) or not np.any(s):
            continue
        cross += np.fft.rfft(t, size) * np.conj(np.fft.rfft(s, size))
    freqs = np.fft.rfftfreq(size, 1 / rate)
    cross[(freqs < BAND_HZ[0]) | (freqs > BAND_HZ[1])] = 0  # (the rest may be resampling)
    if not np.any(cross):
        return 0
    lags = np.fft.irfft(cross / (np.abs(cross) + 1e-12), size)[: max_lag + 1]
    return int(np.argmax(lags))


def remove(audio: np.ndarray, rate: int) -> tuple[np.ndarray, list[Leak]]:
    """AUDIO (channels × samples) with each channel's leak of the others taken away, and the
    leaks found (those above NEGLIGIBLE_DB).

    Twice: when both sides leak into each other, a source channel also carries the target's
    own voice (its leak), which the first estimate takes for more leak; the second predicts
    from the sources as the first left them, without it."""
    if audio.shape[0] < 2:
        return audio, []
    first, leaks = _remove_once(audio, audio, rate)
    return _remove_once(audio, first, rate) if leaks else (audio, [])


def _remove_once(
    audio: np.ndarray, sources: np.ndarray, rate: int
) -> tuple[np.ndarray, list[Leak]]:
    """AUDIO with what SOURCES (its channels, as far as known without leaks) predict of each
    channel's leak taken away."""
    channels = audio.shape[0]
    size = 1 << round(math.log2(FRAME_S * rate))
    hop = size // 2
    padded = np.pad(audio.astype(np.float32), ((0, 0), (hop, size)))
    padded_sources = np.pad(sources.astype(np.float32), ((0, 0), (hop, size)))
    spectra = [np.fft.rfft(_frames(ch, size), axis=1) for ch in padded]
    powers = [np.abs(s) ** 2 for s in spectra]
    frames = min(len(p) for p in powers)
    if frames < 8:
        return audio, []
    leaks: list[Leak] = []
    out = padded.copy()
    band = slice(int(BAND_HZ[0] / rate * size), int(BAND_HZ[1] / rate * size))
    for into in range(channels):
        target = powers[into][:frames]
        predicted = np.zeros_like(target)
        for source in range(channels):
            if source == into:
                continue
            lag = delay(audio[into], sources[source], rate)
            whole = padded_sources[source]
            shifted = np.concatenate([np.zeros(lag, np.float32), whole[: len(whole) - lag]])
            src = np.fft.rfft(_frames(shifted, size), axis=1)[:frames]
            src_power = np.abs(src) ** 2
            loud = src_power.sum(axis=1)
            # frames where the source talks and is the louder: the leak is there to see (the
            # target's own voice in some of them does not correlate with the source)
            chosen = (loud > target.sum(axis=1)) & (loud > np.percentile(loud, 50))
            if np.count_nonzero(chosen) < 8:
                continue
            cross = np.sum(spectra[into][:frames][chosen] * np.conj(src[chosen]), axis=0)
            transfer = np.abs(cross) ** 2 / np.maximum(src_power[chosen].sum(axis=0), 1e-20) ** 2
            level = float(
                np.sum(transfer[band] * src_power[chosen][:, band].sum(axis=0))
                / max(float(src_power[chosen][:, band].sum()), 1e-20)
            )
            level_db = 10 * math.log10(max(level, 1e-20))
            if level_db < NEGLIGIBLE_DB:
                continue
            leaks.append(Leak(into, source, round(lag / rate, 3), round(level_db, 1)))
            # the frame before too: a line rings on for a moment after the voice stops
            smeared = src_power.copy()
            smeared[1:] = np.maximum(smeared[1:], src_power[:-1])
            predicted += transfer[None, :] * smeared
        # a leak below the channel's own line noise is not heard: leave the noise as it is
        # (taking a voice's shape out of it would make it sound like speech)
        noise = np.percentile(target, NOISE_PERCENTILE, axis=0)
        predicted[predicted < noise[None, :]] = 0
        if not np.any(predicted):
            continue
        gain = np.sqrt(np.clip(1 - MARGIN * predicted / np.maximum(target, 1e-20), FLOOR**2, 1))
        out[into] = _overlap_add(spectra[into][:frames] * gain, size, padded.shape[1])
    return out[:, hop : hop + audio.shape[1]], leaks


def _overlap_add(spectrum: np.ndarray, size: int, length: int) -> np.ndarray:
    """The signal of Hann-windowed half-overlapping frames (their window sums to one)."""
    hop = size // 2
    pieces = np.fft.irfft(spectrum, size, axis=1).astype(np.float32)
    out = np.zeros(length, dtype=np.float32)
    for i, piece in enumerate(pieces):
        out[i * hop : i * hop + size] += piece
    return out


def kept_db(original: np.ndarray, cleaned: np.ndarray, start: int, end: int) -> float:
    """How much of ORIGINAL's sound between two sample indices CLEANED keeps (dB, ≤ about 0):
    a word heard in the little the removal left of a leak keeps almost none of its sound."""
    before = float(np.sum(np.square(original[start:end], dtype=np.float64)))
    after = float(np.sum(np.square(cleaned[start:end], dtype=np.float64)))
    return 10 * math.log10(max(after, 1e-20) / before) if before > 0 else 0.0
