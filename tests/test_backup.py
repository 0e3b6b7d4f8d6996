"""`callscope backup` of a running instance and `callscope restore` into a fresh data dir;
what each refuses, with nothing changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from callscope.config import Settings
from callscope.context import Context
from callscope.db.models import Agent, Conversation, Recording
from callscope.governance import auth
from callscope.ops.backup import backup_key, signature
from callscope.processing import jobs
from callscope.processing.ingest import Ingestor
from callscope.processing.worker import Worker
from callscope.review import document
from callscope.store import sha256_of
from tests.support import FORMATS, PASSWORD, POSTGRES, fresh_database_url, make_meta

SHORT = FORMATS / "whatstheweatherlike.wav"


def sqlite_settings(data_dir: Path, model_dir: Path, key: Path | None = None) -> Settings:
    """Backup and restore work on SQLite and local media (whatever database the suite runs on);
    installations beside each other share one backup key (KEY: another)."""
    key = key or data_dir.parent / "backup.key"
    return Settings(data_dir=data_dir, database_url="", model_dir=model_dir, backup_key_file=key)


def callscope(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLSCOPE_")}
    env |= {"CALLSCOPE_DATA_DIR": str(settings.data_dir)}
    if settings.model_dir:
        env["CALLSCOPE_MODEL_DIR"] = str(settings.model_dir)
    if settings.database_url:
        env["CALLSCOPE_DATABASE_URL"] = settings.database_url
    if settings.media_url:
        env["CALLSCOPE_MEDIA_URL"] = settings.media_url
    if settings.backup_key_file:
        env["CALLSCOPE_BACKUP_KEY_FILE"] = str(settings.backup_key_file)
    return subprocess.run(
        [sys.executable, "-m", "callscope", *args], env=env, capture_output=True, text=True
    )


def tree(path: Path) -> dict[str, str]:
    """Every file under PATH with its checksum."""
    return {str(p.relative_to(path)): sha256_of(p) for p in path.rglob("*") if p.is_file()}


def documents(ctx: Context) -> dict[str, dict]:
    with ctx.db.session() as session:
        return {
            c.external_id: document.document(session, c)
            for c in session.scalars(select(Conversation).order_by(Conversation.id))
        }


@pytest.mark.own_sqlite
@pytest.mark.model
def test_a_running_instance_is_restored_with_every_call_audio_and_analysis(tmp_path, model_dir):
    source = sqlite_settings(tmp_path / "live", model_dir)
    ctx = Context.open(source)
    worker = Worker(ctx, warm_up=True)
    worker.start()
    try:
        ids = [Ingestor(ctx).ingest_file(SHORT, make_meta(mono=True)).id for _ in range(6)]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # back up once some calls are done, while others run
            with ctx.db.session() as session:
                if session.get_one(Conversation, ids[1]).processing_status == "processed":
                    break
            time.sleep(0.05)
        made = callscope(source, "backup", str(tmp_path / "backup"))
        assert made.returncode == 0, made.stderr
        assert made.stdout.startswith("backed up 6 conversation(s), ")
    finally:
        worker.stop(timeout=60)
    jobs.run_pending(ctx, "test")  # (the live instance finishes its calls after the backup)
    live = documents(ctx)
    ctx.close()

    target = sqlite_settings(tmp_path / "restored", model_dir)
    restored = callscope(target, "restore", str(tmp_path / "backup"))
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.startswith("restored 6 conversation(s), ")
    ctx = Context.open(target)
    try:
        at_backup = documents(ctx)
        assert at_backup.keys() == live.keys()  # every conversation
        done = [k for k, doc in at_backup.items() if doc["status"] == "processed"]
        assert len(done) >= 2
        for key in done:  # … those processed at the time: analysis as it was, audio intact
            assert at_backup[key] == live[key]
        with ctx.db.session() as session:
            for rec in session.scalars(select(Recording)):
                original = source.media_dir / rec.playback_key
                copy = ctx.store.local_path(rec.playback_key)
                if rec.conversation.external_id in done:
                    assert sha256_of(copy) == sha256_of(original)
        # the calls caught mid-way are processed again by the restored instance
        jobs.run_pending(ctx, "test")
        assert all(doc["status"] == "processed" for doc in documents(ctx).values())
    finally:
        ctx.close()


@pytest.fixture
def backed_up(tmp_path, model_dir) -> tuple[Settings, Path]:
    """A small instance (an imported call with its audio) and its backup."""
    settings = sqlite_settings(tmp_path / "data", model_dir)
    ctx = Context.open(settings)
    doc = {
        "language": "en",
        "transcript": {
            "segments": [
                {
                    "speaker": "agent",
                    "start_s": 0.1,
                    "end_s": 0.9,
                    "text": "Hello there",
                    "words": [
                        {"text": "Hello", "start_s": 0.1, "end_s": 0.4},
                        {"text": "there", "start_s": 0.5, "end_s": 0.9},
                    ],
                }
            ]
        },
    }
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc))
    ingestor = Ingestor(ctx)
    with open(SHORT, "rb") as stream:
        upload = ingestor.spool(stream, SHORT.name)
    meta = ingestor.check_metadata(make_meta(mono=True))
    ingestor.import_transcript(path.read_bytes(), "json", meta, upload, SHORT.name)
    ctx.close()
    done = callscope(settings, "backup", str(tmp_path / "backup"))
    assert done.returncode == 0, done.stderr
    return settings, tmp_path / "backup"


def refused(settings: Settings, *args: str) -> str:
    done = callscope(settings, *args)
    assert done.returncode == 1 and not done.stdout
    return done.stderr.strip()


@pytest.mark.own_sqlite
def test_the_backup_lists_every_file_with_its_checksum(backed_up):
    _settings, backup = backed_up
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["conversations"] == 1 and manifest["format"] == 1
    listed = {name: entry["sha256"] for name, entry in manifest["files"].items()}
    assert listed == {k: v for k, v in tree(backup).items() if k != "manifest.json"}
    assert "callscope.db" in listed and any(k.startswith("media/originals/") for k in listed)
    assert oct((backup / "callscope.db").stat().st_mode & 0o777) == "0o600"


@pytest.mark.own_sqlite
def test_backup_into_a_folder_that_is_not_empty_is_refused(backed_up):
    settings, backup = backed_up
    before = tree(backup)
    message = refused(settings, "backup", str(backup))
    assert message == f"error: {backup} exists and is not empty: name a new folder"
    assert tree(backup) == before


@pytest.mark.own_sqlite
def test_restore_onto_a_data_dir_in_use_is_refused(backed_up):
    settings, backup = backed_up
    before = tree(settings.data_dir)
    message = refused(settings, "restore", str(backup))
    assert message == f"error: {settings.data_dir} is not empty: restore into a new data dir"
    assert tree(settings.data_dir) == before


@pytest.mark.own_sqlite
@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("drop-manifest", "has no manifest.json: not a backup, or an unfinished one"),
        ("drop-media", "the backup is incomplete: media/originals/"),
        ("flip-database", "the backup is damaged: callscope.db does not match its checksum"),
        ("newer-schema", "the backup's schema (revision 9999) is newer than this version"),
        ("escape", "the manifest names a file outside the backup: '../secret'"),
        ("garbage", "manifest.json is not valid JSON"),
        ("files-a-list", "manifest.json is not a callscope backup manifest"),
        ("no-count", "manifest.json is not a callscope backup manifest"),
        ("no-checksum", "manifest.json lists callscope.db without its size and checksum"),
        ("link", "the backup holds a link, not a file: callscope.db"),
        ("unsigned", "manifest.json is not signed: restore it with --trust-foreign only if"),
        ("tampered", "manifest.json was changed after the backup was made"),
    ],
)
def test_a_damaged_or_newer_backup_is_refused_and_nothing_restored(
    backed_up, tmp_path, model_dir, damage, expected
):
    settings, backup = backed_up
    manifest_path = backup / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    key = backup_key(settings, make=False)
    assert key is not None

    def rewrite() -> None:  # (as someone holding the key would: what lies behind the signature)
        manifest["signature"] = signature(manifest, key)
        manifest_path.write_text(json.dumps(manifest))

    if damage == "drop-manifest":
        manifest_path.unlink()
    elif damage == "drop-media":
        next(p for p in backup.rglob("*") if "originals" in str(p) and p.is_file()).unlink()
    elif damage == "flip-database":
        data = bytearray((backup / "callscope.db").read_bytes())
        data[5000] ^= 0xFF
        (backup / "callscope.db").write_bytes(bytes(data))
    elif damage == "newer-schema":
        manifest["schema_revision"] = "9999"
        rewrite()
    elif damage == "files-a-list":
        manifest["files"] = list(manifest["files"])
        rewrite()
    elif damage == "no-count":
        del manifest["conversations"]
        rewrite()
    elif damage == "no-checksum":
        manifest["files"]["callscope.db"] = {"size": 1}
        rewrite()
    elif damage == "link":  # the same bytes, behind a link that could point anywhere
        (backup / "callscope.db").rename(tmp_path / "elsewhere.db")
        (backup / "callscope.db").symlink_to(tmp_path / "elsewhere.db")
    elif damage == "escape":
        manifest["files"]["../secret"] = {"sha256": "0" * 64, "size": 1}
        rewrite()
    elif damage == "unsigned":
        del manifest["signature"]
        manifest_path.write_text(json.dumps(manifest))
    elif damage == "tampered":  # (one more conversation than the backup holds, say)
        manifest["conversations"] += 1
        manifest_path.write_text(json.dumps(manifest))
    else:
        manifest_path.write_text("{not json")
    target = sqlite_settings(tmp_path / "fresh", model_dir)
    message = refused(target, "restore", str(backup))
    assert message.startswith("error: ") and expected in message
    assert not target.data_dir.exists()  # nothing restored, not even the folder


@pytest.mark.own_sqlite
def test_a_backup_from_another_installation_needs_trust_foreign(backed_up, tmp_path, model_dir):
    """Another installation's key (or none at all): refused naming why; --trust-foreign restores
    it, still checked file by file."""
    _settings, backup = backed_up
    keyless = sqlite_settings(tmp_path / "keyless", model_dir, key=tmp_path / "none" / "k")
    message = refused(keyless, "restore", str(backup))
    assert message.startswith("error: this installation has no backup key (")
    assert "--trust-foreign" in message and not keyless.data_dir.exists()
    other = sqlite_settings(tmp_path / "other", model_dir, key=tmp_path / "other.key")
    other.backup_key_file.write_text("b" * 64)  # type: ignore[union-attr]
    message = refused(other, "restore", str(backup))
    assert message.startswith("error: the backup was made by another installation (signed with")
    assert not other.data_dir.exists()
    done = callscope(other, "restore", "--trust-foreign", str(backup))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("restored 1 conversation(s), ")


@pytest.mark.own_sqlite
def test_the_first_backup_makes_a_key_readable_by_its_owner_only(backed_up):
    settings, _backup = backed_up
    key_file = settings.backup_key_file
    assert key_file is not None and not key_file.is_relative_to(settings.data_dir)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert len(key_file.read_text().strip()) == 64


@pytest.mark.own_sqlite
def test_restore_never_writes_a_database_outside_the_new_data_dir(backed_up, tmp_path, model_dir):
    """A database URL left pointing at the live database (outside the new data dir): refused,
    and the live database is as it was."""
    settings, backup = backed_up
    live = settings.data_dir / "callscope.db"
    ctx = Context.open(settings)
    with ctx.db.session() as session:
        auth.add_user(session, "added-after-the-backup", "agent", PASSWORD, "AG-9")
    ctx.close()
    before = sha256_of(live)
    target = sqlite_settings(tmp_path / "new", model_dir).model_copy(
        update={"database_url": f"sqlite:///{live}"}
    )
    message = refused(target, "restore", str(backup))
    assert message.startswith(f"error: the database {live} is outside the new data dir")
    assert sha256_of(live) == before and not target.data_dir.exists()


@pytest.mark.own_sqlite
def test_postgresql_and_object_stores_are_pointed_to_their_own_tools(tmp_path):
    postgres = Settings(data_dir=tmp_path, database_url="postgresql+psycopg://db.example/x")
    message = refused(postgres, "backup", str(tmp_path / "b"))
    assert "the database is not a SQLite file" in message and "pg_dump" in message
    s3 = Settings(data_dir=tmp_path, media_url="s3://bucket/media")
    assert "the media are in an object store" in refused(s3, "backup", str(tmp_path / "b"))
    assert not (tmp_path / "b").exists()


@pytest.mark.skipif(not POSTGRES, reason="needs the PostgreSQL server of make test's second pass")
def test_a_backup_is_restored_into_an_empty_postgresql_database(backed_up, tmp_path, model_dir):
    """Moving onto PostgreSQL: every row, the search index made there, ids going on after the
    restored ones; the same database again is refused (no longer empty)."""
    settings, backup = backed_up
    url = fresh_database_url()
    target = sqlite_settings(tmp_path / "moved", model_dir)
    done = callscope(target, "restore", "--database-url", url, str(backup))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("restored 1 conversation(s), ")
    assert not (target.data_dir / "callscope.db").exists()  # (the data dir's own: not written)
    source, moved = (
        Context.open(settings),
        Context.open(target.model_copy(update={"database_url": url})),
    )
    try:
        assert documents(moved) == documents(source)
        with moved.db.session() as session:
            indexed = "SELECT count(*) FROM conversation_search WHERE document @@ 'hello'::tsquery"
            assert session.scalar(text(indexed)) == 1  # (the search index PostgreSQL keeps)
            restored = session.scalar(select(func.max(Agent.id)))
            assert restored is not None  # (the imported call's agent)
            auth.add_user(session, "after-the-move", "agent", PASSWORD, "AG-9")
            session.flush()  # (would be a duplicate key if the ids started again at 1)
            assert session.scalar(select(func.max(Agent.id))) == restored + 1
    finally:
        source.close()
        moved.close()
    again = sqlite_settings(tmp_path / "again", model_dir)
    message = refused(again, "restore", "--database-url", url, str(backup))
    assert message.startswith("error: the database of --database-url is not empty (")


@pytest.mark.own_sqlite
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////tmp/elsewhere.db", "--database-url must name a PostgreSQL database"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", "cannot be reached: "),
        ("not a url", "--database-url is not a database URL"),
    ],
)
def test_restore_into_a_database_it_cannot_use_is_refused(
    backed_up, tmp_path, model_dir, url, expected
):
    _settings, backup = backed_up
    target = sqlite_settings(tmp_path / "fresh", model_dir)
    message = refused(target, "restore", "--database-url", url, str(backup))
    assert expected in message and not target.data_dir.exists()
