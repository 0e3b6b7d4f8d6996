"""Shared fixtures: real data dirs, real SQLite files, real audio."""

from __future__ import annotations

import copy
import itertools
import math
import os
import struct
import subprocess
import sys
import uuid
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, make_url, select, table

from callscope import auth
from callscope.config import Settings
from callscope.context import Context
from callscope.demo import CALLS_DIR
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
    """The SPEC §7b example with a fresh external id (mono: no channel map)."""
    meta = copy.deepcopy(EXAMPLE_META)
    meta["external_id"] = f"CONV-{next(_ids):05d}"
    if mono:
        del meta["recording"]["channels"]
    meta.update(changes)
    return meta


def write_wav(path: Path, channels: list[list[float]], rate: int = 16000) -> Path:
    """Write 16-bit PCM WAV from per-channel float samples in [−1, 1]."""
    frames = bytearray()
    for samples in zip(*channels, strict=True):
        for s in samples:
            frames += struct.pack("<h", int(max(-1.0, min(1.0, s)) * 32767))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(len(channels))
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
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


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One speech-model cache for the whole run (the model is assembled once)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture
def settings(tmp_path: Path, model_dir: Path) -> Settings:
    return make_settings(tmp_path / "data", model_dir=model_dir)


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    context = Context.open(settings)
    yield context
    context.close()


@pytest.fixture
def admin_token(ctx: Context) -> str:
    with ctx.db.session() as session:
        auth.add_user(session, "root", "admin", "correct horse battery")
        return auth.create_token(session, "root", "tests")


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient, admin_token: str) -> TestClient:
    client.headers["Authorization"] = f"Bearer {admin_token}"
    return client


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


@pytest.fixture
def assert_nothing_stored(ctx: Context) -> Callable[[], None]:
    def check() -> None:
        counts = row_counts(ctx)
        assert all(v == 0 for v in counts.values()), counts
        assert stored_files(ctx) == []

    return check


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
