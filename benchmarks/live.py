"""Live calls: how long after someone stops speaking their line reaches the supervisor's page,
with several calls streaming at once at real-time pace.

Run:  .venv/bin/python -m benchmarks.live --calls 4 --minutes 10
      .venv/bin/python -m benchmarks.live --calls 6 --minutes 3     # (more calls, shorter)

`callscope serve` (its embedded worker too, as one machine runs it) on a fresh data dir; a
replay client plays the demo's three stereo calls (English, Indonesian, a real recorded call),
one after another on a loop, over the WebSocket at real-time pace in 20 ms frames: half the
calls as Twilio Media Streams (μ-law), half in the generic form (16-bit PCM), all at 8 kHz.
For each call a signed-in supervisor's browser stream (the Live page's Server-Sent Events) is
read, and each line's delay is the moment it arrives less the moment the replay had sent the
end of its last word. A call falls behind when its lines' delays grow over the run (the last
fifth's median over 2 s more than the first fifth's). The calls end with a stop; the report
gives the delay percentiles of final and partial lines, the server's memory, and whether each
call became a conversation.
Results go to benchmarks/results/live-<calls>x<minutes>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import numpy as np
import websockets
from scipy.signal import resample_poly

from callscope.context import Context
from callscope.governance import auth, policy
from tests.support import DEMO_CALLS, PASSWORD, free_port, make_meta, make_settings, settings_env
from tests.test_live import mulaw_encode

RESULTS = Path(__file__).parent / "results"
CALLS = (
    "synthetic_en_stereo.wav",
    "synthetic_id_stereo.wav",
    "auto_repairs_40_stereo_agentL_customerR.wav",
)
FRAME = 160


def call_audio(minutes: float) -> list[np.ndarray]:
    """The demo calls at 8 kHz (16-bit, a column a channel), each looped to MINUTES."""
    import wave

    found = []
    for name in CALLS:
        with wave.open(str(DEMO_CALLS / name)) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(
                -1, w.getnchannels()
            )
            rate = w.getframerate()
        audio = resample_poly(pcm.astype(np.float64), 8000, rate, axis=0)
        audio = np.clip(audio, -32768, 32767).astype(np.int16)
        repeats = int(minutes * 60 * 8000 // len(audio)) + 1
        found.append(np.concatenate([audio] * repeats)[: int(minutes * 60 * 8000)])
    return found


def sign_in(base: str) -> urllib.request.OpenerDirector:
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with browser.open(f"{base}/login", timeout=10) as page:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode())[1]  # type: ignore[index]
    form = {"username": "sup", "password": PASSWORD, "csrf_token": csrf}
    browser.open(f"{base}/login", urllib.parse.urlencode(form).encode(), timeout=10).close()
    return browser


async def replay(ws_base: str, token: str, n: int, audio: np.ndarray, sent_at: list[float]) -> dict:
    """Play AUDIO as call N at real-time pace; SENT_AT gets the wall time of each frame sent."""
    meta = make_meta(external_id=f"BENCH-{n}")
    meta.pop("recording")
    twilio = n % 2 == 0
    frames = len(audio) // FRAME
    path = "twilio" if twilio else "stream"
    headers = {} if twilio else {"Authorization": f"Bearer {token}"}
    async with websockets.connect(
        f"{ws_base}/api/v1/live/{path}", additional_headers=headers, max_size=None
    ) as ws:
        if twilio:
            await ws.send(
                json.dumps(
                    {
                        "event": "start",
                        "streamSid": f"MZ{n}",
                        "start": {
                            "streamSid": f"MZ{n}",
                            "callSid": f"CA{n}",
                            "tracks": ["inbound", "outbound"],
                            "customParameters": {"token": token, "metadata": json.dumps(meta)},
                            "mediaFormat": {
                                "encoding": "audio/x-mulaw",
                                "sampleRate": 8000,
                                "channels": 1,
                            },
                        },
                    }
                )
            )
            codes = [mulaw_encode(audio[:, c]) for c in (0, 1)]
        else:
            await ws.send(
                json.dumps(
                    {
                        "type": "start",
                        "stream_id": f"gen-{n}",
                        "metadata": meta,
                        "sample_rate": 8000,
                        "channels": 2,
                    }
                )
            )
            await ws.recv()
        start = time.monotonic()
        for i in range(frames):
            due = start + i * 0.02
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if twilio:
                for track, c in (("outbound", 0), ("inbound", 1)):
                    payload = base64.b64encode(codes[c][i * FRAME : (i + 1) * FRAME]).decode()
                    await ws.send(
                        json.dumps(
                            {
                                "event": "media",
                                "streamSid": f"MZ{n}",
                                "media": {
                                    "track": track,
                                    "timestamp": str(i * 20),
                                    "payload": payload,
                                },
                            }
                        )
                    )
            else:
                await ws.send(audio[i * FRAME : (i + 1) * FRAME].astype("<i2").tobytes())
            sent_at.append(time.time())
        ended = time.monotonic()
        await ws.send(
            json.dumps({"event": "stop", "streamSid": f"MZ{n}"} if twilio else {"type": "stop"})
        )
        answer = None if twilio else json.loads(await ws.recv())
        return {
            "call": n,
            "protocol": path,
            "late_s": round(ended - start - frames * 0.02, 2),
            "stopped": answer,
        }


def watch(
    base: str,
    browser: urllib.request.OpenerDirector,
    live_id: int,
    sent_at: list[float],
    found: list[dict],
) -> None:
    """Read the call's Server-Sent Events as the Live page does, noting each line's delay."""
    with browser.open(f"{base}/live/{live_id}/events", timeout=3600) as stream:
        kind = None
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "line":
                data = json.loads(line[6:])
                frame = int(data["end_s"] / 0.02)
                if data["alert"] or not data["text"] or frame >= len(sent_at):
                    continue
                found.append(
                    {
                        "final": data["final"],
                        "delay_s": time.time() - sent_at[frame],
                        "at_s": data["end_s"],
                        "speaker": data["speaker"],
                    }
                )
            elif (
                line.startswith("data: ")
                and kind == "call"
                and json.loads(line[6:])["status"] == "ended"
            ):
                return


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentiles(values: list[float]) -> dict:
    values = sorted(values)
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_s": round(statistics.median(values), 2),
        "p95_s": round(values[int(0.95 * (len(values) - 1))], 2),
        "max_s": round(values[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    audio = call_audio(args.minutes)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context.open(make_settings(Path(tmp)))
        with ctx.db.session() as session:
            auth.add_user(session, "boss", "admin", PASSWORD)
            auth.add_user(session, "sup", "admin", PASSWORD)
            token = auth.create_token(session, "boss", "pbx", "ingest")
            policy.set_value(session, "recordings.enabled", True)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "callscope", "serve", "--port", str(port)],
            env=settings_env(ctx.settings),
            stdout=subprocess.DEVNULL,
            stderr=open(Path(tempfile.gettempdir()) / "callscope-live-bench.log", "wb"),  # noqa: SIM115
        )
        base = f"http://127.0.0.1:{port}"
        time.sleep(15)  # (the server starts and its worker loads the models)
        idle_mb = rss_mb(server.pid)
        browser = sign_in(base)
        lines: list[list[dict]] = [[] for _ in range(args.calls)]
        sent: list[list[float]] = [[] for _ in range(args.calls)]
        peak = [idle_mb]

        async def run() -> list[dict]:
            tasks = [
                asyncio.create_task(
                    replay(base.replace("http", "ws"), token, n, audio[n % len(audio)], sent[n])
                )
                for n in range(args.calls)
            ]
            await asyncio.sleep(2)
            with browser.open(f"{base}/api/v1/live", timeout=10) as answer:
                ids = {c["external_id"]: c["id"] for c in json.load(answer)["items"]}
            watchers = [
                asyncio.to_thread(watch, base, browser, ids[f"BENCH-{n}"], sent[n], lines[n])
                for n in range(args.calls)
            ]
            watching = asyncio.gather(*watchers)
            while not all(t.done() for t in tasks):
                peak.append(rss_mb(server.pid))
                await asyncio.sleep(5)
            results = [t.result() for t in tasks]
            await asyncio.wait_for(watching, 300)
            return results

        replays = asyncio.run(run())
        every = [x for call in lines for x in call]
        behind = []
        for n, call in enumerate(lines):
            finals = sorted((x for x in call if x["final"]), key=lambda x: x["at_s"])
            fifth = max(1, len(finals) // 5)
            first = statistics.median(x["delay_s"] for x in finals[:fifth]) if finals else 0
            last = statistics.median(x["delay_s"] for x in finals[-fifth:]) if finals else 0
            behind.append(
                {
                    "call": n,
                    "first_fifth_p50_s": round(first, 2),
                    "last_fifth_p50_s": round(last, 2),
                    "behind": last - first > 2.0,
                }
            )
        time.sleep(3)
        with browser.open(f"{base}/api/v1/live", timeout=10) as answer:
            ended = json.load(answer)["items"]
        server.terminate()
        server.wait(30)
        ctx.close()
    report = {
        "machine": "2-core VM (this repository's CI machine type), CPU only",
        "calls": args.calls,
        "minutes": args.minutes,
        "final_lines": percentiles([x["delay_s"] for x in every if x["final"]]),
        "partial_lines": percentiles([x["delay_s"] for x in every if not x["final"]]),
        "falling_behind": behind,
        "replay": replays,
        "server_rss_mb": {
            "idle": round(idle_mb),
            "peak": round(max(peak)),
            "per_call": round((max(peak) - idle_mb) / args.calls),
        },
        "stored": [
            {"call": c["external_id"], "conversation": c["conversation_id"], "error": c["error"]}
            for c in ended
        ],
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"live-{args.calls}x{args.minutes:g}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
