"""The parts of live calls that need no server: telephone audio decoding, cutting a channel at
its pauses (over levels, rates, noise and the way frames are sliced), the three protocols'
readings of whatever a connection sends, and the hub's placing of frames (duplicates, gaps,
limits, a call resumed by a process that did not hear its start)."""

from __future__ import annotations

import base64
import json
import threading
import wave
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly
from sqlalchemy import select

import callscope.demo
from callscope.context import Context
from callscope.db.models import LiveCall, LiveLine
from callscope.governance import auth
from callscope.processing import live, streams
from callscope.processing.streams import (
    Audio,
    AudioHook,
    Ended,
    Generic,
    Opened,
    StreamError,
    Twilio,
)
from callscope.speech import streaming
from tests.support import make_meta

DEMO = Path(callscope.demo.__file__).parent / "calls" / "synthetic_en_stereo.wav"
CLOSE_CODES = {1002, 1003, 1007, 1008, 1009}


def demo_channels(rate: int, seconds: float = 60.0) -> np.ndarray:
    """The English demo call's first SECONDS at RATE: 16-bit samples, a column a channel."""
    with wave.open(str(DEMO)) as w:
        pcm = np.frombuffer(w.readframes(int(seconds * w.getframerate())), dtype="<i2")
        audio = pcm.reshape(-1, w.getnchannels()).astype(np.float64)
        source = w.getframerate()
    if rate != source:
        audio = resample_poly(audio, rate, source, axis=0)
    return np.clip(audio, -32768, 32767).astype(np.int16)


# --- μ-law --------------------------------------------------------------------------------------


def test_mulaw_decodes_every_code_as_ffmpeg_does():
    codec = av.CodecContext.create("pcm_mulaw", "r")
    codec.sample_rate, codec.layout = 8000, "mono"
    packet = av.Packet(bytes(range(256)))
    ffmpeg = np.concatenate([f.to_ndarray().ravel() for f in codec.decode(packet)])
    assert np.array_equal(streaming.mulaw(bytes(range(256))), ffmpeg.astype(np.int16))


# --- cutting a channel at its pauses -------------------------------------------------------


def utterances_of(samples: np.ndarray, rate: int, chunk: int) -> list[streaming.Utterance]:
    cutter = streaming.Utterances(rate)
    found = []
    for at in range(0, len(samples), chunk):
        found += cutter.add(samples[at : at + chunk])
    return found + cutter.end()


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("gain_db", [0, -12, -25])
@pytest.mark.parametrize("snr_db", [None, 20])
def test_a_channel_is_cut_into_its_turns_at_any_level_rate_and_noise(rate, gain_db, snr_db):
    audio = demo_channels(rate)[:, 0].astype(np.float64) * 10 ** (gain_db / 20)
    if snr_db is not None:  # (line hiss SNR_DB under the speech's loud frames)
        loud = np.percentile(np.abs(audio), 99) / 3
        noise = np.random.default_rng(1).normal(0, loud * 10 ** (-snr_db / 20), len(audio))
        audio = audio + noise
    samples = np.clip(audio, -32768, 32767).astype(np.int16)
    found = utterances_of(samples, rate, int(rate * 0.02))
    finals = [u for u in found if u.final]
    # the agent speaks 5 turns in the first minute (at 0.5, 13.5, 23, 32 and 40.5 s)
    assert 4 <= len(finals) <= 8, [round(u.start_s, 1) for u in finals]
    starts = [u.start_s for u in finals]
    for turn in (0.5, 13.5, 23.1, 32.2, 40.5):
        assert any(abs(s - turn) < 0.8 for s in starts), (turn, starts)
    assert [u.number for u in finals] == list(range(len(finals)))
    for before, after in zip(finals, finals[1:], strict=False):
        assert before.start_s + len(before.samples) / rate <= after.start_s + 1e-9
    for u in finals:
        assert len(u.samples) / rate <= streaming.LONGEST_S + streaming.PAD_S + 0.05
    # a partial utterance is read while a turn goes on, before its final
    partials = [u for u in found if not u.final]
    assert partials and all(
        any(f.number == p.number and f.start_s == p.start_s for f in finals) for p in partials
    )


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 4000), min_size=1, max_size=40))
def test_how_the_audio_is_sliced_into_frames_does_not_change_the_utterances(sizes):
    samples = demo_channels(8000, 30.0)[:, 1]
    whole = [
        (u.number, u.start_s, len(u.samples)) for u in utterances_of(samples, 8000, 160) if u.final
    ]
    cutter = streaming.Utterances(8000)
    found, at = [], 0
    for size in sizes * (len(samples) // sum(sizes) + 1):
        found += cutter.add(samples[at : at + size])
        at += size
        if at >= len(samples):
            break
    found += cutter.end()
    assert [(u.number, u.start_s, len(u.samples)) for u in found if u.final] == whole


def test_silence_and_a_click_are_no_utterance():
    quiet = np.zeros(8000 * 5, dtype=np.int16)
    quiet[20000:20040] = 20000  # a 5 ms click
    assert utterances_of(quiet, 8000, 160) == []


# --- the protocols ------------------------------------------------------------------------------


def twilio_start(stream: str = "MZ1", **params: str) -> str:
    return json.dumps({
        "event": "start",
        "streamSid": stream,
        "start": {
            "streamSid": stream,
            "callSid": "CA1",
            "tracks": ["inbound", "outbound"],
            "customParameters": params,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    })  # fmt: skip


def twilio_media(stream: str, track: str, timestamp: int, payload: bytes) -> str:
    return json.dumps({
        "event": "media",
        "streamSid": stream,
        "media": {"track": track, "timestamp": str(timestamp),
                  "payload": base64.b64encode(payload).decode()},
    })  # fmt: skip


def test_twilio_tracks_become_the_agent_and_customer_channels_at_their_timestamps():
    twilio = Twilio()
    assert twilio.text(json.dumps({"event": "connected", "protocol": "Call"})).events == []
    meta = json.dumps({"queue": "Billing"})
    (opened,) = twilio.text(twilio_start(token="secret", metadata=meta)).events
    assert isinstance(opened, Opened)
    assert (opened.stream_id, opened.token, opened.metadata) == (
        "MZ1",
        "secret",
        {"queue": "Billing"},
    )
    assert opened.speakers == {0: "agent", 1: "customer"} and opened.external_id == "twilio-CA1"
    (audio,) = twilio.text(twilio_media("MZ1", "inbound", 40, bytes([0xFF] * 160))).events
    assert isinstance(audio, Audio) and (audio.channel, audio.at, len(audio.samples)) == (
        1,
        320,
        160,
    )
    (audio,) = twilio.text(twilio_media("MZ1", "outbound", 0, bytes([0x00] * 160))).events
    assert audio.channel == 0 and int(audio.samples[0]) == -32124
    assert twilio.text(json.dumps({"event": "stop", "streamSid": "MZ1"})).events == [Ended("stop")]


@pytest.mark.parametrize(
    ("messages", "code", "names"),
    [
        (["{not json"], 1007, "not JSON"),
        (['{"event": "bogus"}'], 1002, "bogus"),
        ([twilio_media("MZ1", "inbound", 0, b"x")], 1002, "before the stream started"),
        ([twilio_start(), twilio_media("MZ9", "inbound", 0, b"x")], 1008, "MZ9"),
        ([twilio_start(), twilio_media("MZ1", "sideways", 0, b"x")], 1007, "track"),
        ([twilio_start(), twilio_media("MZ1", "inbound", -20, b"x")], 1007, "timestamp"),
        ([twilio_start().replace("audio/x-mulaw", "audio/l16")], 1003, "audio/l16"),
        ([twilio_start(), twilio_start()], 1002, "started already"),
    ],
)
def test_twilio_refusals_name_the_problem(messages, code, names):
    twilio = Twilio()
    with pytest.raises(StreamError) as refused:
        for message in messages:
            twilio.text(message)
    assert refused.value.code == code and names in refused.value.reason


def audiohook_open(seq: int = 1, position: str = "PT0S", media: list | None = None) -> str:
    return json.dumps({
        "version": "2", "type": "open", "seq": seq, "serverseq": 0, "id": "s-1",
        "position": position,
        "parameters": {
            "organizationId": "o", "conversationId": "c-1",
            "participant": {"id": "p", "ani": "+6281234", "aniName": "", "dnis": "+1"},
            "media": media or [{"type": "audio", "format": "PCMU", "rate": 8000,
                                "channels": ["external", "internal"]}],
            "language": "id-ID",
            "customConfig": {"metadata": {"queue": "Billing"}},
        },
    })  # fmt: skip


def test_audiohook_answers_open_ping_and_close_in_sequence():
    hook = AudioHook(api_key="key")
    (opened,) = hook.text(audiohook_open()).events
    assert isinstance(opened, Opened)
    assert opened.speakers == {0: "customer", 1: "agent"} and opened.language == "id"
    assert (opened.phone, opened.token, opened.external_id) == ("+6281234", "key", "genesys-c-1")
    (answer,) = hook.opened(1, 0.0)
    assert (answer["type"], answer["seq"], answer["clientseq"], answer["id"]) == (
        "opened",
        1,
        1,
        "s-1",
    )
    (audio,) = hook.binary(bytes([0xFF, 0x00] * 80)).events
    assert isinstance(audio, Audio) and audio.samples.shape == (80, 2) and audio.at == 0
    (audio,) = hook.binary(bytes(20)).events
    assert isinstance(audio, Audio) and audio.at == 80
    ping = hook.text(json.dumps({"version": "2", "type": "ping", "seq": 2, "id": "s-1"}))
    assert ping.answers[0]["type"] == "pong" and ping.answers[0]["seq"] == 2
    paused = json.dumps({"version": "2", "type": "paused", "seq": 3, "id": "s-1"})
    assert hook.text(paused).events == []
    closing = json.dumps(
        {"version": "2", "type": "close", "seq": 4, "id": "s-1", "parameters": {"reason": "end"}}
    )
    assert hook.text(closing).events == [Ended("end")]
    assert hook.ended(None)[0]["type"] == "closed"
    assert hook.failed("why")[0]["parameters"] == {"reason": "error", "info": "why"}


def test_audiohook_resumes_at_the_position_it_opens_with():
    hook = AudioHook()
    (opened,) = hook.text(audiohook_open(position="PT1M2.5S")).events
    assert isinstance(opened, Opened) and opened.at == 62.5 * 8000
    (audio,) = hook.binary(bytes(4)).events
    assert isinstance(audio, Audio) and audio.at == 500_000


@pytest.mark.parametrize(
    ("messages", "code", "names"),
    [
        ([audiohook_open(seq=2)], 1002, "seq"),
        ([audiohook_open(media=[{"type": "audio", "format": "L16", "channels": ["external"],
                                 "rate": 16000}])], 1003, "PCMU"),
        ([audiohook_open(), b"\x00\x01\x02"], 1007, "3 bytes"),
        ([audiohook_open(), json.dumps({"type": "dance", "seq": 2, "id": "s-1"})], 1002, "dance"),
        ([audiohook_open(), json.dumps({"type": "ping", "seq": 2, "id": "other"})], 1008, "other"),
        ([audiohook_open(position="1.5 seconds")], 1007, "PT1.5S"),
    ],
)  # fmt: skip
def test_audiohook_refusals_name_the_problem(messages, code, names):
    hook = AudioHook()
    with pytest.raises(StreamError) as refused:
        for message in messages:
            hook.binary(message) if isinstance(message, bytes) else hook.text(message)
    assert refused.value.code == code and names in refused.value.reason


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 99), st.integers(0, 59), st.decimals(Decimal("0"), Decimal("59.999"), places=3)
)
def test_audiohook_positions_read_as_seconds(hours, minutes, seconds):
    text = f"PT{hours}H{minutes}M{seconds}S"
    assert streams.duration_s(text) == pytest.approx(hours * 3600 + minutes * 60 + float(seconds))


def test_the_generic_form_reads_its_channels_from_the_metadata():
    generic = Generic()
    meta = make_meta()  # (channel 0 is the customer's there)
    start = {
        "type": "start",
        "stream_id": "g-1",
        "metadata": meta,
        "sample_rate": 16000,
        "channels": 2,
    }
    (opened,) = generic.text(json.dumps(start)).events
    assert isinstance(opened, Opened)
    assert opened.speakers == {int(k): v for k, v in meta["recording"]["channels"].items()}
    (audio,) = generic.binary(np.arange(8, dtype="<i2").tobytes()).events
    assert isinstance(audio, Audio) and audio.samples.tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]
    with pytest.raises(StreamError, match="whole 16-bit samples"):
        generic.binary(bytes(6))
    assert generic.opened(7, 1.5) == [{"type": "started", "live_call": 7, "received_s": 1.5}]


MESSAGES = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300),
    st.builds(json.dumps, st.dictionaries(
        st.sampled_from(["event", "type", "seq", "id", "streamSid", "start", "media", "stream_id",
                         "sample_rate", "channels", "parameters", "position"]),
        st.one_of(st.none(), st.integers(-5, 20000), st.text(max_size=20),
                  st.sampled_from(["start", "media", "stop", "open", "ping", "close", "MZ1", "s-1",
                                   "PT1S"]),
                  st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3)),
        max_size=6)),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([Twilio, AudioHook, Generic]), st.lists(MESSAGES, max_size=6))
def test_whatever_a_connection_sends_is_read_or_refused_with_a_close_code(protocol, messages):
    reader = protocol()
    for message in [twilio_start(), audiohook_open(), *messages]:
        try:
            reading = reader.binary(message) if isinstance(message, bytes) else reader.text(message)
        except StreamError as exc:
            assert exc.code in CLOSE_CODES and exc.reason and len(exc.reason.encode()) <= 123
            continue
        for event in reading.events:
            assert isinstance(event, (Opened, Audio, Ended))
            if isinstance(event, Audio):
                assert event.samples.dtype == np.int16


# --- the hub, without hearing --------------------------------------------------------------


@pytest.fixture
def hub(ctx: Context) -> live.Hub:
    ctx.settings.live_max_speed = 1000.0
    return live.Hub(ctx)  # (its threads are not started: nothing is heard)


@pytest.fixture
def ingest_token(ctx: Context) -> str:
    with ctx.db.session() as session:
        auth.add_user(session, "feed", "admin", "a long test password")
        return auth.create_token(session, "feed", "pbx", "ingest")


def opened(token: str, stream: str = "MZ1", **meta: object) -> Opened:
    return Opened(stream, {**make_meta(), **meta}, 2, 8000, {0: "agent", 1: "customer"}, token)


def test_frames_land_at_their_place_once_and_gaps_are_silent(hub, ingest_token):
    call = hub.open("twilio", opened(ingest_token), None)
    tone = (np.sin(np.arange(800) / 3) * 8000).astype(np.int16)
    hub.add(call, Audio(tone[:400], at=0, channel=0))
    hub.add(call, Audio(tone[:400], at=0, channel=0))  # (the same frame again)
    hub.add(call, Audio(tone[400:], at=400, channel=0))
    hub.add(call, Audio(tone[200:600], at=200, channel=0))  # (overlapping what came)
    hub.add(call, Audio(tone, at=1600, channel=1))  # (the customer's first 1 600 never came)
    assert call.written == [800, 2400]
    path = call.folder / "both.wav"
    live._assemble(call, path)
    with wave.open(str(path)) as w:
        both = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    assert np.array_equal(both[:800, 0], tone) and not both[800:, 0].any()
    assert not both[:1600, 1].any() and np.array_equal(both[1600:, 1], tone)


def test_a_call_past_its_limits_is_refused_and_keeps_what_came(hub, ingest_token, ctx):
    ctx.settings.live_max_minutes = 0.01  # 0.6 s
    call = hub.open("twilio", opened(ingest_token), None)
    hub.add(call, Audio(np.zeros(4000, np.int16), at=0, channel=0))
    with pytest.raises(live.LiveRefused, match="longer than the 0.01-minute limit"):
        hub.add(call, Audio(np.zeros(1000, np.int16), at=4000, channel=0))
    assert call.written == [4000, 0]
    ctx.settings.live_max_minutes, ctx.settings.live_max_speed = 60, 1.0
    with pytest.raises(live.LiveRefused, match="faster than real time"):
        hub.add(call, Audio(np.zeros(8000 * 10, np.int16), at=4000, channel=1))
    ctx.settings.live_max_speed = 1000.0
    with pytest.raises(live.LiveRefused, match="placed 120 s past the last"):
        hub.add(call, Audio(np.zeros(160, np.int16), at=4000 + 8000 * 120, channel=0))
    assert call.written == [4000, 0]


def test_opening_refuses_what_an_upload_would_and_a_token_over_its_limit(hub, ingest_token, ctx):
    with pytest.raises(live.LiveRefused, match="valid API token"):
        hub.open("twilio", opened("wrong"), None)
    with ctx.db.session() as session:
        auth.add_user(session, "reader", "supervisor", "a long test password")
        reading = auth.create_token(session, "reader", "dash")
    with pytest.raises(live.LiveRefused, match="ingest scope"):
        hub.open("twilio", opened(reading), None)
    with pytest.raises(Exception, match=r"metadata.sessions\[0\].agent.external_id"):
        hub.open("twilio", opened(ingest_token, sessions=[{"agent": {}}]), None)
    ctx.settings.live_streams_per_token = 1
    hub.open("twilio", opened(ingest_token, "MZ1"), None)
    with pytest.raises(live.LiveRefused, match="streams 1 calls already"):
        hub.open("twilio", opened(ingest_token, "MZ2"), None)
    with ctx.db.session() as session:
        assert session.scalars(select(LiveCall.stream_id)).all() == ["MZ1"]


def test_a_call_resumes_in_a_process_that_did_not_hear_its_start(hub, ingest_token, ctx):
    call = hub.open("twilio", opened(ingest_token), None)
    with pytest.raises(live.LiveRefused, match="streaming already"):
        hub.open("twilio", opened(ingest_token), None)
    speech = demo_channels(8000, 20.0)
    hub.add(call, Audio(speech[:80000, 0], at=0, channel=0))
    hub.drop(call)
    other = live.Hub(ctx)  # (the first process stopped; its spool files stay)
    again = other.open("twilio", opened(ingest_token), None)
    assert again.id == call.id and again.written == [80000, 0]
    assert again.cutters[0].position == 80000
    other.add(again, Audio(speech[80000:, 0], at=80000, channel=0))
    with ctx.db.session() as session:
        row = session.get(LiveCall, call.id)
        assert row is not None and row.status == live.LIVE
        row.status = live.ENDED
    with pytest.raises(live.LiveRefused, match="has ended"):
        other.open("twilio", opened(ingest_token), None)


def test_calls_opened_at_once_for_a_new_agent_share_it_and_one_stream_id_opens_once(
    hub, ingest_token, ctx
):
    meta = {"sessions": [{"agent": {"external_id": "AG-NEW", "name": "New"}}], "queue": "Fresh"}
    streams = ["MZ-a", "MZ-b", "MZ-c", "MZ-c"]
    barrier = threading.Barrier(len(streams))

    def open_one(stream: str) -> object:
        barrier.wait()
        try:
            return hub.open("twilio", opened(ingest_token, stream, **meta), None).id
        except live.LiveRefused as exc:
            return str(exc)

    with ThreadPoolExecutor(len(streams)) as pool:
        found = list(pool.map(open_one, streams))
    assert all(isinstance(f, int) for f in found[:2])
    assert sorted(map(type, found[2:]), key=str) == [int, str]  # (the second MZ-c is refused)
    assert "streaming already" in next(f for f in found[2:] if isinstance(f, str))
    with ctx.db.session() as session:
        rows = session.scalars(select(LiveCall)).all()
        assert sorted(r.stream_id for r in rows) == ["MZ-a", "MZ-b", "MZ-c"]
        assert len({r.agent_id for r in rows}) == 1 and len({r.queue_id for r in rows}) == 1


def test_both_tracks_of_a_call_at_real_time_pace_are_not_too_fast(hub, ingest_token, ctx):
    ctx.settings.live_max_speed = 1.0  # (a stream may run 5 s ahead, at most)
    call = hub.open("twilio", opened(ingest_token), None)
    frame = np.zeros(160, np.int16)
    for n in range(int(4.5 / 0.02)):  # 4.5 s of both tracks, sent at once
        hub.add(call, Audio(frame, at=n * 160, channel=0))
        hub.add(call, Audio(frame, at=n * 160, channel=1))
    with pytest.raises(live.LiveRefused, match="faster than real time"):
        for n in range(int(4.5 / 0.02), int(6 / 0.02)):
            hub.add(call, Audio(frame, at=n * 160, channel=0))


def test_calls_that_ended_over_an_hour_ago_go_with_their_lines(hub, ingest_token, ctx):
    old, recent = (hub.open("twilio", opened(ingest_token, s), None).id for s in ("MZ1", "MZ2"))
    with ctx.db.session() as session:
        for live_id, ago in ((old, timedelta(hours=2)), (recent, timedelta(minutes=5))):
            row = session.get_one(LiveCall, live_id)
            row.status, row.ended_at = live.ENDED, datetime.now(UTC) - ago
            line = {"channel": 0, "utterance": 0, "speaker": "agent", "start_s": 0.0, "end_s": 1.0}
            session.add(LiveLine(live_call_id=live_id, text="hi", final=True, revision=1, **line))
    hub._forget()
    with ctx.db.session() as session:
        assert session.scalars(select(LiveCall.id)).all() == [recent]
        assert session.scalars(select(LiveLine.live_call_id)).all() == [recent]
