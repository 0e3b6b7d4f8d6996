"""Audio: probe, decode, and the playback rendition (AAC in MP4) with waveform peaks."""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import av
import numpy as np

from callscope import errors
from callscope.speech import isolation
from callscope.store import tmp_prefix
from callscope.vocabulary import Speaker

T = TypeVar("T")
SAMPLE_RATE = 16000  # what speech recognition and voice analysis work at (Hz)
SILENCE_PEAK = 10 ** (-60 / 20)  # −60 dBFS: quieter than any usable recording
PEAKS_PER_SECOND = 10
AAC_RATES = (16000, 22050, 24000, 32000, 44100, 48000)
# What may reach the native decoder. More channels than a call recorder writes (FFmpeg's
# resampler crashes the process from 8 on), rates no telephony or studio uses, and files far
# smaller than their duration needs (~2 kbit/s is below any speech codec; a tiny file that
# claims hours would decode to gigabytes) are refused first.
MAX_CHANNELS = 6
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 4000, 192000
MIN_BYTES_PER_SECOND = 250


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


def _wav_problem(path: Path) -> str | None:
    """For a RIFF/WAVE file, read in Python (no native code) what its header declares and say
    what is wrong with it: channels, rate, or a data chunk shorter than declared."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"fmt " and chunk_size >= 8:
                channels, rate = struct.unpack("<HI", f.read(8)[2:8])
                if problem := stream_problem(channels, rate):
                    return problem
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


def stream_problem(channels: int, rate: int) -> str | None:
    """Why an audio stream of CHANNELS at RATE Hz is refused, or None."""
    if not 1 <= channels <= MAX_CHANNELS:
        return f"audio has {channels} channels; at most {MAX_CHANNELS} are accepted"
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        return f"audio sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE} Hz"
    return None


def _too_long_for_size(seconds: float, size: int) -> str | None:
    if seconds > size / MIN_BYTES_PER_SECOND:
        return (
            f"audio claims {seconds:.0f} s in {size} bytes, fewer than any speech codec needs: "
            "the file is damaged or forged"
        )
    return None


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
    if reason := _wav_problem(path):
        raise BadAudio(reason)
    size = path.stat().st_size
    with _open(path) as container:
        if not container.streams.audio:
            raise BadAudio("file contains no audio stream")
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        channels = ctx.channels
        rate = ctx.sample_rate
        if not rate or not channels:
            raise BadAudio("audio stream has no sample rate or channel count")
        if problem := stream_problem(channels, rate):
            raise BadAudio(problem)
        declared = container.duration / av.time_base if container.duration else None
        if declared and declared > max_duration_s:
            raise BadAudio(
                f"audio claims a duration of {declared:.0f} s, over the limit of "
                f"{max_duration_s:.0f} s"
            )
        if declared and (problem := _too_long_for_size(declared, size)):
            raise BadAudio(problem)
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
                if problem := _too_long_for_size(samples / rate, size):
                    raise BadAudio(problem)
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


def decode_channels(
    path: Path, channels: Sequence[int], workdir: Path, *, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """CHANNELS of PATH as float32 (len(CHANNELS) × samples) at SAMPLE_RATE, decoded in a child
    process limited in memory (`isolation`) block by block into a file under WORKDIR, which is
    then mapped, not read: the native decoder never runs in the caller, and the caller's memory
    holds only the pages it touches (the file is gone once mapped; the mapping keeps it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=workdir, prefix=tmp_prefix("decoded"), suffix=".f32")
    os.close(handle)
    try:
        samples = isolation.run_now(_decode_into, path, Path(name), list(channels), sample_rate)
        if samples == 0:
            return np.zeros((len(channels), 0), dtype=np.float32)
        # (copy on write: a step that changes the sound in place changes its own copy)
        return np.memmap(name, dtype=np.float32, mode="c", shape=(len(channels), samples))
    finally:
        os.unlink(name)


def _decode_into(path: Path, target: Path, channels: list[int], sample_rate: int) -> int:
    """Decode CHANNELS of PATH at SAMPLE_RATE into TARGET, one channel after the other
    (float32); the number of samples per channel. Memory does not grow with the call."""
    parts = [target.with_suffix(f".{c}") for c in channels]
    samples = 0
    try:
        with _open(path) as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(
                format="fltp", layout=stream.codec_context.layout, rate=sample_rate
            )
            files = [open(part, "wb") for part in parts]  # noqa: SIM115 - closed below
            try:
                for frame in itertools.chain(container.decode(stream), [None]):  # None: flush
                    for out in resampler.resample(frame):
                        block = out.to_ndarray()
                        for file, channel in zip(files, channels, strict=True):
                            block[channel].astype(np.float32, copy=False).tofile(file)
                        samples += block.shape[1]
            finally:
                for file in files:
                    file.close()
        with open(target, "wb") as joined:
            for part in parts:
                with open(part, "rb") as piece:
                    shutil.copyfileobj(piece, joined, 1024**2)
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
    return samples


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
    replaced by a 1 kHz tone (redacted personal data). The audio streams through in blocks: memory
    does not grow with the length of the call.
    """
    layout = "stereo" if len(channel_order) == 2 else "mono"
    with (
        _open(source) as container,
        av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"}) as out,
    ):
        stream = container.streams.audio[0]
        rate = playback_rate(stream.codec_context.sample_rate)
        resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout, rate=rate)
        encoder = out.add_stream("aac", rate=rate, layout=layout)
        encoder.bit_rate = 48000 * len(channel_order)
        blocks = _Blocks(len(channel_order), ENCODER_FRAME)
        meter = _PeakMeter(len(channel_order), max(1, rate // PEAKS_PER_SECOND))
        written = 0

        def encode(block: np.ndarray) -> None:
            nonlocal written
            for channel, start, end in tones:
                lo = max(written, int(start * rate))
                hi = min(written + block.shape[1], int(np.ceil(end * rate)))
                if hi > lo:
                    t = np.arange(lo, hi) / rate
                    block[channel, lo - written : hi - written] = TONE_LEVEL * np.sin(
                        2 * np.pi * TONE_HZ * t
                    )
            meter.add(block)
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = written
            frame.time_base = Fraction(1, rate)
            for packet in encoder.encode(frame):
                out.mux(packet)
            written += block.shape[1]

        for frame in itertools.chain(container.decode(stream), [None]):  # None: flush
            for resampled in resampler.resample(frame):
                for block in blocks.add(resampled.to_ndarray()[channel_order]):
                    encode(block)
        if (rest := blocks.rest()) is not None:
            encode(rest)
        for packet in encoder.encode(None):
            out.mux(packet)
    peaks = {"per_second": PEAKS_PER_SECOND, "channels": meter.peaks()}
    peaks_target.write_text(json.dumps(peaks, separators=(",", ":")), encoding="utf-8")


ENCODER_FRAME = 1024  # samples per AAC frame


class _Blocks:
    """Regroups a stream of (channels × n) arrays into blocks of SIZE samples."""

    def __init__(self, channels: int, size: int) -> None:
        self.size = size
        self.pending = np.zeros((channels, 0), dtype=np.float32)

    def add(self, data: np.ndarray) -> list[np.ndarray]:
        self.pending = np.concatenate([self.pending, data.astype(np.float32)], axis=1)
        whole = self.pending.shape[1] // self.size * self.size
        blocks = [
            np.ascontiguousarray(self.pending[:, i : i + self.size])
            for i in range(0, whole, self.size)
        ]
        self.pending = self.pending[:, whole:]
        return blocks

    def rest(self) -> np.ndarray | None:
        return np.ascontiguousarray(self.pending) if self.pending.shape[1] else None


class _PeakMeter:
    """Per channel, the peak absolute level of every STEP samples (the waveform), fed block by
    block."""

    def __init__(self, channels: int, step: int) -> None:
        self.step = step
        self.carry = np.zeros((channels, 0), dtype=np.float32)
        self.rows: list[np.ndarray] = []

    def add(self, block: np.ndarray) -> None:
        data = np.concatenate([self.carry, np.abs(block)], axis=1)
        whole = data.shape[1] // self.step * self.step
        if whole:
            self.rows.append(data[:, :whole].reshape(data.shape[0], -1, self.step).max(axis=2))
        self.carry = data[:, whole:]

    def peaks(self) -> list[list[float]]:
        if self.carry.shape[1]:
            self.rows.append(self.carry.max(axis=1, keepdims=True))
            self.carry = self.carry[:, :0]
        table = np.concatenate(self.rows, axis=1) if self.rows else np.zeros((0, 0))
        return [[round(float(v), 3) for v in row] for row in table]


def playback_order(mapping: dict[int, str]) -> list[int]:
    """Source channels for the playback rendition: agent left and customer right, or mono."""
    agent = [i for i, role in sorted(mapping.items()) if role == Speaker.AGENT]
    customer = [i for i, role in sorted(mapping.items()) if role == Speaker.CUSTOMER]
    if agent and customer:
        return [agent[0], customer[0]]
    return [min(mapping)]
