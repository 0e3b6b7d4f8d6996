"""Live calls end to end: `callscope serve` with its worker, real WebSocket clients speaking
Twilio Media Streams, Genesys AudioHook and the generic form, the lines and alerts as the API
and the Live page (in Chromium) show them while the call goes on, and the conversation each
call becomes; bad streams end with their protocol's error and leave other streams alone."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.request
import wave
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest
import websockets
from sqlalchemy import select

from callscope.context import Context
from callscope.db.models import Conversation, LiveCall
from callscope.governance import auth, policy
from callscope.governance.audit import Actor
from callscope.processing import webhooks
from callscope.review import categories
from callscope.speech import streaming
from callscope.store import blob_key
from tests.support import PASSWORD, launch_chromium, make_meta, make_settings, serving
from tests.test_live_parts import demo_channels
from tests.test_webhooks import Receiver, verify

pytestmark = [pytest.mark.model, pytest.mark.services]
FRAME = 160  # 20 ms at 8 kHz, as Twilio sends them
RESUME_S = 3.0


@pytest.fixture(scope="module")
def served(tmp_path_factory, model_dir) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("live")
    ctx = Context.open(make_settings(data, model_dir=model_dir))
    receiver = Receiver(failures=0)
    with ctx.db.session() as session:
        auth.add_user(session, "boss", "admin", PASSWORD)
        token = auth.create_token(session, "boss", "pbx", "ingest")
        reader = auth.create_token(session, "boss", "dashboard", "read")
        policy.set_value(session, "recordings.enabled", True)
        upset = {"phrases": ["disappointed"], "speaker": "customer"}
        categories.add(session, Actor.cli(), "Disappointed", upset)
        _hook, secret = webhooks.add(session, Actor.cli(), receiver.url)
    env = {
        "CALLSCOPE_LIVE_MAX_SPEED": "1000",
        "CALLSCOPE_LIVE_RESUME_S": str(RESUME_S),
        "CALLSCOPE_LIVE_MAX_MINUTES": "1.5",
    }
    with serving(ctx.settings, data / "server.log", env=env, worker=True) as base:
        yield {
            "base": base,
            "ws": base.replace("http", "ws"),
            "token": token,
            "reader": reader,
            "ctx": ctx,
            "receiver": receiver,
            "secret": secret,
        }
    receiver.close()
    ctx.close()


def api(served: dict, path: str) -> Any:
    request = urllib.request.Request(  # noqa: S310 (loopback)
        served["base"] + path, headers={"Authorization": f"Bearer {served['token']}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (loopback)
        return json.load(answer)


def wait_for(check, timeout: float = 120.0, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError("waited in vain")


def stored_audio(ctx: Context, conversation_id: int) -> np.ndarray:
    """The original recording of a conversation, as 16-bit samples (a column a channel)."""
    with ctx.db.session() as session:
        conv = session.get(Conversation, conversation_id)
        assert conv is not None and conv.recording is not None
        path = ctx.store.local_path(blob_key(conv.recording.sha256))
        assert (conv.recording.sample_rate, conv.recording.channels) == (8000, 2)
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)


def mulaw_encode(samples: np.ndarray) -> bytes:
    """μ-law codes whose decoded values are nearest SAMPLES (the decoder's table inverted)."""
    order = np.argsort(streaming.MULAW)
    table = streaming.MULAW[order].astype(np.int32)
    at = np.clip(np.searchsorted(table, samples), 1, 255)
    nearer = np.where(samples - table[at - 1] <= table[at] - samples, at - 1, at)
    return order[nearer].astype(np.uint8).tobytes()


def processed(served: dict, conversation_id: int) -> dict:
    return wait_for(
        lambda: (
            (doc := api(served, f"/api/v1/conversations/{conversation_id}/analysis"))["status"]
            == "processed"
            and doc
        ),
        timeout=180,
    )


@asynccontextmanager
async def generic_stream(served: dict, stream_id: str, meta: dict) -> AsyncIterator[tuple]:
    """A generic-form stream of 8 kHz stereo, started: the connection and its `started`."""
    headers = {"Authorization": f"Bearer {served['token']}"}
    async with websockets.connect(
        f"{served['ws']}/api/v1/live/stream", additional_headers=headers
    ) as ws:
        start = {"type": "start", "stream_id": stream_id, "metadata": meta,
                 "sample_rate": 8000, "channels": 2}  # fmt: skip
        await ws.send(json.dumps(start))
        yield ws, json.loads(await ws.recv())


# --- the generic form -------------------------------------------------------------------------


def test_a_call_streams_in_its_lines_and_alert_come_live_and_it_lands_processed(served):
    audio = demo_channels(8000, 76.0)  # (the customer is "disappointed" at 58-70 s)
    meta = make_meta()
    meta["recording"] = {"channels": {"0": "agent", "1": "customer"}}

    async def stream() -> tuple[dict, list[dict], dict]:
        async with generic_stream(served, "gen-1", meta) as (ws, started):
            for at in range(0, len(audio), 1600):
                await ws.send(audio[at : at + 1600].astype("<i2").tobytes())
                await asyncio.sleep(0.005)
            live_call = started["live_call"]
            # lines and the alert come while the call is still going on
            during = await asyncio.to_thread(
                wait_for,
                lambda: (
                    (doc := api(served, f"/api/v1/live/{live_call}"))["alerts"]
                    and len([x for x in doc["lines"] if x["final"] and not x["alert"]]) >= 6
                    and doc
                ),
            )
            await ws.send(json.dumps({"type": "stop"}))
            stopped = json.loads(await ws.recv())
            return started, during["lines"], {**during, "stopped": stopped}

    started, lines, during = asyncio.run(stream())
    assert started["type"] == "started" and started["received_s"] == 0
    assert during["status"] == "live"
    said = [x for x in lines if not x["alert"] and x["final"]]
    assert {x["speaker"] for x in said} == {"agent", "customer"}
    assert "thank you for calling" in said[0]["text"].lower() and said[0]["speaker"] == "agent"
    assert all(x["sentiment"] is not None for x in said if x["text"])
    (alert,) = [x for x in lines if x["alert"]]
    assert alert["alert"] == "Disappointed" and alert["speaker"] == "customer"
    assert "disappointed" in alert["text"].lower() and 55 <= alert["start_s"] <= 70
    # the call became a conversation: its recording is exactly what was streamed
    conversation = during["stopped"]["conversation"]
    assert during["stopped"]["type"] == "stopped" and conversation
    assert np.array_equal(stored_audio(served["ctx"], conversation), audio)
    doc = processed(served, conversation)
    assert doc["external_id"] == meta["external_id"] and doc["recording"]["warnings"] == []
    assert "Disappointed" in [c["name"] for c in doc["categories"]]
    ended = api(served, f"/api/v1/live/{started['live_call']}")
    assert (ended["status"], ended["conversation_id"]) == ("ended", conversation)
    # the alert went out as a signed webhook event
    events = wait_for(
        lambda: [(h, b) for h, b in served["receiver"].requests if b'"conversation.alert"' in b]
    )
    headers, body = events[0]
    assert verify(served["secret"], headers, body)
    assert json.loads(body)["alert"]["category"] == "Disappointed"


# --- Twilio -----------------------------------------------------------------------------------


def twilio_start(stream: str, token: str, meta: dict) -> str:
    return json.dumps({
        "event": "start", "streamSid": stream,
        "start": {
            "streamSid": stream, "callSid": f"CA-{stream}", "tracks": ["inbound", "outbound"],
            "customParameters": {"token": token, "metadata": json.dumps(meta)},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    })  # fmt: skip


def twilio_frames(stream: str, audio: np.ndarray, first: int, last: int) -> list[str]:
    """Media messages of frames FIRST…LAST-1 of both tracks (outbound: the agent, channel 0)."""
    frames = []
    for n in range(first, last):
        for track, channel in (("outbound", 0), ("inbound", 1)):
            payload = mulaw_encode(audio[n * FRAME : (n + 1) * FRAME, channel])
            frames.append(json.dumps({
                "event": "media", "streamSid": stream,
                "media": {"track": track, "chunk": str(n), "timestamp": str(n * 20),
                          "payload": base64.b64encode(payload).decode()},
            }))  # fmt: skip
    return frames


def test_a_twilio_call_that_drops_and_resumes_is_one_call_without_duplicates(served):
    audio = demo_channels(8000, 24.0)
    heard = streaming.mulaw(mulaw_encode(audio.ravel())).reshape(-1, 2)  # (what μ-law keeps)
    frames = len(audio) // FRAME
    url = f"{served['ws']}/api/v1/live/twilio"
    meta = make_meta()
    del meta["recording"]

    async def stream() -> dict:
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"event": "connected", "protocol": "Call"}))
            await ws.send(twilio_start("MZ-resume", served["token"], meta))
            for message in twilio_frames("MZ-resume", audio, 0, frames // 2):
                await ws.send(message)
        # (the connection went without a stop; it comes back within the resume time)
        async with websockets.connect(url) as ws:
            await ws.send(twilio_start("MZ-resume", served["token"], meta))
            for message in twilio_frames("MZ-resume", audio, frames // 2 - 50, frames):
                await ws.send(message)  # (the last second before the drop comes again)
            await ws.send(json.dumps({"event": "stop", "streamSid": "MZ-resume"}))
            await ws.wait_closed()
            return {"code": ws.close_code}

    closed = asyncio.run(stream())
    assert closed["code"] == 1000
    with served["ctx"].db.session() as session:
        row = session.scalars(select(LiveCall).where(LiveCall.stream_id == "MZ-resume")).one()
        assert (row.status, row.incomplete, row.external_id) == (
            "ended",
            False,
            meta["external_id"],
        )
        conversation = row.conversation_id
    assert conversation is not None
    stored = stored_audio(served["ctx"], conversation)
    assert np.array_equal(stored, heard[: frames * FRAME])  # (each sample once, in its place)
    lines = api(served, f"/api/v1/live/{row.id}")["lines"]
    for channel in (0, 1):
        mine = sorted((x for x in lines if x["channel"] == channel), key=lambda x: x["start_s"])
        assert mine, f"channel {channel} has no line"
        assert all(a["end_s"] <= b["start_s"] + 0.05 for a, b in zip(mine, mine[1:], strict=False))


# --- AudioHook --------------------------------------------------------------------------------


def audiohook_message(kind: str, seq: int, **parameters: Any) -> str:
    return json.dumps({"version": "2", "type": kind, "seq": seq, "serverseq": seq - 1,
                       "id": "hook-1", "position": "PT0S", "parameters": parameters})  # fmt: skip


def test_an_audiohook_session_is_answered_in_sequence_and_stored(served):
    audio = demo_channels(8000, 12.0)
    meta = make_meta()
    del meta["recording"]
    stereo = np.stack([audio[:, 1], audio[:, 0]], axis=1)  # (external: the customer, first)
    media_offer = [{"type": "audio", "format": "PCMU", "channels": ["external", "internal"],
                    "rate": 8000}]  # fmt: skip

    async def stream(key: str) -> tuple[list[dict], int | None, str]:
        answers = []
        async with websockets.connect(
            f"{served['ws']}/api/v1/live/audiohook", additional_headers={"X-API-KEY": key}
        ) as ws:
            await ws.send(audiohook_message(
                "open", 1, organizationId="org", conversationId="conv-1",
                participant={"id": "p", "ani": "+62811", "aniName": "", "dnis": "+1"},
                media=media_offer, language="en-US", customConfig={"metadata": meta},
            ))  # fmt: skip
            answers.append(json.loads(await ws.recv()))
            if answers[0]["type"] == "opened":
                await ws.send(audiohook_message("ping", 2))
                answers.append(json.loads(await ws.recv()))
                data = mulaw_encode(stereo.ravel())
                for at in range(0, len(data), 3200):
                    await ws.send(data[at : at + 3200])
                await ws.send(audiohook_message("close", 3, reason="end"))
                answers.append(json.loads(await ws.recv()))
            await ws.wait_closed()
            return answers, ws.close_code, ws.close_reason or ""

    refused, code, reason = asyncio.run(stream("not a token"))
    assert refused[0]["type"] == "disconnect" and refused[0]["parameters"]["reason"] == "error"
    assert (code, reason) == (1008, "a valid API token is required")
    answers, code, _reason = asyncio.run(stream(served["token"]))
    assert [a["type"] for a in answers] == ["opened", "pong", "closed"] and code == 1000
    assert [(a["seq"], a["clientseq"]) for a in answers] == [(1, 1), (2, 2), (3, 3)]
    assert answers[0]["parameters"]["media"] == media_offer
    with served["ctx"].db.session() as session:
        row = session.scalars(select(LiveCall).where(LiveCall.stream_id == "hook-1")).one()
        assert row.channel_map == {"0": "customer", "1": "agent"}
        conversation = row.conversation_id
    assert conversation is not None
    doc = processed(served, conversation)
    assert doc["overview"]["customer"]["phone"] == meta["customer"]["phone"]  # (not the ANI)
    assert {s["speaker"] for s in doc["transcript"]["segments"]} == {"agent", "customer"}


# --- bad streams ------------------------------------------------------------------------------


async def closed_by(served: dict, path: str, messages: list, headers: dict | None = None) -> tuple:
    async with websockets.connect(f"{served['ws']}{path}", additional_headers=headers or {}) as ws:
        try:
            for message in messages:
                await ws.send(message)
            while True:
                await asyncio.wait_for(ws.recv(), 30)
        except websockets.ConnectionClosed:
            pass
        return ws.close_code, ws.close_reason


def test_bad_streams_end_with_their_error_and_leave_a_good_one_alone(served):
    token = served["token"]
    meta = make_meta()
    del meta["recording"]
    generic = json.dumps({"type": "start", "stream_id": "bad-frame", "metadata": meta,
                          "sample_rate": 8000, "channels": 2})  # fmt: skip
    bearer = {"Authorization": f"Bearer {token}"}
    bad = [
        ("/api/v1/live/twilio", ["{nope"], None, 1007, "not JSON"),
        ("/api/v1/live/twilio", [json.dumps({"event": "dance"})], None, 1002, "dance"),
        ("/api/v1/live/twilio", [twilio_start("MZ-a", token, make_meta()),
                                 *twilio_frames("MZ-zzz", demo_channels(8000, 1.0), 0, 1)],
         None, 1008, "MZ-zzz"),  # fmt: skip
        ("/api/v1/live/twilio", [twilio_start("MZ-b", served["reader"], make_meta())], None,
         1008, "ingest scope"),
        ("/api/v1/live/twilio",
         [twilio_start("MZ-c", token, make_meta()).replace("audio/x-mulaw", "audio/opus")],
         None, 1003, "audio/opus"),
        ("/api/v1/live/stream", [generic, b"\x00\x01\x02"], bearer, 1007, "3 bytes"),
        ("/api/v1/live/stream", [generic.replace("bad-frame", "big"), bytes(70_000)], bearer,
         1009, "70000 bytes"),
        ("/api/v1/live/stream",
         [json.dumps({"type": "start", "stream_id": "no-agent", "metadata": {"sessions": []},
                      "sample_rate": 8000, "channels": 1})],
         bearer, 1007, "metadata.sessions"),
    ]  # fmt: skip
    good = demo_channels(8000, 8.0)
    meta_good = make_meta()
    del meta_good["recording"]

    async def everything() -> tuple[list, tuple]:
        async def good_stream() -> tuple:
            async with websockets.connect(f"{served['ws']}/api/v1/live/twilio") as ws:
                await ws.send(twilio_start("MZ-good", token, meta_good))
                for message in twilio_frames("MZ-good", good, 0, len(good) // FRAME):
                    await ws.send(message)
                    await asyncio.sleep(0)
                await ws.send(json.dumps({"event": "stop", "streamSid": "MZ-good"}))
                await ws.wait_closed()
                return ws.close_code, ws.close_reason

        results = await asyncio.gather(
            good_stream(), *(closed_by(served, p, m, h) for p, m, h, _c, _r in bad)
        )
        return list(results[1:]), results[0]

    refused, fine = asyncio.run(everything())
    for (path, _m, _h, code, reason), (got_code, got_reason) in zip(bad, refused, strict=True):
        assert got_code == code and reason in got_reason, (path, code, reason, got_code, got_reason)
    assert fine == (1000, "")
    with served["ctx"].db.session() as session:
        good_row = session.scalars(select(LiveCall).where(LiveCall.stream_id == "MZ-good")).one()
        assert good_row.conversation_id is not None and good_row.error is None
        stored = set(session.scalars(select(LiveCall.stream_id)))
    assert not stored & {"MZ-b", "MZ-c", "no-agent"}  # (refused before anything was kept)


def test_a_call_cut_off_or_over_the_limit_is_kept_incomplete(served):
    audio = demo_channels(8000, 95.0)
    meta = make_meta()
    del meta["recording"]

    async def over_the_limit() -> tuple:
        return await closed_by(
            served,
            "/api/v1/live/twilio",
            [twilio_start("MZ-long", served["token"], meta),
             *twilio_frames("MZ-long", audio, 0, len(audio) // FRAME)],
        )  # fmt: skip

    code, reason = asyncio.run(over_the_limit())
    assert (code, reason) == (1008, "the call is longer than the 1.5-minute limit")
    # it does not come back within the resume time: it ends, incomplete, with what came
    with served["ctx"].db.session() as session:
        row = session.scalars(select(LiveCall).where(LiveCall.stream_id == "MZ-long")).one()
        assert row.status in ("dropped", "ending", "ended")
        live_id = row.id
    ended = wait_for(lambda: (doc := api(served, f"/api/v1/live/{live_id}"))["status"] == "ended"
                     and doc, timeout=RESUME_S + 60)  # fmt: skip
    assert ended["incomplete"] and ended["conversation_id"]
    assert 89.9 <= len(stored_audio(served["ctx"], ended["conversation_id"])) / 8000 <= 90.0
    doc = processed(served, ended["conversation_id"])
    assert [w["code"] for w in doc["recording"]["warnings"]] == ["incomplete"]


# --- the Live page ----------------------------------------------------------------------------


@pytest.mark.browser
def test_the_live_page_shows_lines_and_an_alert_arriving(served):
    from playwright.sync_api import sync_playwright

    audio = demo_channels(8000, 76.0)
    meta = make_meta()
    meta["recording"] = {"channels": {"0": "agent", "1": "customer"}}

    async def stream(send_more: asyncio.Event, stop: asyncio.Event) -> None:
        async with generic_stream(served, "page-1", meta) as (ws, _started):
            for at in range(0, 8000 * 12, 1600):
                await ws.send(audio[at : at + 1600].astype("<i2").tobytes())
            await send_more.wait()
            for at in range(8000 * 12, len(audio), 1600):
                await ws.send(audio[at : at + 1600].astype("<i2").tobytes())
                await asyncio.sleep(0.005)
            await stop.wait()
            await ws.send(json.dumps({"type": "stop"}))
            await ws.recv()

    import threading

    loop = asyncio.new_event_loop()
    send_more, stop = asyncio.Event(), asyncio.Event()
    streamer = threading.Thread(target=lambda: loop.run_until_complete(stream(send_more, stop)))
    streamer.start()
    try:
        live_id = wait_for(
            lambda: [c["id"] for c in api(served, "/api/v1/live")["items"]
                     if c["external_id"] == meta["external_id"]],
            timeout=30,
        )[0]  # fmt: skip
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_context().new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{served['base']}/login")
            page.locator("input[name=username]").fill("boss")
            page.locator("input[name=password]").fill(PASSWORD)
            page.locator("button[type=submit]").click()
            page.wait_for_url(lambda url: "/login" not in url)
            page.goto(f"{served['base']}/live")
            page.get_by_role("link", name=meta["external_id"]).click()
            page.wait_for_url(f"{served['base']}/live/{live_id}")
            first = page.locator("#live-transcript .line.agent").first
            first.wait_for(timeout=120_000)
            assert "thank you for calling" in first.inner_text().lower()
            assert page.locator("#live-alerts .alert").count() == 0
            loop.call_soon_threadsafe(send_more.set)
            alert = page.locator("#live-alerts .alert")
            alert.wait_for(timeout=120_000)
            assert "Disappointed" in alert.inner_text()
            assert page.locator("#live-timeline .mark").count() == 1
            assert page.locator("#live-timeline .customer .block").count() >= 3
            loop.call_soon_threadsafe(stop.set)
            link = page.get_by_role("link", name="The call has ended: open the conversation")
            link.wait_for(timeout=120_000)
            assert page.locator("#live-state").inner_text().startswith("ended")
            assert errors == []
            browser.close()
    finally:
        loop.call_soon_threadsafe(send_more.set)
        loop.call_soon_threadsafe(stop.set)
        streamer.join(120)
