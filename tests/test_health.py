"""`/healthz` (the process answers), `/readyz` (every part it needs works, or which does not)
and `callscope doctor` (the whole setup as configured)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from alembic import command
from fastapi.testclient import TestClient

from callscope.context import Context
from callscope.db import alembic_config, schema_revisions
from callscope.db.models import Conversation, Job, utcnow
from callscope.ops import checks
from callscope.store import LocalMediaStore
from callscope.web.app import create_app
from tests.support import make_settings, settings_env


def test_a_working_setup_is_ready(client: TestClient):
    assert client.get("/healthz").json() == {"status": "ok"}
    res = client.get("/readyz")
    assert res.status_code == 200
    assert res.json() == {
        "status": "ready",
        "checks": {
            "database": "ok",
            "media_store": "ok",
            "broker": "not used (workers poll the database)",
            "speech_model": "not used here (no worker in this process)",
            "sentence_meaning": "ok",
        },
    }


def test_an_old_schema_is_not_ready_and_says_what_to_do(ctx: Context, client: TestClient):
    with ctx.db.engine.begin() as conn:
        cfg = alembic_config(str(ctx.db.engine.url))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "-1")
    res = client.get("/readyz")
    assert res.status_code == 503 and res.json()["status"] == "not ready"
    database = res.json()["checks"]["database"]
    assert database.startswith("failing: the schema is at revision ")
    assert "run `callscope init`" in database
    assert res.json()["checks"]["media_store"] == "ok"  # the others are still checked


def test_an_unwritable_media_store_is_named_without_its_path(ctx: Context, client: TestClient):
    blocker = ctx.settings.data_dir / "not-a-folder"
    blocker.write_text("a file where the media folder should be")
    assert isinstance(ctx.store, LocalMediaStore)
    ctx.store.root = blocker  # (what a lost mount or a full disk looks like to the process)
    res = client.get("/readyz")
    assert res.status_code == 503
    media = res.json()["checks"]["media_store"]
    assert media.startswith("failing: ") and "server log" in media
    assert str(blocker) not in res.text  # paths stay in the log


def test_a_broker_that_does_not_answer_is_not_ready(tmp_path, model_dir):
    settings = make_settings(tmp_path, model_dir=model_dir).model_copy(
        update={"broker_url": "redis://127.0.0.1:9/0"}  # (nothing listens on the discard port)
    )
    ctx = Context.open(settings)
    try:
        with TestClient(create_app(ctx)) as client:
            res = client.get("/readyz")
        assert res.status_code == 503
        assert res.json()["checks"]["broker"].startswith("failing: ")
        assert res.json()["checks"]["database"] == "ok"
    finally:
        ctx.close()


def test_a_worker_process_is_not_ready_until_its_speech_model_is_assembled(tmp_path):
    ctx = Context.open(make_settings(tmp_path, model_dir=tmp_path / "no-models-yet"))
    try:
        app = create_app(ctx)
        app.state.with_worker = True  # (as `serve` with its worker; not started here)
        with TestClient(app) as client:
            res = client.get("/readyz")
        assert res.status_code == 503
        assert res.json()["checks"]["speech_model"] == (
            "failing: speech model 'base' is not assembled yet (the worker is loading it)"
        )
    finally:
        ctx.close()


def doctor(ctx: Context, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "callscope", "doctor"],
        env={**os.environ, **settings_env(ctx.settings), **env},
        capture_output=True,
        text=True,
    )


def marks(stdout: str) -> dict[str, str]:
    """✓ or ✗ of each check doctor printed."""
    return {m[2]: m[1] for m in re.finditer(r"^([✓✗]) (\S+(?: \S+)?)  ", stdout, re.M)}


def test_doctor_checks_every_part_of_a_working_setup(ctx: Context):
    done = doctor(ctx)
    assert done.returncode == 0, done.stdout + done.stderr
    assert marks(done.stdout) == dict.fromkeys(
        [
            "settings",
            "database",
            "media store",
            "broker",
            "workers",
            "speech model",
            "sentence meaning",
            "decoding",
            "free disk",
            "clock",
        ],
        "✓",
    )
    assert "SHA-256" in done.stdout or "not assembled yet" in done.stdout
    assert re.search(r"^✓ decoding +commercial_mono\.wav: 45\.\d s at 8000 Hz$", done.stdout, re.M)


def test_doctor_names_what_fails_and_what_to_do(ctx: Context):
    with ctx.db.engine.begin() as conn:
        cfg = alembic_config(str(ctx.db.engine.url))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "-1")
    with ctx.db.session() as session:  # a job that nobody took for an hour
        conv = Conversation(external_id="X-1", started_at=utcnow())
        session.add(conv)
        session.flush()
        session.add(Job(conversation_id=conv.id, created_at=utcnow() - timedelta(hours=1)))
    done = doctor(ctx, CALLSCOPE_ASR_MODEL=str(ctx.settings.data_dir / "no-such-model"))
    assert done.returncode == 1
    found = marks(done.stdout)
    assert found["database"] == found["workers"] == found["speech model"] == "✗"
    assert found["media store"] == found["decoding"] == "✓"  # the others are still checked
    assert "→ run `callscope init`" in done.stdout
    assert re.search(r"✗ workers +1 job\(s\) waiting, the oldest since ", done.stdout)
    assert "→ run `callscope serve` (it has a worker) or `callscope worker`" in done.stdout
    assert done.stderr.strip() == "3 check(s) failed: database, workers, speech model"
    # nothing was changed: the schema is still where it was
    assert schema_revisions(ctx.db.engine)[0] != schema_revisions(ctx.db.engine)[1]


def test_doctor_with_unusable_settings_says_which(ctx: Context):
    done = doctor(ctx, CALLSCOPE_PORT="eighty")
    assert done.returncode == 1
    assert re.match(r"✗ settings +invalid settings: CALLSCOPE_PORT: ", done.stdout), done.stdout
    assert "→ correct it in the environment or the settings file" in done.stdout


def test_media_store_checks_made_at_once_all_pass_and_leave_nothing(ctx: Context):
    """/readyz is asked by several probes at once: each check writes a file of its own (one
    shared file had one check take away another's, and 14 of 40 answered 503)."""
    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(lambda _: checks.media_store(ctx), range(40)))
    assert answers == ["writable and readable"] * 40
    assert not any(ctx.store.local_path("health").iterdir())
