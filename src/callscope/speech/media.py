"""Audio: probe, decode, and the playback rendition (AAC in MP4) with waveform peaks."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from callscope import errors
from callscope.vocabulary import Speaker

SAMPLE_RATE = 16000  # what speech recognition and voice analysis work at (Hz)
SILENCE_PEAK = 10 ** (-60 / 20)  # −60 dBFS: quieter than any usable recording
PEAKS_PER_SECOND = 10
AAC_RATES = (16000, 22050, 24000, 32000, 44100, 48000)


class BadAudio(errors.Refused):
    """The audio cannot be accepted; the message says why."""


@dataclass(frozen=True)
class AudioInfo:
    """What probing a recording found."""

    container: str
    codec: str
    duration_s: float
    channels: int
    sample_rate: int
    peak_dbfs: list[float]


def _wav_truncation(path: Path) -> str | None:
    """For a RIFF/WAVE file, say whether its data chunk is shorter than its header declares."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                present = size - offset - 8
                if chunk_size in (0, 0xFFFFFFFF):  # streamed WAV: size unknown
                    return None
                if present < chunk_size:
                    return (
                        f"audio is truncated: the WAV header declares {chunk_size} bytes of audio "
                        f"but only {present} are present"
                    )
                return None
            offset += 8 + chunk_size + (chunk_size & 1)
    return "audio is truncated: the WAV file ends before its data chunk"


def _open(path: Path) -> av.container.InputContainer:
    """Open a container or explain why it cannot be read."""
    if path.stat().st_size == 0:
        raise BadAudio("audio file is empty (0 bytes)")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        with open(path, "rb") as f:
            head = f.read(4)
        if path.suffix.lower() == ".wav" and head not in (b"RIFF", b"RF64"):
            raise BadAudio("audio has no RIFF header: it is not a readable WAV file") from exc
        raise BadAudio(
            "audio format not recognised: the file has no readable audio header"
        ) from exc


def probe(path: Path, *, max_duration_s: float = 12 * 3600) -> AudioInfo:
    """Open and fully decode a recording, refusing unreadable, truncated, empty or silent audio."""
    if reason := _wav_truncation(path):
        raise BadAudio(reason)
    with _open(path) as container:
        if not container.streams.audio:
            raise BadAudio("file contains no audio stream")
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        channels = ctx.channels
        rate = ctx.sample_rate
        if not rate or not channels:
            raise BadAudio("audio stream has no sample rate or channel count")
        declared = container.duration / av.time_base if container.duration else None
        if declared and declared > max_duration_s:
            raise BadAudio(
                f"audio claims a duration of {declared:.0f} s, over the limit of "
                f"{max_duration_s:.0f} s"
            )
        peaks = np.zeros(channels)
        samples = 0
        try:
            for frame in container.decode(stream):
                data = frame.to_ndarray()
                data = _to_float(data, frame.format.name, channels)
                if data.size:
                    peaks = np.maximum(peaks, np.abs(data).max(axis=1))
                samples += frame.samples
                if samples / rate > max_duration_s:
                    raise BadAudio(f"audio is longer than the limit of {max_duration_s:.0f} s")
        except av.error.FFmpegError as exc:
            raise BadAudio(
                f"audio is corrupt or truncated: decoding failed after {samples / rate:.2f} s"
            ) from exc
        container_name = container.format.name.split(",")[0]
        codec = ctx.name
    duration = samples / rate
    if samples == 0:
        raise BadAudio("audio contains no samples (zero length)")
    if declared and declared - duration > max(0.5, 0.05 * declared):
        raise BadAudio(
            f"audio is truncated: its header declares {declared:.2f} s but only "
            f"{duration:.2f} s could be decoded"
        )
    if peaks.max() < SILENCE_PEAK:
        raise BadAudio("audio is silent: no channel rises above −60 dBFS")
    peak_dbfs = [round(20 * math.log10(p), 1) if p > 0 else -math.inf for p in peaks]
    return AudioInfo(container_name, codec, round(duration, 3), channels, rate, peak_dbfs)


def _to_float(data: np.ndarray, fmt: str, channels: int) -> np.ndarray:
    """A decoded frame as float (channels × samples) in [−1, 1]."""
    if not fmt.endswith("p"):  # packed: interleaved samples in one row
        data = data.reshape(-1, channels).T
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(data.dtype, np.integer):
        return data.astype(np.float32) / float(np.iinfo(data.dtype).max)
    return data.astype(np.float32, copy=False)


def decode(path: Path, *, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode to float32 (channels × samples), resampled to SAMPLE_RATE when given."""
    with _open(path) as container:
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels
        rate = sample_rate or stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout, rate=rate)
        chunks = []
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray())
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
    if not chunks:
        return np.zeros((channels, 0), dtype=np.float32), rate
    return np.concatenate(chunks, axis=1).astype(np.float32, copy=False), rate


def waveform_peaks(
    audio: np.ndarray, rate: int, per_second: int = PEAKS_PER_SECOND
) -> list[list[float]]:
    """Per channel, the peak absolute level of each 1/PER_SECOND s bucket (for the waveform)."""
    step = max(1, rate // per_second)
    buckets = math.ceil(audio.shape[1] / step)
    padded = np.zeros((audio.shape[0], buckets * step), dtype=np.float32)
    padded[:, : audio.shape[1]] = np.abs(audio)
    peaks = padded.reshape(audio.shape[0], buckets, step).max(axis=2)
    return [[round(float(v), 3) for v in row] for row in peaks]


def playback_rate(rate: int) -> int:
    """The sample rate of the playback rendition: the source's, raised to at least 16 kHz."""
    return min((r for r in AAC_RATES if r >= rate), default=AAC_RATES[-1])


TONE_HZ = 1000.0
TONE_LEVEL = 0.1  # −20 dBFS


def make_rendition(
    source: Path,
    target: Path,
    peaks_target: Path,
    channel_order: list[int],
    tones: Sequence[tuple[int, float, float]] = (),
) -> None:
    """Encode SOURCE as AAC in MP4 (fast start) with the channels in CHANNEL_ORDER, and its peaks.

    CHANNEL_ORDER lists source channel indexes: [agent, customer] for stereo (agent left), or a
    single index for mono. TONES are (output channel, start s, end s) spans whose sound is
    replaced by a 1 kHz tone (redacted personal data).
    """
    with _open(source) as container:
        rate = playback_rate(container.streams.audio[0].codec_context.sample_rate)
    audio, rate = decode(source, sample_rate=rate)
    audio = np.ascontiguousarray(audio[channel_order])
    for channel, start, end in tones:
        lo, hi = max(0, int(start * rate)), min(audio.shape[1], int(np.ceil(end * rate)))
        if hi > lo:
            t = np.arange(lo, hi) / rate
            audio[channel, lo:hi] = TONE_LEVEL * np.sin(2 * np.pi * TONE_HZ * t)
    layout = "stereo" if len(channel_order) == 2 else "mono"
    with av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("aac", rate=rate, layout=layout)
        stream.bit_rate = 48000 * len(channel_order)
        frame_size = 1024
        for start in range(0, audio.shape[1], frame_size):
            frame = av.AudioFrame.from_ndarray(
                audio[:, start : start + frame_size], format="fltp", layout=layout
            )
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    peaks = {"per_second": PEAKS_PER_SECOND, "channels": waveform_peaks(audio, rate)}
    peaks_target.write_text(json.dumps(peaks, separators=(",", ":")), encoding="utf-8")


def playback_order(mapping: dict[int, str]) -> list[int]:
    """Source channels for the playback rendition: agent left and customer right, or mono."""
    agent = [i for i, role in sorted(mapping.items()) if role == Speaker.AGENT]
    customer = [i for i, role in sorted(mapping.items()) if role == Speaker.CUSTOMER]
    if agent and customer:
        return [agent[0], customer[0]]
    return [min(mapping)]
