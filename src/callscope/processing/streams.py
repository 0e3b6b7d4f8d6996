"""The ways telephony platforms stream a call while it happens, read into one set of events.

Three protocols (docs/live.md): Twilio Media Streams, Genesys Cloud AudioHook, and callscope's
own generic form. Each reads the connection's messages one at a time and gives back what they
mean (`Opened`, `Audio`, `Ended`) and what to answer; a message it cannot accept raises
`StreamError` with the WebSocket close code and a reason naming the problem.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from callscope.speech.streaming import mulaw
from callscope.vocabulary import Speaker

# WebSocket close codes (RFC 6455, section 7.4.1)
PROTOCOL_ERROR = 1002  # a message out of order, or an event the protocol does not have
UNSUPPORTED = 1003  # audio in an encoding callscope does not read
INVALID = 1007  # a message that cannot be read: bad JSON, base64, a frame of the wrong size
POLICY = 1008  # no or the wrong token, a limit passed, a stream id that is not this stream's
TOO_BIG = 1009  # a message over the size limit

MAX_REASON = 120  # a close reason is at most 123 bytes


class StreamError(Exception):
    """A message the stream cannot accept: CODE closes the connection with REASON."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason.encode()[:MAX_REASON].decode(errors="ignore")


@dataclass(frozen=True)
class Opened:
    """A stream began: its id, the call's metadata (as given, before defaults), its audio
    (channels at RATE, each channel's speaker) and where its audio resumes (AT, samples)."""

    stream_id: str
    metadata: dict[str, Any]
    channels: int
    rate: int
    speakers: dict[int, str]
    token: str | None = None
    external_id: str = ""  # the platform's call id, when the metadata gives none
    phone: str | None = None  # the customer's number, when the platform gives it
    language: str | None = None
    at: int | None = None


@dataclass(frozen=True)
class Audio:
    """SAMPLES (16-bit, a column a channel, or one channel CHANNEL) placed AT a sample of the
    stream (None: after what came before)."""

    samples: np.ndarray
    at: int | None = None
    channel: int | None = None


@dataclass(frozen=True)
class Ended:
    """The platform ended the stream (the call is over)."""

    reason: str = "end"


Event = Opened | Audio | Ended


@dataclass
class Reading:
    """What one message meant, and the messages to answer it with."""

    events: list[Event] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)


def _json(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise StreamError(INVALID, f"the message is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise StreamError(INVALID, "the message must be a JSON object")
    return message


def _text(value: Any, name: str, longest: int = 200) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > longest:
        raise StreamError(INVALID, f"{name} must be a text of 1 to {longest} characters")
    return value


def _object(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StreamError(INVALID, f"{name} must be a JSON object")
    return value


class Protocol:
    """One connection's protocol: reads its messages in order."""

    name = ""

    def __init__(self) -> None:
        self.started = False

    def text(self, message: str) -> Reading:
        raise NotImplementedError

    def binary(self, data: bytes) -> Reading:
        raise NotImplementedError

    def opened(self, live_call: int, received_s: float) -> list[dict[str, Any]]:
        """What to answer once the stream's call is open (or resumed with RECEIVED_S)."""
        return []

    def ended(self, conversation: int | None) -> list[dict[str, Any]]:
        """What to answer when the stream ends and its call is stored as CONVERSATION."""
        return []

    def failed(self, reason: str) -> list[dict[str, Any]]:
        """What to send before closing the connection for REASON."""
        return []

    def _started(self) -> None:
        if not self.started:
            raise StreamError(PROTOCOL_ERROR, "audio or an event came before the stream started")


# --- Twilio Media Streams ---------------------------------------------------------------------


class Twilio(Protocol):
    """Twilio Media Streams: JSON `connected`, `start`, `media` (base64 μ-law at 8 kHz, a track
    a message: inbound is the customer, outbound the agent), `mark`, `dtmf`, `stop`."""

    name = "twilio"
    CHANNELS = {"outbound": 0, "inbound": 1}
    IGNORED = ("connected", "mark", "dtmf")

    def __init__(self) -> None:
        super().__init__()
        self.stream_id = ""

    def binary(self, data: bytes) -> Reading:
        raise StreamError(INVALID, "Twilio Media Streams send JSON text messages, not binary ones")

    def text(self, message: str) -> Reading:
        msg = _json(message)
        event = msg.get("event")
        if event in self.IGNORED:
            return Reading()
        if event == "start":
            return Reading([self._start(msg)])
        if event not in ("media", "stop"):
            raise StreamError(PROTOCOL_ERROR, f"unknown event {str(event)[:40]!r}")
        self._started()
        if msg.get("streamSid") != self.stream_id:
            raise StreamError(POLICY, f"unknown stream id {str(msg.get('streamSid'))[:40]!r}")
        if event == "stop":
            return Reading([Ended("stop")])
        return Reading([self._media(_object(msg.get("media"), "media"))])

    def _start(self, msg: dict[str, Any]) -> Opened:
        if self.started:
            raise StreamError(PROTOCOL_ERROR, "the stream has started already")
        start = _object(msg.get("start"), "start")
        self.stream_id = _text(start.get("streamSid") or msg.get("streamSid"), "start.streamSid")
        call = _text(start.get("callSid", self.stream_id), "start.callSid")
        form = _object(start.get("mediaFormat"), "start.mediaFormat")
        encoding, rate = form.get("encoding"), form.get("sampleRate")
        if encoding != "audio/x-mulaw" or rate != 8000 or form.get("channels", 1) != 1:
            raise StreamError(
                UNSUPPORTED,
                f"unsupported audio {str(encoding)[:30]} at {str(rate)[:10]} Hz: "
                "audio/x-mulaw at 8000 Hz, one channel a track",
            )
        tracks = start.get("tracks", ["inbound", "outbound"])
        if not isinstance(tracks, list) or not set(tracks) <= set(self.CHANNELS) or not tracks:
            raise StreamError(INVALID, "start.tracks must list inbound and/or outbound")
        params = _object(start.get("customParameters"), "start.customParameters")
        metadata: dict[str, Any] = {}
        if params.get("metadata") is not None:
            raw = params["metadata"]
            metadata = _object(_json(raw) if isinstance(raw, str) else raw, "metadata")
        self.started = True
        return Opened(
            stream_id=self.stream_id,
            metadata=metadata,
            channels=2,
            rate=8000,
            speakers={0: Speaker.AGENT, 1: Speaker.CUSTOMER},
            token=params.get("token") if isinstance(params.get("token"), str) else None,
            external_id=f"twilio-{call}",
            phone=params.get("from") if isinstance(params.get("from"), str) else None,
        )

    def _media(self, media: dict[str, Any]) -> Audio:
        track = media.get("track", "inbound")
        if track not in self.CHANNELS:
            raise StreamError(INVALID, f"media.track must be inbound or outbound, not {track!r}")
        try:
            timestamp = int(media.get("timestamp", ""))
        except (TypeError, ValueError):
            raise StreamError(INVALID, "media.timestamp must be a number of milliseconds") from None
        if timestamp < 0:
            raise StreamError(INVALID, "media.timestamp must not be negative")
        payload = media.get("payload")
        if not isinstance(payload, str):
            raise StreamError(INVALID, "media.payload must be base64 text")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise StreamError(INVALID, "media.payload is not base64") from None
        return Audio(mulaw(data), at=timestamp * 8, channel=self.CHANNELS[track])


# --- Genesys Cloud AudioHook ------------------------------------------------------------------

DURATION = re.compile(r"^PT(?:(\d{1,6})H)?(?:(\d{1,6})M)?(?:(\d{1,9}(?:\.\d{1,9})?)S)?$")


def duration_s(text: Any) -> float:
    """Seconds of an ISO 8601 duration as AudioHook writes positions ("PT12.34S")."""
    found = DURATION.match(text) if isinstance(text, str) and text != "PT" else None
    if not found:
        raise StreamError(INVALID, f"position {str(text)[:30]!r} is not a duration like PT1.5S")
    hours, minutes, seconds = (float(part or 0) for part in found.groups())
    return hours * 3600 + minutes * 60 + seconds


class AudioHook(Protocol):
    """Genesys Cloud AudioHook (protocol version 2): JSON `open`, `ping`, `paused`, `resumed`,
    `update`, `discarded`, `error`, `close` with the server's `opened`, `pong`, `closed` and
    `disconnect`; audio in binary frames of interleaved PCMU at 8 kHz, the channels `open`
    chose (external is the customer, internal the agent)."""

    name = "audiohook"
    SPEAKERS = {"external": Speaker.CUSTOMER, "internal": Speaker.AGENT}
    QUIET = ("paused", "resumed", "update", "discarded", "error", "dtmf",
             "playback_started", "playback_completed")  # fmt: skip

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.session = ""
        self.seq = 0  # the last message sent
        self.client_seq = 0  # the last message read
        self.channels = 0
        self.position = 0  # samples a channel so far
        self.media: dict[str, Any] = {}

    def _message(self, kind: str, parameters: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        return {
            "version": "2",
            "type": kind,
            "seq": self.seq,
            "clientseq": self.client_seq,
            "id": self.session,
            "parameters": parameters,
        }

    def text(self, message: str) -> Reading:
        msg = _json(message)
        kind = msg.get("type")
        seq = msg.get("seq")
        if not isinstance(seq, int) or seq != self.client_seq + 1:
            raise StreamError(
                PROTOCOL_ERROR, f"seq {str(seq)[:20]} does not follow {self.client_seq}"
            )
        self.client_seq = seq
        if kind == "open":
            return Reading([self._open(msg)])
        if kind not in ("ping", "close", *self.QUIET):
            raise StreamError(PROTOCOL_ERROR, f"unknown message type {str(kind)[:40]!r}")
        self._started()
        if msg.get("id") != self.session:
            raise StreamError(POLICY, f"unknown session id {str(msg.get('id'))[:40]!r}")
        if kind == "ping":
            return Reading(answers=[self._message("pong", {})])
        if kind == "close":
            reason = _object(msg.get("parameters"), "parameters").get("reason", "end")
            return Reading([Ended(str(reason)[:100])])
        return Reading()

    def _open(self, msg: dict[str, Any]) -> Opened:
        if self.started:
            raise StreamError(PROTOCOL_ERROR, "the session is open already")
        self.session = _text(msg.get("id"), "id")
        params = _object(msg.get("parameters"), "parameters")
        conversation = _text(params.get("conversationId"), "parameters.conversationId")
        offered = params.get("media")
        if not isinstance(offered, list):
            raise StreamError(INVALID, "parameters.media must list the media offered")
        chosen = next(
            (
                m
                for m in offered
                if isinstance(m, dict)
                and m.get("type") == "audio"
                and m.get("format") == "PCMU"
                and m.get("rate") == 8000
                and isinstance(m.get("channels"), list)
                and 1 <= len(m["channels"]) <= 2
                and all(c in self.SPEAKERS for c in m["channels"])
            ),
            None,
        )
        if chosen is None:
            raise StreamError(UNSUPPORTED, "no medium offered is audio in PCMU at 8000 Hz")
        self.media = chosen
        self.channels = len(chosen["channels"])
        self.position = round(duration_s(msg.get("position", "PT0S")) * 8000)
        participant = _object(params.get("participant"), "parameters.participant")
        custom = _object(params.get("customConfig"), "parameters.customConfig")
        language = params.get("language")
        self.started = True
        return Opened(
            stream_id=self.session,
            metadata=_object(custom.get("metadata"), "customConfig.metadata"),
            channels=self.channels,
            rate=8000,
            speakers={i: self.SPEAKERS[c] for i, c in enumerate(chosen["channels"])},
            token=self.api_key,
            external_id=f"genesys-{conversation}",
            phone=participant.get("ani") if isinstance(participant.get("ani"), str) else None,
            language=language.split("-")[0].lower() if isinstance(language, str) else None,
            at=self.position,
        )

    def binary(self, data: bytes) -> Reading:
        self._started()
        if len(data) % self.channels:
            raise StreamError(INVALID, f"a frame of {len(data)} bytes is not whole samples of "
                              f"{self.channels} channels")  # fmt: skip
        samples = mulaw(data).reshape(-1, self.channels)
        at = self.position
        self.position += len(samples)
        return Reading([Audio(samples, at=at)])

    def opened(self, live_call: int, received_s: float) -> list[dict[str, Any]]:
        return [self._message("opened", {"startPaused": False, "media": [self.media]})]

    def ended(self, conversation: int | None) -> list[dict[str, Any]]:
        return [self._message("closed", {})]

    def failed(self, reason: str) -> list[dict[str, Any]]:
        return [self._message("disconnect", {"reason": "error", "info": reason})]


# --- the generic form -------------------------------------------------------------------------


class Generic(Protocol):
    """callscope's own form: a JSON `start` with the upload's metadata, binary frames of
    interleaved 16-bit little-endian PCM, and a JSON `stop`."""

    name = "generic"
    RATES = (8000, 16000)

    def __init__(self) -> None:
        super().__init__()
        self.channels = 0

    def text(self, message: str) -> Reading:
        msg = _json(message)
        kind = msg.get("type")
        if kind == "start":
            return Reading([self._start(msg)])
        if kind != "stop":
            raise StreamError(PROTOCOL_ERROR, f"unknown message type {str(kind)[:40]!r}")
        self._started()
        return Reading([Ended("stop")])

    def _start(self, msg: dict[str, Any]) -> Opened:
        if self.started:
            raise StreamError(PROTOCOL_ERROR, "the stream has started already")
        stream_id = _text(msg.get("stream_id"), "stream_id")
        encoding = msg.get("encoding", "pcm_s16le")
        rate, channels = msg.get("sample_rate"), msg.get("channels")
        if encoding != "pcm_s16le" or rate not in self.RATES:
            raise StreamError(UNSUPPORTED, f"unsupported audio {str(encoding)[:20]} at "
                              f"{str(rate)[:10]} Hz: pcm_s16le at 8000 or 16000 Hz")  # fmt: skip
        if channels not in (1, 2):
            raise StreamError(INVALID, "channels must be 1 or 2")
        metadata = _object(msg.get("metadata"), "metadata")
        named = _object(metadata.get("recording"), "metadata.recording").get("channels")
        speakers = (
            {int(k): v for k, v in named.items() if str(k).isdigit()}
            if isinstance(named, dict)
            else {0: Speaker.AGENT, 1: Speaker.CUSTOMER}
            if channels == 2
            else {0: "unknown"}
        )
        self.channels = channels
        self.started = True
        token = msg.get("token")
        return Opened(
            stream_id=stream_id,
            metadata=metadata,
            channels=channels,
            rate=rate,
            speakers={k: v for k, v in speakers.items() if k < channels},
            token=token if isinstance(token, str) else None,
            external_id=stream_id,
        )

    def binary(self, data: bytes) -> Reading:
        self._started()
        if len(data) % (2 * self.channels):
            raise StreamError(INVALID, f"a frame of {len(data)} bytes is not whole 16-bit "
                              f"samples of {self.channels} channels")  # fmt: skip
        samples = np.frombuffer(data, dtype="<i2").astype(np.int16).reshape(-1, self.channels)
        return Reading([Audio(samples)])

    def opened(self, live_call: int, received_s: float) -> list[dict[str, Any]]:
        return [{"type": "started", "live_call": live_call, "received_s": round(received_s, 3)}]

    def ended(self, conversation: int | None) -> list[dict[str, Any]]:
        return [{"type": "stopped", "conversation": conversation}]

    def failed(self, reason: str) -> list[dict[str, Any]]:
        return [{"type": "error", "reason": reason}]


PROTOCOLS: dict[str, type[Protocol]] = {p.name: p for p in (Twilio, AudioHook, Generic)}
