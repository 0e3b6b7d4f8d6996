"""Probing, decoding and the playback rendition, on real recordings."""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from callscope.speech import isolation, media
from tests.support import DEMO_CALLS, FORMATS, READABLE, tone, write_wav


@pytest.mark.parametrize(
    "path,container,codec,duration,channels,rate", READABLE, ids=[r[0].name for r in READABLE]
)
def test_probe_reads_every_shared_format(path, container, codec, duration, channels, rate):
    info = media.probe(path)
    assert (info.container, info.codec, info.channels, info.sample_rate) == (
        container,
        codec,
        channels,
        rate,
    )
    assert info.duration_s == pytest.approx(duration, abs=0.01)


def test_refuses_headerless_wav():
    with pytest.raises(media.BadAudio, match="no RIFF header"):
        media.probe(FORMATS / "ingestion-client_missing_wav_header.wav")


def test_refuses_truncated_wav(tmp_path: Path):
    data = (DEMO_CALLS / "commercial_mono.wav").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(media.BadAudio, match="truncated: the WAV header declares 724800 bytes"):
        media.probe(cut)


def test_refuses_truncated_mp3(tmp_path: Path):
    cut = tmp_path / "cut.mp3"
    cut.write_bytes((FORMATS / "whatstheweatherlike.mp3").read_bytes()[:6000])
    with pytest.raises(media.BadAudio, match="truncated: its header declares 2.03 s"):
        media.probe(cut)


def test_refuses_empty_file(tmp_path: Path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(media.BadAudio, match="empty"):
        media.probe(empty)


def test_refuses_wav_without_samples(tmp_path: Path):
    path = write_wav(tmp_path / "none.wav", [[]])
    with pytest.raises(media.BadAudio, match="no samples"):
        media.probe(path)


def test_refuses_silent_audio(tmp_path: Path):
    path = write_wav(tmp_path / "silent.wav", [[0.0] * 16000, [0.0] * 16000])
    with pytest.raises(media.BadAudio, match="silent"):
        media.probe(path)


def test_refuses_audio_over_the_duration_limit(tmp_path: Path):
    path = write_wav(tmp_path / "long.wav", [tone(3.0)])
    with pytest.raises(media.BadAudio, match="over the limit of 2 s"):
        media.probe(path, max_duration_s=2)


def test_refuses_text_file(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_text("this is not audio\n" * 100)
    with pytest.raises(media.BadAudio, match="no audio stream"):
        media.probe(path)


def test_decode_resamples_and_keeps_channels():
    audio, rate = media.decode(
        DEMO_CALLS / "auto_repairs_40_stereo_agentL_customerR.wav", sample_rate=16000
    )
    assert rate == 16000
    assert audio.shape[0] == 2
    assert audio.shape[1] / rate == pytest.approx(245.38, abs=0.05)
    assert audio.dtype == np.float32


@pytest.mark.parametrize(
    "name,order",
    [
        ("synthetic_en_stereo.wav", [0, 1]),
        ("commercial_mono.wav", [0]),
    ],
)
def test_rendition_is_aac_mp4_of_same_duration_and_channels(tmp_path: Path, name, order):
    source = DEMO_CALLS / name
    target, peaks = tmp_path / "out.m4a", tmp_path / "out.peaks.json"
    media.make_rendition(source, target, peaks, order)
    with av.open(str(target)) as container:
        assert "mp4" in container.format.name
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        assert stream.codec_context.channels == len(order)
    source_info, out_info = media.probe(source), media.probe(target)
    assert out_info.duration_s == pytest.approx(source_info.duration_s, abs=0.1)
    data = json.loads(peaks.read_text())
    assert len(data["channels"]) == len(order)
    assert len(data["channels"][0]) == pytest.approx(source_info.duration_s * 10, abs=2)


def test_rendition_puts_agent_left_whatever_the_source_order(tmp_path: Path):
    # channel 0 carries the customer (quiet), channel 1 the agent (loud)
    source = write_wav(tmp_path / "swapped.wav", [tone(2.0, level=0.05), tone(2.0, level=0.8)])
    target, peaks = tmp_path / "out.m4a", tmp_path / "peaks.json"
    media.make_rendition(source, target, peaks, [1, 0])
    audio, _ = media.decode(target)
    left, right = np.abs(audio).max(axis=1)
    assert left > 0.6 and right < 0.1
    data = json.loads(peaks.read_text())
    assert max(data["channels"][0]) > 0.6 > 0.1 > max(data["channels"][1])


# --- hostile files: refused before the native decoder, or by a decoder in its own process ------


def test_refuses_more_channels_than_a_recorder_writes(tmp_path: Path):
    # FFmpeg's resampler crashes the whole process on 8 channels: refused from the header
    eight = write_wav(tmp_path / "eight.wav", [tone(0.25, level=0.3)] * 8, rate=8000)
    with pytest.raises(media.BadAudio, match="audio has 8 channels; at most 6 are accepted"):
        media.probe(eight)


@pytest.mark.parametrize("rate", [1, 2000, 384000])
def test_refuses_sample_rates_no_recording_uses(tmp_path: Path, rate: int):
    # 3 600 samples at 1 Hz: a 7 KB file that claims an hour
    odd = write_wav(tmp_path / "odd.wav", [[0.2, -0.2] * 1800], rate=rate)
    with pytest.raises(media.BadAudio, match=f"sample rate {rate} Hz is outside 4000–192000 Hz"):
        media.probe(odd)


def test_a_decoder_crash_refuses_the_file_and_this_process_carries_on():
    with pytest.raises(isolation.DecoderFailed, match="exit status -11"):
        isolation.run(ctypes.string_at, 0)  # reads address 0: a segmentation fault
    assert isolation.run(media.playback_rate, 8000) == 16000


def test_a_decoder_that_exhausts_memory_is_refused():
    with pytest.raises(isolation.DecoderFailed, match="more memory"):
        isolation.run(bytearray, 8 * 1024**3)


def test_errors_of_an_isolated_decoder_come_back_as_they_are(tmp_path: Path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(media.BadAudio, match="empty"):
        isolation.run(media.probe, empty)


def test_the_rendition_streams_the_same_audio_and_peaks_in_blocks(tmp_path: Path):
    source = DEMO_CALLS / "commercial_mono.wav"
    target, peaks = tmp_path / "r.m4a", tmp_path / "r.peaks.json"
    media.make_rendition(source, target, peaks, [0])
    original, rate = media.decode(source, sample_rate=16000)
    step = rate // media.PEAKS_PER_SECOND
    expected = [
        round(float(np.abs(original[0, i : i + step]).max()), 3)
        for i in range(0, original.shape[1], step)
    ]
    assert json.loads(peaks.read_text())["channels"][0] == expected


def test_a_long_many_channel_call_is_decoded_outside_the_worker_in_bounded_memory(tmp_path):
    """Half an hour of 6-channel 4 kHz audio (what took the worker gigabytes when it decoded in
    its own memory): the decoder runs in a child that streams it to disk, the caller maps only
    the two channels a call's roles name; neither process's peak memory follows the length."""
    minutes, rate = 30, 4000
    path = tmp_path / "long.wav"
    with wave.open(str(path), "wb") as out:  # (a minute at a time: the test stays small too)
        out.setnchannels(6)
        out.setsampwidth(2)
        out.setframerate(rate)
        t = np.arange(60 * rate) / rate
        minute = np.stack([0.05 * (c + 1) * np.sin(2 * np.pi * 300 * t) for c in range(6)])
        pcm = (minute * 32767).astype("<i2").T.tobytes()
        for _ in range(minutes):
            out.writeframes(pcm)
    # (the caller's own peak is VmHWM: getrusage's maxrss of a process keeps that of the one it
    # was forked from, here a test worker with a speech model loaded)
    measure = (
        "import resource, sys, numpy as np\n"
        "from pathlib import Path\n"
        "from callscope.speech import media\n"
        "audio = media.decode_channels(Path(sys.argv[1]), [4, 1], Path(sys.argv[2]))\n"
        "rms = [float(np.sqrt(np.mean(np.square(c[::97])))) for c in audio]\n"
        "peak = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
        "print(audio.shape[0], audio.shape[1], *rms, peak,\n"
        "      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", measure, str(path), str(tmp_path / "work")],
        capture_output=True,
        text=True,
        check=True,
    )
    channels, samples, rms_4, rms_1, caller_kib, decoder_kib = done.stdout.split()
    assert (int(channels), int(samples)) == (2, minutes * 60 * media.SAMPLE_RATE)
    # the channels asked for, in the order asked (a sine's RMS is its level over √2)
    assert float(rms_4) == pytest.approx(0.25 / 2**0.5, rel=0.02)
    assert float(rms_1) == pytest.approx(0.10 / 2**0.5, rel=0.02)
    # two channels of float32 at 16 kHz are 230 MB; six decoded in memory were over 1.3 GB
    assert int(caller_kib) < 400 * 1024
    assert int(decoder_kib) < 400 * 1024
    assert not any((tmp_path / "work").iterdir())  # (mapped, then removed)
