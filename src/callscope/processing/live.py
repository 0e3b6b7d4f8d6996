"""Live calls: audio streamed in while the call happens, heard line by line, and stored as an
ordinary recording when the call ends (docs/live.md).

The `Hub` of a serving process keeps the calls streaming to it. Each channel's audio is
written to a spool file at its place in the call (a frame that arrives twice lands on
itself) and cut into utterances at pauses (`speech.streaming`); a reader thread transcribes
them, finals before partials, and writes each line, its sentiment and the alerts of the
categories it matches to the database, where every serving process's Live page reads them.
When the call ends (or its connection dropped and did not come back in time) the spooled
audio becomes a stereo recording that goes through `Ingestor`, so its final results are what
an upload of the same audio gives.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import shutil
import threading
import time
import wave
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callscope import errors
from callscope.context import Context
from callscope.db import rows_changed
from callscope.db.models import ApiToken, Conversation, LiveCall, LiveLine, utcnow
from callscope.governance import audit, auth
from callscope.measures import embeddings, learned
from callscope.processing import webhooks
from callscope.processing.ingest import INSERT_ATTEMPTS, Ingestor, resolve_people
from callscope.processing.metadata import Metadata
from callscope.processing.results import INCOMPLETE
from callscope.processing.streams import Audio, Opened
from callscope.review import categories
from callscope.speech import asr
from callscope.speech.streaming import Utterance, Utterances, for_recognition
from callscope.vocabulary import LANGUAGES, Speaker

log = logging.getLogger(__name__)

LIVE, DROPPED, ENDING, ENDED = "live", "dropped", "ending", "ended"
SEEN_EVERY_S = 2.0  # how often a streaming call tells the database it is alive
BURST_S = 5.0  # audio a stream may send ahead of real time (× live_max_speed)
LONGEST_GAP_S = 60.0  # a frame further ahead than this of a channel's audio is refused
RECENT_LINES = 3  # the customer's current sentiment: the mean of this many last lines
FINISH_WAIT_S = 120.0  # the longest the end of a call waits for its last lines
SHOWN_FOR = timedelta(hours=1)  # an ended live call stays on the Live page this long, then goes


class LiveRefused(errors.Refused):
    """A stream that cannot be taken: no right, a limit, a call that cannot resume."""


@dataclass
class Call:
    """A call streaming to this process: its spool files, and each channel's utterances."""

    id: int
    protocol: str
    channels: int
    rate: int
    speakers: dict[int, str]
    language: str | None
    folder: Path
    cutters: list[Utterances]
    written: list[int]  # samples of each channel written (the furthest)
    attached_at: float = 0.0  # (monotonic) when this connection began
    base: int = 0  # samples the call held when this connection began
    dropped: float | None = None  # (monotonic) when its connection went
    pending: int = 0  # utterances waiting to be read
    done: threading.Condition = field(default_factory=threading.Condition)
    writing: threading.Lock = field(default_factory=threading.Lock)  # (one line written at once)

    def received_s(self) -> float:
        return max(self.written, default=0) / self.rate


def spool_folder(ctx: Context, live_call_id: int) -> Path:
    return ctx.settings.data_dir / "live" / str(live_call_id)


def _metadata(opened: Opened) -> dict[str, Any]:
    """The stream's metadata with what the platform says filling in what it does not."""
    now = utcnow().isoformat()
    meta = dict(opened.metadata)
    meta.setdefault("external_id", opened.external_id)
    meta.setdefault("started_at", now)
    if opened.phone and not meta.get("customer"):
        meta["customer"] = {"external_id": opened.phone, "phone": opened.phone}
    sessions = meta.get("sessions")
    if isinstance(sessions, list):
        meta["sessions"] = [
            {"started_at": now, **s} if isinstance(s, dict) else s for s in sessions
        ]
    given = meta.get("recording")
    recording: dict[str, Any] = {
        **(given if isinstance(given, dict) else {}),
        "channels": {str(k): v for k, v in opened.speakers.items()},
    }
    if opened.language in LANGUAGES:
        recording.setdefault("language", opened.language)
    meta["recording"] = recording
    return meta


class Hub:
    """The live calls of one serving process, and the threads that hear them."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.calls: dict[int, Call] = {}
        self.lock = threading.Lock()
        self.work: queue.PriorityQueue[tuple[int, int, Call, int, Utterance]] = (
            queue.PriorityQueue()
        )
        self.order = itertools.count()
        self.newest: dict[tuple[int, int, int], int] = {}  # (call, channel, utterance) → order
        self.stopping = threading.Event()
        self.started = self.warming = False

    def start(self) -> None:
        """Hear the calls and end those that stay away (as the server starts)."""
        self.stopping = threading.Event()
        # a reader a core, as many as the speech model runs at once (two on two cores)
        readers = 2 if (self.settings.asr_threads or os.cpu_count() or 1) >= 2 else 1
        for n in range(readers):
            threading.Thread(target=self._read_loop, name=f"live-reader-{n}", daemon=True).start()
        threading.Thread(target=self._reap_loop, name="live-reaper", daemon=True).start()
        self.started = True

    def _warm_up(self) -> None:
        """The models a line needs, loaded as the first call opens (not at its first line,
        nor in a server that never hears a call)."""
        try:
            asr.transcriber(self.settings).warm_up()
            if embeddings.available():
                embeddings.embed(["warming up"])
        except Exception:  # (the first line loads them instead)
            log.exception("the models of live calls could not be loaded")

    def stop(self) -> None:
        self.stopping.set()

    # --- opening a stream ---------------------------------------------------------------------

    def open(self, protocol: str, opened: Opened, source: str | None) -> Call:
        """The call OPENED begins (or resumes, with the same stream id); refuses a token
        without the ingest scope, a token over its limit, metadata that an upload would be
        refused for, and a stream that ended. Calls opened at once for a new agent or queue,
        or twice with one stream id, end in one row each."""
        meta = None
        for _attempt in range(INSERT_ATTEMPTS):
            with self.ctx.db.session() as session:
                token = _ingest_token(session, opened.token)
                row = session.scalar(
                    select(LiveCall).where(
                        LiveCall.protocol == protocol, LiveCall.stream_id == opened.stream_id
                    )
                )
                if row is not None:
                    return self._resume(session, row, token)
                streaming = session.scalar(
                    select(func.count())
                    .select_from(LiveCall)
                    .where(LiveCall.token_id == token.id, LiveCall.status.in_((LIVE, DROPPED)))
                )
                limit = self.settings.live_streams_per_token
                if (streaming or 0) >= limit:
                    raise LiveRefused(f"this token streams {limit} calls already, its limit")
                actor = audit.Actor.of(token.user, source)
            meta = meta or Ingestor(self.ctx).check_metadata(_metadata(opened))
            try:
                return self._insert(protocol, opened, token.id, actor, meta)
            except IntegrityError:
                continue  # (another call made the agent, the queue or this stream's row first)
        raise errors.Unavailable("could not store the live call: the database kept refusing it")

    def _insert(
        self, protocol: str, opened: Opened, token_id: int, actor: audit.Actor, meta: Metadata
    ) -> Call:
        with self.ctx.db.session() as session:
            if session.scalar(
                select(Conversation.id).where(Conversation.external_id == meta.external_id)
            ):
                raise LiveRefused(
                    f"metadata.external_id {meta.external_id!r} is a stored conversation already"
                )
            agent_id, queue_id = resolve_people(session, meta)
            row = LiveCall(
                protocol=protocol,
                stream_id=opened.stream_id,
                token_id=token_id,
                external_id=meta.external_id,
                metadata_json=meta.model_dump(mode="json"),
                agent_id=agent_id,
                queue_id=queue_id,
                channels=opened.channels,
                sample_rate=opened.rate,
                channel_map={str(k): v for k, v in opened.speakers.items()},
                language=meta.recording.language,
                status=LIVE,
                received_s=0.0,
                incomplete=False,
                alerts=0,
                revision=0,
            )
            session.add(row)
            session.flush()
            audit.record(session, actor, "live.start", "live_call", row.id,
                         protocol=protocol, stream_id=opened.stream_id)  # fmt: skip
            call = self._attach(row)
            try:
                session.commit()
            except BaseException:
                with self.lock:
                    self.calls.pop(row.id, None)
                raise
        return call

    def _resume(self, session: Session, row: LiveCall, token: ApiToken) -> Call:
        if row.token_id != token.id:
            raise LiveRefused("the stream id belongs to a call another token streams")
        if row.status not in (LIVE, DROPPED):
            raise LiveRefused(f"stream {row.stream_id[:60]!r} has ended")
        with self.lock:
            held = self.calls.get(row.id)
            if held is not None and held.dropped is None:
                raise LiveRefused(f"stream {row.stream_id[:60]!r} is streaming already")
        row.status = LIVE
        return self._attach(row)

    def _attach(self, row: LiveCall) -> Call:
        """This process's Call for ROW, read from its spool files if it has none (a call that
        resumes after the process that heard it first stopped)."""
        with self.lock:
            call = self.calls.get(row.id)
            if call is None:
                folder = spool_folder(self.ctx, row.id)
                folder.mkdir(parents=True, exist_ok=True)
                written = [_samples(folder, ch) for ch in range(row.channels)]
                heard = self._heard(row.id)
                call = Call(
                    id=row.id,
                    protocol=row.protocol,
                    channels=row.channels,
                    rate=row.sample_rate,
                    speakers={int(k): v for k, v in row.channel_map.items()},
                    language=row.language,
                    folder=folder,
                    cutters=[
                        Utterances(row.sample_rate, position=w, number=heard.get(ch, 0))
                        for ch, w in enumerate(written)
                    ],
                    written=written,
                )
                self.calls[row.id] = call
            call.attached_at = time.monotonic()
            call.base = max(call.written, default=0)
            call.dropped = None
            warm = self.started and not self.warming
            self.warming = self.warming or warm
        if warm:
            threading.Thread(target=self._warm_up, name="live-warm-up", daemon=True).start()
        return call

    def _heard(self, live_call_id: int) -> dict[int, int]:
        """How many utterances of each channel the call has lines for."""
        with self.ctx.db.session() as session:
            rows = session.execute(
                select(LiveLine.channel, func.max(LiveLine.utterance))
                .where(LiveLine.live_call_id == live_call_id, LiveLine.channel >= 0)
                .group_by(LiveLine.channel)
            ).all()
        return {channel: last + 1 for channel, last in rows}

    # --- audio --------------------------------------------------------------------------------

    def add(self, call: Call, audio: Audio) -> None:
        """Store AUDIO at its place and queue the utterances it ends or extends; refuses audio
        arriving faster than real time allows and a call over the longest."""
        samples = audio.samples if audio.samples.ndim == 2 else audio.samples[:, None]
        channels = [audio.channel] if audio.channel is not None else list(range(call.channels))
        at = audio.at if audio.at is not None else max(call.written, default=0)
        end_s = (at + len(samples)) / call.rate
        if end_s > self.settings.live_max_minutes * 60:
            raise LiveRefused(
                f"the call is longer than the {self.settings.live_max_minutes:g}-minute limit"
            )
        sent = (max(at + len(samples), *call.written) - call.base) / call.rate
        allowed = (time.monotonic() - call.attached_at + BURST_S) * self.settings.live_max_speed
        if sent > allowed:
            raise LiveRefused("audio is arriving faster than real time")
        for column, channel in enumerate(channels):
            written = call.written[channel]
            if at > written + LONGEST_GAP_S * call.rate:
                raise LiveRefused(f"audio placed {(at - written) / call.rate:.0f} s past the last")
            data = samples[:, column]
            _write(call.folder, channel, at, data)
            new = data[max(0, written - at) :]
            if not len(new):
                continue  # (a frame that came before)
            gap = np.zeros(max(0, at - written), dtype=np.int16)
            call.written[channel] = at + len(data)
            self._queue(call, channel, call.cutters[channel].add(np.concatenate([gap, new])))

    def _queue(self, call: Call, channel: int, utterances: list[Utterance]) -> None:
        for utterance in utterances:
            order = next(self.order)
            self.newest[(call.id, channel, utterance.number)] = order
            with call.done:
                call.pending += 1
            self.work.put((0 if utterance.final else 1, order, call, channel, utterance))

    def _note(self, call: Call, **values: Any) -> None:
        with self.ctx.db.session() as session:
            session.execute(update(LiveCall).where(LiveCall.id == call.id).values(**values))

    # --- hearing ------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                _priority, order, call, channel, utterance = self.work.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                key = (call.id, channel, utterance.number)
                if utterance.final or self.newest.get(key) == order:
                    self._hear(call, channel, utterance)
                if utterance.final:
                    self.newest.pop(key, None)
            except Exception:  # (one line lost, not the call)
                log.exception("live call %s: a line could not be heard", call.id)
            finally:
                with call.done:
                    call.pending -= 1
                    call.done.notify_all()

    def _hear(self, call: Call, channel: int, utterance: Utterance) -> None:
        audio = for_recognition(utterance.samples, call.rate)
        if call.language is None:
            if len(audio) < asr.SAMPLE_RATE and not utterance.final:
                return  # (too little to tell the language by)
            call.language = asr.transcriber(self.settings).detect_language(audio)
            self._note(call, language=call.language)
        words = asr.transcriber(self.settings, call.language).words(audio, call.language)
        text = " ".join(w.text for w in words)
        speaker = call.speakers.get(channel, "unknown")
        start_s = utterance.start_s + (words[0].start if words else 0.0)
        end_s = utterance.start_s + (words[-1].end if words else len(audio) / asr.SAMPLE_RATE)
        score = (
            learned.read([(text, speaker)], call.language)[0].score
            if text and utterance.final
            else None
        )
        with call.writing, self.ctx.db.session() as session:
            row = session.get(LiveCall, call.id)
            if row is None:
                return
            line = session.scalar(
                select(LiveLine).where(
                    LiveLine.live_call_id == call.id,
                    LiveLine.channel == channel,
                    LiveLine.utterance == utterance.number,
                )
            )
            if line is not None and line.final:
                return
            if not text:
                if line is not None and utterance.final:
                    row.revision += 1
                    line.final, line.text, line.revision = True, "", row.revision
                return
            row.revision += 1
            if line is None:
                line = LiveLine(live_call_id=call.id, channel=channel, utterance=utterance.number)
                session.add(line)
            line.speaker, line.start_s, line.end_s = speaker, round(start_s, 3), round(end_s, 3)
            line.text, line.final, line.sentiment = text, utterance.final, score
            line.revision = row.revision
            if utterance.final:
                session.flush()
                if speaker == Speaker.CUSTOMER:
                    row.customer_sentiment = _recent_sentiment(session, call.id)
                self._alerts(session, row, line, words)

    def _alerts(self, session: Session, row: LiveCall, line: LiveLine, words: list) -> None:
        """An alert for each category that LINE makes match for the first time in the call."""
        raised = set(
            session.scalars(
                select(LiveLine.alert).where(
                    LiveLine.live_call_id == row.id, LiveLine.alert.is_not(None)
                )
            )
        )
        offset = line.start_s - (words[0].start if words else 0.0)
        heard = {
            "speaker": line.speaker,
            "text": line.text,
            "start_s": line.start_s,
            "end_s": line.end_s,
            "words": [
                {"text": w.text, "start_s": w.start + offset, "end_s": w.end + offset}
                for w in words
            ],
        }
        for name, found in categories.live_matches(session, heard, skip=raised):
            row.revision += 1
            row.alerts += 1
            alert = LiveLine(
                live_call_id=row.id,
                channel=-1,
                utterance=row.alerts,
                speaker=found["speaker"],
                start_s=found["start_s"],
                end_s=found["end_s"],
                text=found["text"],
                final=True,
                alert=name,
                revision=row.revision,
            )
            session.add(alert)
            webhooks.alert(session, row, name, found)

    # --- the end ------------------------------------------------------------------------------

    def drop(self, call: Call) -> None:
        """The connection went without ending the call: it may resume for a while."""
        call.dropped = time.monotonic()
        self._note(call, status=DROPPED, received_s=call.received_s(), seen_at=utcnow())

    def finish(self, call: Call, *, incomplete: bool = False) -> int | None:
        """End CALL: its last utterances heard, its audio stored and processed as a recording;
        the conversation's id (None: nothing was stored, the call says why)."""
        with self.ctx.db.session() as session:
            claimed = rows_changed(
                session.execute(
                    update(LiveCall)
                    .where(LiveCall.id == call.id, LiveCall.status.in_((LIVE, DROPPED)))
                    .values(status=ENDING, received_s=call.received_s())
                )
            )
        if not claimed:
            return None
        for channel, cutter in enumerate(call.cutters):
            self._queue(call, channel, cutter.end())
        with call.done:
            call.done.wait_for(lambda: call.pending == 0, timeout=FINISH_WAIT_S)
        conversation, error = None, None
        try:
            conversation = self._store(call, incomplete)
        except errors.Refused as exc:
            error = str(exc)
        except Exception as exc:
            log.exception("live call %s could not be stored", call.id)
            error = f"the call could not be stored: {exc}"
        with self.ctx.db.session() as session:
            row = session.get(LiveCall, call.id)
            if row is not None:
                row.revision += 1
                row.status, row.ended_at, row.incomplete = ENDED, utcnow(), incomplete
                row.conversation_id, row.error = conversation, error
        with self.lock:
            self.calls.pop(call.id, None)
        shutil.rmtree(call.folder, ignore_errors=True)
        return conversation

    def _store(self, call: Call, incomplete: bool) -> int:
        with self.ctx.db.session() as session:
            row = session.get(LiveCall, call.id)
            meta = Metadata.model_validate(row.metadata_json) if row else None
        if meta is None or not any(call.written):
            raise LiveRefused("no audio was received")
        if call.language and not meta.recording.language:
            meta.recording.language = call.language
        path = call.folder / "call.wav"
        _assemble(call, path)
        result = Ingestor(self.ctx).ingest_file(
            path, meta, warnings=[INCOMPLETE] if incomplete else None
        )
        return result.id

    def _reap_loop(self) -> None:
        """Calls whose connection dropped and did not come back in time end, incomplete; so do
        calls this process was hearing when it stopped, once they are as old."""
        self._reap_orphans()
        while not self.stopping.wait(SEEN_EVERY_S / 2):
            late = time.monotonic() - self.settings.live_resume_s
            with self.lock:
                calls = list(self.calls.values())
            gone = [c for c in calls if c.dropped is not None and c.dropped < late]
            try:
                self._seen([c for c in calls if c.dropped is None])
                self._forget()
            except Exception:
                log.exception("live calls could not be marked as seen or forgotten")
            for call in gone:
                try:
                    self.finish(call, incomplete=True)
                except Exception:
                    log.exception("live call %s could not be ended", call.id)

    def _forget(self) -> None:
        """Calls that ended over SHOWN_FOR ago go, with their lines and metadata: the
        conversation each became is the record of it (under retention and erasure)."""
        with self.ctx.db.session() as session:
            session.execute(
                delete(LiveCall).where(
                    LiveCall.status == ENDED, LiveCall.ended_at < utcnow() - SHOWN_FOR
                )
            )

    def _seen(self, calls: list[Call]) -> None:
        """Tell the database that CALLS still stream, and how much of each has come."""
        if not calls:
            return
        now = utcnow()
        with self.ctx.db.session() as session:
            for call in calls:
                session.execute(
                    update(LiveCall)
                    .where(LiveCall.id == call.id, LiveCall.status == LIVE)
                    .values(received_s=call.received_s(), seen_at=now)
                )

    def _reap_orphans(self) -> None:
        cutoff = utcnow() - timedelta(seconds=self.settings.live_resume_s + 2 * SEEN_EVERY_S)
        with self.ctx.db.session() as session:
            orphans = session.scalars(
                select(LiveCall).where(
                    LiveCall.status.in_((LIVE, DROPPED, ENDING)), LiveCall.seen_at < cutoff
                )
            ).all()
            for row in orphans:
                if row.status == ENDING:
                    row.status = DROPPED  # (the process storing it died)
            session.flush()
            found = [
                self._attach(row) for row in orphans if spool_folder(self.ctx, row.id).exists()
            ]
        for call in found:
            self.finish(call, incomplete=True)


def _ingest_token(session: Session, secret: str | None) -> ApiToken:
    token = auth.active_token(session, secret) if secret else None
    if token is None:
        raise LiveRefused("a valid API token is required")
    if token.scope != "ingest":
        raise LiveRefused("streaming a call needs a token with the ingest scope")
    return token


def _recent_sentiment(session: Session, live_call_id: int) -> float | None:
    scores = [
        s
        for s in session.scalars(
            select(LiveLine.sentiment)
            .where(
                LiveLine.live_call_id == live_call_id,
                LiveLine.speaker == Speaker.CUSTOMER,
                LiveLine.final.is_(True),
                LiveLine.alert.is_(None),
                LiveLine.sentiment.is_not(None),
            )
            .order_by(LiveLine.end_s.desc())
            .limit(RECENT_LINES)
        )
        if s is not None
    ]
    return round(sum(scores) / len(scores), 3) if scores else None


def _path(folder: Path, channel: int) -> Path:
    return folder / f"channel-{channel}.pcm"


def _samples(folder: Path, channel: int) -> int:
    path = _path(folder, channel)
    return path.stat().st_size // 2 if path.exists() else 0


def _write(folder: Path, channel: int, at: int, samples: np.ndarray) -> None:
    """SAMPLES written at sample AT of the channel's spool file (what is skipped stays silent)."""
    path = _path(folder, channel)
    with open(path, "r+b" if path.exists() else "w+b") as out:
        out.seek(at * 2)
        out.write(samples.astype("<i2").tobytes())


def _assemble(call: Call, path: Path) -> None:
    """The channels' spool files as one WAV file, as long as the longest."""
    length = max(call.written)
    audio = np.zeros((length, call.channels), dtype="<i2")
    for channel in range(call.channels):
        data = np.fromfile(_path(call.folder, channel), dtype="<i2")
        audio[: len(data), channel] = data
    with wave.open(str(path), "wb") as out:
        out.setnchannels(call.channels)
        out.setsampwidth(2)
        out.setframerate(call.rate)
        out.writeframes(audio.tobytes())


# --- reading live calls -----------------------------------------------------------------------


def call_dict(row: LiveCall) -> dict[str, Any]:
    """A live call as the Live page and the API show it."""
    streaming = row.status in (LIVE, DROPPED, ENDING)
    duration = (
        max(row.received_s, (utcnow() - row.started_at).total_seconds())
        if streaming
        else row.received_s
    )
    return {
        "id": row.id,
        "url": f"/live/{row.id}",
        "protocol": row.protocol,
        "external_id": row.external_id,
        "status": row.status,
        "agent": (row.agent.name or row.agent.external_id) if row.agent else None,
        "queue": row.queue.name if row.queue else None,
        "customer": (row.metadata_json.get("customer") or {}).get("name")
        or (row.metadata_json.get("customer") or {}).get("external_id"),
        "started_at": row.started_at.isoformat().replace("+00:00", "Z"),
        "duration_s": round(duration, 1),
        "received_s": round(row.received_s, 1),
        "language": row.language,
        "customer_sentiment": row.customer_sentiment,
        "alerts": row.alerts,
        "incomplete": row.incomplete,
        "error": row.error,
        "conversation_id": row.conversation_id,
        "conversation_url": f"/conversations/{row.conversation_id}"
        if row.conversation_id
        else None,
        "revision": row.revision,
    }


def line_dict(line: LiveLine) -> dict[str, Any]:
    """A line (or an alert) of a live call."""
    return {
        "id": line.id,
        "channel": line.channel,
        "utterance": line.utterance,
        "speaker": line.speaker,
        "start_s": line.start_s,
        "end_s": line.end_s,
        "text": line.text,
        "final": line.final,
        "sentiment": line.sentiment,
        "alert": line.alert,
        "revision": line.revision,
    }


def shown(session: Session, calls: Any) -> list[LiveCall]:
    """Of the live-call query CALLS, those streaming and those that ended in the last hour,
    newest first."""
    recent = utcnow() - SHOWN_FOR
    return list(
        session.scalars(
            calls.where((LiveCall.status != ENDED) | (LiveCall.ended_at >= recent)).order_by(
                LiveCall.started_at.desc(), LiveCall.id.desc()
            )
        )
    )


def changes(session: Session, row: LiveCall, after: int) -> list[LiveLine]:
    """ROW's lines and alerts changed since revision AFTER, in the order they were said."""
    return list(
        session.scalars(
            select(LiveLine)
            .where(LiveLine.live_call_id == row.id, LiveLine.revision > after)
            .order_by(LiveLine.start_s, LiveLine.id)
        )
    )
