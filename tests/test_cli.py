"""The `callscope` command, run as a real process against a real data dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.support import DEMO_CALLS, FORMATS, make_meta, make_settings, settings_env

STEREO = DEMO_CALLS / "synthetic_en_stereo.wav"


@pytest.fixture
def run(tmp_path: Path):
    settings = make_settings(tmp_path / "data")
    env = settings_env(settings)

    def call(*args: str, stdin: str = "", check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "callscope", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
        return proc

    call.settings = settings
    return call


def meta_file(tmp_path: Path, meta) -> str:
    path = tmp_path / f"{meta['external_id']}.json"
    path.write_text(json.dumps(meta))
    return str(path)


def test_init_creates_the_database(run, tmp_path):
    out = run("init").stdout
    assert "database ready" in out
    engine = create_engine(run.settings.resolved_database_url)
    assert "conversations" in inspect(engine).get_table_names()
    engine.dispose()
    if not run.settings.database_url:  # the default: SQLite in the data dir
        assert (tmp_path / "data" / "callscope.db").is_file()


def test_config_prints_the_settings_in_force(run, tmp_path):
    out = run("config").stdout
    assert f"data_dir         = {tmp_path / 'data'}" in out
    expected = run.settings.database_url or f"sqlite:///{tmp_path / 'data' / 'callscope.db'}"
    assert f"database (used)  = {expected}" in out


def test_config_file_is_read_and_env_overrides_it(tmp_path):
    cfg = tmp_path / "callscope.toml"
    cfg.write_text("[callscope]\nmax_upload_mb = 5\nport = 9001\n")
    env = {
        **os.environ,
        "CALLSCOPE_CONFIG": str(cfg),
        "CALLSCOPE_PORT": "9002",
        "CALLSCOPE_DATA_DIR": str(tmp_path / "d"),
    }
    out = subprocess.run(
        [sys.executable, "-m", "callscope", "config"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "max_upload_mb    = 5" in out and "port             = 9002" in out


def test_bad_setting_is_a_clear_error(tmp_path):
    env = {**os.environ, "CALLSCOPE_PORT": "eighty", "CALLSCOPE_DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "callscope", "config"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "CALLSCOPE_PORT" in proc.stderr and "Traceback" not in proc.stderr


def test_ingest_prints_id_and_json_line(run, tmp_path):
    meta = make_meta()
    out = run("ingest", str(STEREO), "--meta", meta_file(tmp_path, meta)).stdout
    assert out.strip().isdigit()
    again = json.loads(
        run("ingest", str(STEREO), "--meta", meta_file(tmp_path, meta), "--json").stdout
    )
    assert again == {
        "id": int(out),
        "external_id": meta["external_id"],
        "job": again["job"],
        "status": "queued",
    }
    doc = json.loads(run("show", meta["external_id"], "--format", "json").stdout)
    assert doc["id"] == int(out) and doc["overview"]["queue"] == "Internet support"
    assert doc["recording"]["duration_s"] == pytest.approx(163.09, abs=0.01)


def test_ingest_refusal_is_one_line_on_stderr(run, tmp_path):
    proc = run(
        "ingest",
        str(FORMATS / "ingestion-client_missing_wav_header.wav"),
        "--meta",
        meta_file(tmp_path, make_meta(mono=True)),
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("error: audio has no RIFF header: it is not a readable WAV file")


def test_ingest_with_metadata_missing_a_field(run, tmp_path):
    meta = make_meta()
    del meta["sessions"][0]["started_at"]
    proc = run("ingest", str(STEREO), "--meta", meta_file(tmp_path, meta), check=False)
    assert proc.returncode == 1
    assert "metadata.sessions[0].started_at is missing" in proc.stderr


def test_users_and_tokens(run):
    run(
        "users",
        "add",
        "alice",
        "--role",
        "admin",
        "--password-stdin",
        stdin="a good long password\n",
    )
    run(
        "users",
        "add",
        "bob",
        "--role",
        "agent",
        "--agent-id",
        "AG-1",
        "--password-stdin",
        stdin="another long password\n",
    )
    listing = run("users", "list").stdout
    assert "alice" in listing and "bob" in listing and "AG-1" in listing
    token = run("tokens", "create", "integration").stdout.strip()
    assert token.startswith("cs_") and len(token) > 40
    dup = run(
        "users",
        "add",
        "alice",
        "--role",
        "admin",
        "--password-stdin",
        stdin="a good long password\n",
        check=False,
    )
    assert dup.returncode == 1 and "already exists" in dup.stderr
    short = run(
        "users", "add", "carol", "--role", "admin", "--password-stdin", stdin="short\n", check=False
    )
    assert short.returncode == 1 and "at least 8 characters" in short.stderr


def test_token_without_any_admin_is_refused(run):
    proc = run("tokens", "create", "x", check=False)
    assert proc.returncode == 1 and "no administrator exists" in proc.stderr


def test_settings_set_and_list(run):
    assert "recordings.enabled     false" in run("settings", "list").stdout
    run("settings", "set", "recordings.enabled", "true")
    assert "recordings.enabled     true" in run("settings", "list").stdout
    bad = run("settings", "set", "recordings.enabled", "maybe", check=False)
    assert bad.returncode == 1 and "takes true or false" in bad.stderr
    unknown = run("settings", "set", "nope", "1", check=False)
    assert unknown.returncode == 1 and "unknown setting 'nope'" in unknown.stderr


def test_recompute_meaning_gives_calls_stored_before_it_their_lines_meaning(run, tmp_path):
    """Calls stored before lines kept their meaning (planted here: none) are found by meaning
    once recomputed."""
    transcript = tmp_path / "t.json"
    said = "I would like to cancel my contract please."
    transcript.write_text(
        json.dumps(
            {
                "language": "en",
                "segments": [{"speaker": "customer", "start_s": 0, "end_s": 3, "text": said}],
            }
        )
    )
    meta = make_meta(mono=True)
    run("import", str(transcript), "--meta", meta_file(tmp_path, meta))
    engine = create_engine(run.settings.resolved_database_url)
    with engine.begin() as db:
        db.execute(text("UPDATE segments SET meaning = NULL"))
    done = run("recompute", "--meaning", meta["external_id"])
    assert "recomputed the meaning of 1 conversation(s)" in done.stdout
    with engine.begin() as db:
        stored = db.execute(text("SELECT text, meaning FROM segments")).all()
    assert [(t, len(m)) for t, m in stored] == [(said, 192)]
    engine.dispose()


def test_show_unknown_conversation(run):
    proc = run("show", "NOPE", check=False)
    assert proc.returncode == 1 and "no conversation 'NOPE'" in proc.stderr


def test_recompute_sentiment_restores_what_the_scorer_says_and_is_audited(run, tmp_path):
    """A call scored by an older scorer (its stored sentiment planted here) is scored again
    from its stored words; the lines stay; unknown names change nothing."""
    transcript = tmp_path / "t.json"
    transcript.write_text(
        json.dumps(
            {
                "language": "en",
                "segments": [
                    {"speaker": "agent", "start_s": 0, "end_s": 2, "text": "How can I help?"},
                    {
                        "speaker": "customer",
                        "start_s": 3,
                        "end_s": 6,
                        "text": "The technician never showed up.",
                    },
                ],
            }
        )
    )
    meta = make_meta(mono=True)
    run("import", str(transcript), "--meta", meta_file(tmp_path, meta))
    engine = create_engine(run.settings.resolved_database_url)
    with engine.begin() as db:
        db.execute(text("UPDATE segments SET sentiment_score = 0.9, sentiment_label = 'positive'"))
        db.execute(text("UPDATE conversation_analysis SET sentiment_score = 0.9"))

    def labels() -> list:
        with engine.begin() as db:
            return db.execute(
                text("SELECT text, sentiment_label FROM segments ORDER BY position")
            ).all()

    assert run("recompute", "--sentiment", "NO-SUCH", check=False).returncode == 1
    assert [label for _t, label in labels()] == ["positive", "positive"]  # nothing changed
    assert run("recompute", meta["external_id"], check=False).returncode == 2  # what, then?
    done = run("recompute", "--sentiment", "--all")
    assert "recomputed the sentiment of 1 conversation(s)" in done.stdout
    assert labels() == [
        ("How can I help?", "neutral"),
        ("The technician never showed up.", "negative"),
    ]
    shown = json.loads(run("show", meta["external_id"], "--format", "json").stdout)
    assert shown["sentiment"]["customer"]["label"] == "negative"
    audit = [
        json.loads(line)
        for line in run("audit", "--action", "conversation.recompute", "--json").stdout.splitlines()
    ]
    assert [(e["actor"].split(":")[0], e["details"]["sentiment_before"]) for e in audit] == [
        ("cli", 0.9)
    ]
    engine.dispose()
