"""Helpers the test modules share (and the benchmarks reuse): test data, metadata, audio,
settings over a fresh database, the `callscope` command, signing in, hostile input, Chromium."""

from __future__ import annotations

import copy
import itertools
import math
import os
import re
import socket
import subprocess
import sys
import time
import uuid
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, make_url, select, table
from starlette.routing import compile_path

from callscope.config import Settings
from callscope.context import Context
from callscope.db.models import ConversationAnalysis, Segment, Word
from callscope.demo import CALLS_DIR
from callscope.governance import auth
from callscope.review import refresh
from callscope.web.app import create_app

# the admin database of a PostgreSQL server: when set, every test gets a database of its own
# there instead of a SQLite file (`make test` runs the suite both ways)
POSTGRES = os.environ.get("TEST_POSTGRES_URL")
DATA = Path(__file__).parent / "data"
FORMATS = DATA / "formats"
CALLS = DATA / "calls"
DEMO_CALLS = CALLS_DIR

EXAMPLE_META: dict[str, Any] = {
    "external_id": "CONV-1001",
    "channel": "voice",
    "customer": {
        "external_id": "CUST-77",
        "name": "Helen Brooks",
        "phone": "+1 555 0100",
        "email": "helen@example.com",
    },
    "queue": "Internet support",
    "workstream": "Voice - Support",
    "status": "closed",
    "status_reason": "resolved",
    "regarding": {
        "type": "case",
        "id": "CASE-77",
        "title": "Internet outage",
        "url": "https://crm.example.com/cases/77",
    },
    "started_at": "2026-11-20T14:00:00Z",
    "recording": {
        "started_at": "2026-11-20T14:00:00Z",
        "channels": {"0": "agent", "1": "customer"},
        "language": "en",
    },
    "consent": {"status": "granted", "method": "ivr_announcement", "at": "2026-11-20T14:00:00Z"},
    "sessions": [
        {
            "agent": {
                "external_id": "AG-1",
                "name": "Marcus Lee",
                "skills": ["internet", "english"],
            },
            "role": "primary",
            "started_at": "2026-11-20T14:00:00Z",
            "ended_at": "2026-11-20T14:05:00Z",
        }
    ],
}

_ids = itertools.count(1)


def make_meta(mono: bool = False, **changes: Any) -> dict[str, Any]:
    """The example of docs/ingest.md#metadata with a fresh external id (mono: no channel map)."""
    meta = copy.deepcopy(EXAMPLE_META)
    meta["external_id"] = f"CONV-{next(_ids):05d}"
    if mono:
        del meta["recording"]["channels"]
    meta.update(changes)
    return meta


def write_wav(path: Path, channels: Any, rate: int = 16000) -> Path:
    """Write 16-bit PCM WAV from per-channel float samples in [−1, 1] (channels × samples, as
    lists or an array; the channels of one length)."""
    audio = np.asarray(channels, dtype=np.float64)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(audio.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.T.tobytes())
    return path


def tone(seconds: float, freq: float = 440.0, level: float = 0.5, rate: int = 16000) -> list[float]:
    return [level * math.sin(2 * math.pi * freq * i / rate) for i in range(int(seconds * rate))]


def fresh_database_url() -> str:
    """A new, empty database: on the PostgreSQL server of this run, else none (SQLite)."""
    if not POSTGRES:
        return ""
    url = make_url(POSTGRES)
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def make_settings(data_dir: Path, **changes: Any) -> Settings:
    """Settings over DATA_DIR with a database of their own (SQLite there, or PostgreSQL)."""
    return Settings(data_dir=data_dir, database_url=fresh_database_url(), **changes)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment of a `callscope` process that works on SETTINGS' data."""
    env = {**os.environ, "CALLSCOPE_DATA_DIR": str(settings.data_dir)}
    env.pop("CALLSCOPE_DATABASE_URL", None)
    if settings.database_url:
        env["CALLSCOPE_DATABASE_URL"] = settings.database_url
    if settings.model_dir:
        env["CALLSCOPE_MODEL_DIR"] = str(settings.model_dir)
    return env


def row_counts(ctx: Context) -> dict[str, int]:
    """Rows in every table that an ingest writes to."""
    names = [
        n
        for n in inspect(ctx.db.engine).get_table_names()
        if n not in ("alembic_version", "settings", "users", "api_tokens")
        and not n.startswith("conversation_search_")  # FTS5's own tables
    ]
    with ctx.db.session() as session:
        return {n: session.scalar(select(func.count()).select_from(table(n))) for n in names}


def stored_files(ctx: Context) -> list[Path]:
    """Every file in the media store and the upload spool."""
    roots = [ctx.settings.media_dir, ctx.settings.tmp_dir]
    return sorted(p for root in roots if root.exists() for p in root.rglob("*") if p.is_file())


def callscope(ctx: Context, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """Run the `callscope` command as its own process on CTX's data."""
    return subprocess.run(
        [sys.executable, "-m", "callscope", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=settings_env(ctx.settings),
        timeout=300,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(
    settings: Settings,
    log: Path,
    port: int | None = None,
    env: dict[str, str] | None = None,
    worker: bool = False,
) -> Iterator[str]:
    """`callscope serve` (with its embedded WORKER or none) over SETTINGS' data on PORT
    (default: a free loopback port) with ENV's variables too, its errors written to LOG; its
    base URL once it accepts connections."""
    port = port or free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "callscope", "serve", "--port", str(port)]
        + ([] if worker else ["--no-worker"]),
        env=settings_env(settings) | (env or {}),
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115 (the server's, closed as it ends)
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every route of the app."""
    found = []
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute):
            continue  # the static files and the OpenAPI document
        for method in sorted(route.methods - {"HEAD"}):
            found.append((method, route.path))
    assert len(found) > 25
    return found


def fill_path(path: str, fill: dict[str, object]) -> str:
    """A route's PATH template with its parameters from FILL (each must be there)."""
    _regex, _format, params = compile_path(path)
    unknown = set(params) - set(fill)
    assert not unknown, f"route {path} has parameters the test does not know: {unknown}"
    return path.format(**fill)


@contextmanager
def admin_api(ctx: Context) -> Iterator[TestClient]:
    """A client of CTX's app that sends an administrator's API token."""
    with ctx.db.session() as session:
        auth.add_user(session, "ops", "admin", "long enough pw")
        token = auth.create_token(session, "ops", "ci")
    with TestClient(create_app(ctx)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


# --- signing in ------------------------------------------------------------------------------

PASSWORD = "a long test password"


def sign_in(client: TestClient, username: str) -> str:
    """Sign CLIENT in as USERNAME; the CSRF token of its browser session."""
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    res = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert res.status_code == 303, res.text
    page = client.get("/conversations").text
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)


# --- hostile input -----------------------------------------------------------------------------

PAYLOAD = '<script>window.pwned=1</script><img src=x onerror="window.pwned=1">'


def hostile_meta() -> dict:
    meta = make_meta(
        mono=True, queue=PAYLOAD, workstream=PAYLOAD, status_reason=PAYLOAD, channel=PAYLOAD[:50]
    )
    meta["customer"] = {"external_id": "CUST-XSS", "name": PAYLOAD, "phone": PAYLOAD}
    meta["regarding"] = {"type": PAYLOAD, "id": PAYLOAD, "title": PAYLOAD}
    meta["sessions"][0]["agent"] = {"external_id": "AG-1", "name": PAYLOAD, "skills": [PAYLOAD]}
    meta["sessions"][0]["role"] = PAYLOAD[:50]
    return meta


def plant_transcript(ctx: Context, conversation_id: int, text: str, **results: Any) -> None:
    """Give a conversation one transcript line of TEXT (as an import or a model might), and
    RESULTS (columns of its analysis), and refresh what derives from it."""
    with ctx.db.session() as session:
        session.add(
            Segment(
                conversation_id=conversation_id,
                position=0,
                speaker="customer",
                start_s=0.0,
                end_s=2.0,
                text=text,
                words=[Word(position=0, text=text, start_s=0.0, end_s=2.0, confidence=0.9)],
            )
        )
        session.flush()
        session.merge(ConversationAnalysis(conversation_id=conversation_id, **results))
        refresh.changed(session, [conversation_id])


# --- audio files callscope reads -------------------------------------------------------------

# file, container, codec, duration (s), channels, sample rate
READABLE = [
    (DEMO_CALLS / "synthetic_en_stereo.wav", "wav", "pcm_s16le", 163.092, 2, 16000),
    (DEMO_CALLS / "synthetic_id_stereo.wav", "wav", "pcm_s16le", 68.329, 2, 16000),
    (DEMO_CALLS / "commercial_mono.wav", "wav", "pcm_s16le", 45.3, 1, 8000),
    (
        DEMO_CALLS / "auto_repairs_40_stereo_agentL_customerR.wav",
        "wav",
        "pcm_s16le",
        245.38,
        2,
        8000,
    ),
    (CALLS / "auto0_mono_u8.wav", "wav", "pcm_u8", 277.66, 1, 8000),
    (CALLS / "katiesteve_mono.wav", "wav", "pcm_s16le", 19.181, 1, 16000),
    (FORMATS / "hello_44k.wav", "wav", "pcm_s16le", 0.504, 1, 44100),
    (FORMATS / "ingestion-client_test_audio_stereo.wav", "wav", "pcm_s16le", 1.72, 2, 16000),
    (FORMATS / "voicemail2text_en-US5secsGoodQuality2.wav", "wav", "pcm_mulaw", 5.96, 1, 8000),
    (FORMATS / "whatstheweatherlike-mulaw.wav", "wav", "pcm_mulaw", 2.03, 1, 16000),
    (FORMATS / "whatstheweatherlike.mp3", "mp3", "mp3float", 2.03, 1, 16000),
    (FORMATS / "whatstheweatherlike.opus", "ogg", "opus", 2.03, 1, 48000),
    (FORMATS / "whatstheweatherlike.wav", "wav", "pcm_s16le", 2.03, 1, 16000),
]


# --- the browser -----------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
# Root has no sandbox; the machine has no network, so nothing may phone home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch_chromium(playwright: Any) -> Any:
    """A headless Chromium browser from a sync Playwright instance."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
