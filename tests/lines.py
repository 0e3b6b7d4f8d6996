"""Phone lines made on purpose, and real calls to put through them.

A `Line` is what a recorder's line does to a two-channel call: each side's voice leaking into
the other's channel (crosstalk: level, delay, one way or both, through the telephone band or
as a clean copy), a quiet caller, line noise, the sample rate and a codec. `on_line` applies
it to a call whose channels are clean, so the truth of who said what stays known.

`REAL_CALLS` are real two-party telephone calls with human transcripts (Gridspace-Stanford
Harper Valley, CC BY 4.0; see tests/data/README.md): separate clean channels, silence between
turns digital zero, so the crosstalk added is the only crosstalk there is.
"""

from __future__ import annotations

import csv
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from scipy import signal

from callscope.speech import media
from tests.evaluation import truth_turns
from tests.support import DEMO_CALLS, write_wav

REAL_DIR = Path(__file__).resolve().parent / "data" / "calls" / "hvb"
REAL_CALLS = sorted(p.stem for p in REAL_DIR.glob("*.flac"))
CODECS = {  # codec: (container, rates it takes)
    "pcm": ("wav", None),
    "mulaw": ("wav", None),
    "alaw": ("wav", None),
    "opus": ("ogg", (8000, 16000)),
    "amr": ("amr", (8000,)),
}
_ENCODERS = {"pcm": "pcm_s16le", "mulaw": "pcm_mulaw", "alaw": "pcm_alaw", "opus": "libopus"}


@dataclass(frozen=True)
class Line:
    """What the line does to a call (agent on channel 0, caller on channel 1)."""

    crosstalk_db: float | None = -20.0  # each leak's level against the voice it copies
    delay_ms: float = 40.0  # how much later the leak arrives
    both_ways: bool = True  # one way: the agent's voice leaks into the caller's channel
    band: bool = True  # the leak passes the telephone band (300–3400 Hz), as lines do
    rate: int = 8000
    codec: str = "mulaw"
    caller_db: float = 0.0  # the caller's side this much quieter
    snr_db: float | None = None  # line noise on both channels, against each one's speech

    @property
    def name(self) -> str:
        leak = (
            "no crosstalk"
            if self.crosstalk_db is None
            else f"{self.crosstalk_db:+.0f} dB {self.delay_ms:.0f} ms "
            f"{'both ways' if self.both_ways else 'one way'}{'' if self.band else ' clean'}"
        )
        extra = [f"caller {self.caller_db:+.0f} dB"] if self.caller_db else []
        extra += [f"SNR {self.snr_db:.0f} dB"] if self.snr_db is not None else []
        return ", ".join([leak, f"{self.rate // 1000} kHz {self.codec}", *extra])

    def clean(self) -> Line:
        """The same line without crosstalk (what the call should read as)."""
        return Line(None, rate=self.rate, codec=self.codec, caller_db=self.caller_db,
                    snr_db=self.snr_db)  # fmt: skip


def speech_rms(channel: np.ndarray, rate: int) -> float:
    """The RMS of a channel's speech: its 20 ms frames within 30 dB of its loudest."""
    size = rate // 50
    frames = channel[: len(channel) // size * size].reshape(-1, size)
    rms = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
    speech = rms[rms > rms.max() * 10 ** (-30 / 20)] if rms.max() > 0 else rms
    return float(np.sqrt(np.mean(np.square(speech)))) if len(speech) else 0.0


def on_line(source: Path, line: Line, target: Path, seed: int = 0) -> Path:
    """SOURCE (stereo, clean channels) as LINE records it, written to TARGET (WAV)."""
    audio, rate = media.decode(source, sample_rate=line.rate)
    audio = audio.astype(np.float64)
    audio[1] *= 10 ** (line.caller_db / 20)
    if line.crosstalk_db is not None:
        gain, delay = 10 ** (line.crosstalk_db / 20), round(line.delay_ms / 1000 * rate)
        sos = signal.butter(4, [300, min(3400, rate / 2 - 200)], "bandpass", fs=rate, output="sos")
        leaks = [signal.sosfilt(sos, ch) if line.band else ch.copy() for ch in audio]
        for to, frm in ((1, 0), (0, 1)) if line.both_ways else ((1, 0),):
            audio[to, delay:] += gain * leaks[frm][: audio.shape[1] - delay]
    if line.snr_db is not None:
        rng = np.random.default_rng(seed)
        for ch in audio:
            ch += rng.normal(0, speech_rms(ch, rate) * 10 ** (-line.snr_db / 20), len(ch))
    audio = np.stack([through_codec(ch, rate, line.codec) for ch in np.clip(audio, -1, 1)])
    return write_wav(target, audio, rate)


def through_codec(channel: np.ndarray, rate: int, codec: str) -> np.ndarray:
    """CHANNEL encoded with CODEC and decoded again (what reaches the recorder)."""
    if codec == "pcm":
        return channel
    container, rates = CODECS[codec]
    coded_rate = rate if rates is None or rate in rates else rates[-1]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"coded.{container}"
        samples = (np.clip(channel, -1, 1) * 32767).astype(np.int16)
        encode(path, samples, rate, coded_rate, codec)
        decoded, _ = media.decode(path, sample_rate=rate)
    out = np.zeros_like(channel)
    n = min(len(out), decoded.shape[1])
    out[:n] = decoded[0, :n]
    return out


def encode(path: Path, samples: np.ndarray, rate: int, coded_rate: int, codec: str) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream(_ENCODERS.get(codec, "libopencore_amrnb"), rate=coded_rate)
        stream.layout = "mono"
        if codec == "amr":
            stream.bit_rate = 12200
        resampler = av.AudioResampler(
            format=stream.codec_context.format, layout="mono", rate=coded_rate,
            frame_size=stream.codec_context.frame_size or None,
        )  # fmt: skip
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.rate = rate
        for piece in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(piece):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def real_turns(name: str) -> list[dict]:
    """A real call's human transcript as turns (speaker agent/customer, start, end, text),
    tags such as [noise] left out."""
    with open(REAL_DIR / f"{name}.turns.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    turns = []
    for row in rows:
        text = re.sub(r"\[[^\]]*\]", " ", row["human_transcript"]).split()
        if text:
            speaker = "agent" if row["speaker"] == "agent" else "customer"
            turns.append(
                {"speaker": speaker, "start": float(row["start_s"]), "end": float(row["end_s"]),
                 "text": " ".join(text)}
            )  # fmt: skip
    return turns


def real_call(name: str) -> Path:
    return REAL_DIR / f"{name}.flac"


def truth_calls() -> dict[str, tuple[Path, list[dict], str]]:
    """Every two-channel call with known truth: its file, its turns and its language (the real
    calls, and the synthetic demo calls in English and Indonesian)."""
    calls = {name: (real_call(name), real_turns(name), "en") for name in REAL_CALLS}
    for name, language in (("synthetic_en_stereo", "en"), ("synthetic_id_stereo", "id")):
        calls[name] = (DEMO_CALLS / f"{name}.wav", truth_turns(name) or [], language)
    return calls
