"""`/healthz` (the process answers) and `/readyz` (every part it needs works, or which does not)."""

from __future__ import annotations

from alembic import command
from fastapi.testclient import TestClient

from callscope.context import Context
from callscope.db import alembic_config
from callscope.store import LocalMediaStore
from callscope.web.app import create_app
from tests.support import make_settings


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
