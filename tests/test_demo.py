"""`callscope demo`: users, the shipped calls ingested and processed, repeatable."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from callscope.config import Settings
from tests.support import settings_env


@pytest.mark.model
def test_demo_sets_up_users_and_processed_calls(tmp_path, model_dir):
    """As `make demo` runs it: in a data dir of its own, on the SQLite database there (so the
    PostgreSQL pass leaves it out)."""
    env = settings_env(Settings(data_dir=tmp_path / "data", model_dir=model_dir))
    env["CALLSCOPE_PORT"] = "8123"

    def callscope(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "callscope", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )

    first = callscope("demo", "--no-serve")
    for user in ("admin", "supervisor", "daniel", "rina"):
        assert f"  {user} " in first.stdout
    assert "API token of admin: cs_" in first.stdout
    assert "Sign in at http://127.0.0.1:8123 " in first.stdout  # where the server will listen
    assert "API documentation: http://127.0.0.1:8123/api/docs" in first.stdout
    assert "processed 4 conversation(s)" in first.stderr
    assert "evaluation form 'Call quality (demo)' imported" in first.stderr
    docs = {}
    for external_id, language, channels in [
        ("DEMO-EN-1001", "en", 2),
        ("DEMO-ID-1002", "id", 2),
        ("DEMO-EN-1003", "en", 1),
        ("DEMO-EN-1004", "en", 2),
    ]:
        doc = json.loads(callscope("show", external_id, "--format", "json").stdout)
        docs[external_id] = doc
        assert doc["status"] == "processed"
        assert doc["transcript"]["language"] == language
        assert doc["recording"]["channels"] == channels
        assert doc["transcript"]["segments"]
    # the example categories matched as they were processed, in both languages
    found = {
        external_id: {c["name"] for c in doc["categories"]} for external_id, doc in docs.items()
    }
    assert {"Greeting", "Refund"} <= found["DEMO-EN-1001"]
    assert "Greeting" in found["DEMO-ID-1002"]
    forms = callscope("forms", "list").stdout
    assert "Call quality (demo)  (version 1, 5 questions)" in forms
    again = callscope("demo", "--no-serve")
    assert again.stdout == first.stdout
    assert "already there" in again.stderr and "processed 0 conversation(s)" in again.stderr
    assert "added" not in again.stderr and "imported" not in again.stderr  # (once only)
    assert "recordings.enabled     true" in callscope("settings", "list").stdout
