"""Shared fixtures: real data dirs, real SQLite files, real audio.

Markers (pyproject.toml): `model` for a test that loads the speech model or the voice encoder
(enforced below for this process), `browser` for Chromium, `services` for Redis or an S3 server.
`pytest -m "not model and not browser and not services"` runs the fast part.

A test touches the database when it uses a fixture that opens one (`settings`, `ctx` and those
built on them, or a fixture whose code opens settings, a context or an app), or opens one
itself. The PostgreSQL pass of `make test` runs only those: the others would run the same code
twice. Every other test is refused a database (enforced below), so none is left out wrongly.

`make test` runs each pass in parallel worker processes (pytest-xdist, a file to a worker): a
test keeps to its own folders, free ports and databases, never fixed ones."""

from __future__ import annotations

import inspect
import os
from collections import Counter
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

# password hashes of 1 MiB instead of 64 (a millisecond, not a fifth of a second, for each of the
# suite's hundreds of sign-ins): the same argon2id, in this process and the `callscope` ones it
# starts; the default is tested in test_admin.py
os.environ["CALLSCOPE_PASSWORD_MEMORY_KIB"] = "1024"

from callscope.config import Settings
from callscope.context import Context
from callscope.db import Database
from callscope.governance import auth
from callscope.speech import asr, diarization
from callscope.web.app import create_app
from tests.support import POSTGRES, make_settings, row_counts, stored_files

# what opens a database, in a fixture's or a test's own code
OPENS_DATABASE = (
    "make_settings(",
    "Context.open(",
    "fresh_database_url(",
    "create_app(",
    "Database(",
)


@cache
def _opens_database(function: Callable[..., Any]) -> bool:
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):  # a fixture of pytest's own
        return False
    return any(call in source for call in OPENS_DATABASE)


def touches_database(item: pytest.Item) -> bool:
    """Whether ITEM (a test) uses a database, through its fixtures or its own code."""
    definitions = item._fixtureinfo.name2fixturedefs  # type: ignore[attr-defined]
    if any(
        _opens_database(definition.func)
        for name in item.fixturenames  # type: ignore[attr-defined]
        for definition in definitions.get(name, ())
    ):
        return True
    return _opens_database(item.function)  # type: ignore[attr-defined]


# a test with one of these markers takes seconds to minutes, the others a fraction of a second
SLOW = {"model": 10, "services": 10, "browser": 3}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, only the tests that touch the run's database (not those marked
    `own_sqlite`, whose databases are SQLite files of their own either way); the slowest files
    first, so that the parallel workers of `make test` finish together (a slow file started
    last would keep one worker busy while the other waits)."""
    if POSTGRES:
        kept = [i for i in items if touches_database(i) and not i.get_closest_marker("own_sqlite")]
        if len(kept) < len(items):
            config.hook.pytest_deselected(items=list(set(items) - set(kept)))
            items[:] = kept
    weight: Counter[Path] = Counter()
    for item in items:
        weight[item.path] += max((SLOW.get(m.name, 1) for m in item.iter_markers()), default=1)
    items.sort(key=lambda item: -weight[item.path])  # (stable: a file's own order is kept)


@pytest.fixture(autouse=True)
def database_only_where_used(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test the PostgreSQL pass leaves out may open no database."""
    if touches_database(request.node):
        return

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError(
            f"{request.node.nodeid} opens a database its fixtures do not show: use `ctx`"
        )

    monkeypatch.setattr(Database, "__init__", refuse)


@pytest.fixture(autouse=True)
def models_only_where_marked(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test that loads the speech model or the voice encoder must say so (marker `model`), so
    that the fast selection stays fast."""
    if request.node.get_closest_marker("model") is not None:
        return

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError(f"{request.node.nodeid} loads a model: mark it `model`")

    monkeypatch.setattr(asr, "transcriber", refuse)
    monkeypatch.setattr(diarization, "_load_encoder", refuse)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """One speech-model cache for the whole run, its parallel workers included (the model is
    assembled into place in one rename, so two workers racing to assemble it are safe)."""
    root = tmp_path_factory.getbasetemp()
    path = (root.parent if worker_id != "master" else root) / "models"
    path.mkdir(exist_ok=True)
    return path


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


@pytest.fixture
def assert_nothing_stored(ctx: Context) -> Callable[[], None]:
    def check() -> None:
        counts = row_counts(ctx)
        assert all(v == 0 for v in counts.values()), counts
        assert stored_files(ctx) == []

    return check
