"""`callscope backup` and `callscope restore`: a consistent copy of a running instance (SQLite
database and local media), with a manifest of checksums that restore verifies first.

The database is copied with SQLite's online backup API, which reads one consistent snapshot
while others keep writing. Then the media files that snapshot refers to are copied; a file
written later belongs to a call the snapshot does not have yet, and one erased meanwhile is left
out (erasure wins). The manifest is written last, so an interrupted backup has none and is
refused. The manifest is signed (HMAC-SHA256) with the installation's backup key, which lives
outside the data dir: restore takes a backup it did not make only when told to trust it, so a
backup altered or planted by whoever could write where backups are kept is refused. With
PostgreSQL or an object store, their own tools do this (docs/deployment.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Integer, create_engine, inspect, make_url, select, text
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from callscope import __version__, errors
from callscope.config import Settings
from callscope.db import Database, alembic_config
from callscope.db.models import Base
from callscope.processing import jobs
from callscope.review import refresh
from callscope.store import blob_key, local_root, sha256_of

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE = "callscope.db"
SECRET = "secret.key"  # signs session cookies: restored, signed-in users stay signed in
MEDIA = "media"


class BackupRefused(errors.Refused):
    """A backup or restore that cannot be done as asked; nothing was changed."""


@dataclass(frozen=True)
class Summary:
    """What a backup holds."""

    path: Path
    schema_revision: str
    conversations: int
    media_files: int
    media_bytes: int

    def __str__(self) -> str:
        return (
            f"{self.conversations} conversation(s), {self.media_files} media file(s)"
            f" ({self.media_bytes / 1024**2:.1f} MiB), schema {self.schema_revision}"
        )


def _sqlite_path(settings: Settings, refusal: str) -> Path:
    """The SQLite file of SETTINGS' database; REFUSAL where the database is not one."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        raise BackupRefused(refusal)
    return Path(url.database)


def _media_root(settings: Settings) -> Path:
    root = local_root(settings.media_url, settings.media_dir)
    if root is None:
        raise BackupRefused(
            "the media are in an object store: back them up with its own tools "
            "(bucket versioning or replication; see docs/deployment.md#backup-and-restore)"
        )
    return root


def backup_key(settings: Settings, *, make: bool) -> bytes | None:
    """The installation's backup signing key; made (random, readable by its owner only) when
    MAKE and there is none yet, else None when there is none."""
    path = settings.resolved_backup_key_file
    if make and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
                out.write(secrets.token_hex(32) + "\n")
        except FileExistsError:
            pass  # (made meanwhile by another backup: read that one)
    try:
        key = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise BackupRefused(f"the backup key {path} cannot be read: {exc}") from exc
    if len(key) < 32:
        raise BackupRefused(f"the backup key {path} is too short (at least 32 characters)")
    return key.encode()


def signature(manifest: dict, key: bytes) -> dict[str, str]:
    """The signature of MANIFEST (all but its own `signature`) by KEY, with the key's id."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return {
        "key_id": hashlib.sha256(key).hexdigest()[:16],
        "hmac_sha256": hmac.new(key, canonical, hashlib.sha256).hexdigest(),
    }


def _check_signature(settings: Settings, src: Path, manifest: dict) -> None:
    """Refuse a manifest not signed by this installation's backup key."""
    trust = "restore it with --trust-foreign only if you know where it came from"
    key = backup_key(settings, make=False)
    if key is None:
        raise BackupRefused(
            f"this installation has no backup key ({settings.resolved_backup_key_file}) to check"
            f" the backup's signature with: copy the key of the installation that made it"
            f" there, or {trust}"
        )
    signed = manifest.get("signature")
    expected = signature(manifest, key)
    if not isinstance(signed, dict) or not signed.get("hmac_sha256"):
        raise BackupRefused(f"{src / MANIFEST} is not signed: {trust}")
    if signed.get("key_id") != expected["key_id"]:
        raise BackupRefused(
            f"the backup was made by another installation (signed with key"
            f" {str(signed.get('key_id'))[:16]!r}, this one's is {expected['key_id']!r}): {trust}"
        )
    if not hmac.compare_digest(str(signed["hmac_sha256"]), expected["hmac_sha256"]):
        raise BackupRefused(
            f"{src / MANIFEST} was changed after the backup was made (its signature does not match)"
        )


def _empty_or_missing(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def backup(settings: Settings, dest: Path) -> Summary:
    """Copy the database, the media it refers to and the session key into DEST (new or empty)."""
    os.umask(0o077)  # (recordings and transcripts: personal data)
    db_path = _sqlite_path(
        settings,
        "the database is not a SQLite file: back it up with its own tools "
        "(pg_dump for PostgreSQL; see docs/deployment.md#backup-and-restore)",
    )
    media_root = _media_root(settings)
    if not _empty_or_missing(dest):
        raise BackupRefused(f"{dest} exists and is not empty: name a new folder")
    if not db_path.is_file():
        raise BackupRefused(f"there is no database at {db_path} to back up")
    signing_key = backup_key(settings, make=True)
    assert signing_key is not None  # (made above)
    made = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o700)
    try:
        source = sqlite3.connect(db_path)
        target = sqlite3.connect(dest / DATABASE)
        try:
            with target:
                source.backup(target)  # one consistent snapshot, while others write
            if (check := target.execute("PRAGMA integrity_check").fetchone()[0]) != "ok":
                raise BackupRefused(f"the database copy failed its integrity check: {check}")
            revision, conversations, keys = _contents(target)
        finally:
            source.close()
            target.close()
        files = {DATABASE: _entry(dest / DATABASE)}
        for key in keys:
            found = media_root / key
            if found.is_file():  # (absent: never kept, or erased since the snapshot)
                copied = dest / MEDIA / key
                copied.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(found, copied)
                files[f"{MEDIA}/{key}"] = _entry(copied)
        secret = settings.data_dir / SECRET
        if secret.is_file():
            shutil.copyfile(secret, dest / SECRET)
            files[SECRET] = _entry(dest / SECRET)
        manifest = {
            "format": FORMAT,
            "callscope_version": __version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "schema_revision": revision,
            "conversations": conversations,
            "files": files,
        }
        manifest["signature"] = signature(manifest, signing_key)
        (dest / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    except BaseException:
        _undo(dest, made)
        raise
    return _summary(dest, manifest)


def _undo(place: Path, made: bool) -> None:
    """Remove what was written into PLACE, which was empty (or did not exist: MADE)."""
    if made:
        shutil.rmtree(place, ignore_errors=True)
    elif place.exists():
        for child in place.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


def _contents(db: sqlite3.Connection) -> tuple[str, int, list[str]]:
    """The snapshot's schema revision, its number of conversations, and the media keys its
    recordings refer to."""
    revision = db.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    conversations = db.execute("SELECT count(*) FROM conversations").fetchone()[0]
    keys: set[str] = set()
    for sha256, *others in db.execute(
        "SELECT sha256, playback_key, peaks_key, original_playback_key FROM recordings"
        " WHERE purged_at IS NULL"
    ):
        keys.update([blob_key(sha256), *filter(None, others)])
    return revision, conversations, sorted(keys)


def _entry(path: Path) -> dict[str, object]:
    return {"sha256": sha256_of(path), "size": path.stat().st_size}


def _summary(path: Path, manifest: dict) -> Summary:
    media = [v for k, v in manifest["files"].items() if k.startswith(f"{MEDIA}/")]
    return Summary(
        path,
        manifest["schema_revision"],
        manifest["conversations"],
        len(media),
        sum(int(v["size"]) for v in media),
    )


def verify(settings: Settings, src: Path, *, trust_foreign: bool = False) -> dict:
    """The manifest of the backup in SRC once it is signed by this installation's backup key
    (unless TRUST_FOREIGN) and every file it lists is there with its checksum; BackupRefused
    naming the first problem otherwise."""
    try:
        manifest = errors.read_json(
            (src / MANIFEST).read_bytes(), str(src / MANIFEST), BackupRefused
        )
        files = manifest["files"]
        revision = manifest["schema_revision"]
    except FileNotFoundError as exc:
        raise BackupRefused(f"{src} has no {MANIFEST}: not a backup, or an unfinished one") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupRefused(f"{src / MANIFEST} is not a callscope backup manifest") from exc
    if not (
        isinstance(files, dict)
        and isinstance(revision, str)
        and isinstance(manifest.get("conversations"), int)
    ):
        raise BackupRefused(f"{src / MANIFEST} is not a callscope backup manifest")
    if manifest.get("format") != FORMAT or DATABASE not in files:
        raise BackupRefused(f"{src / MANIFEST} is not a format this version reads")
    if not trust_foreign:
        _check_signature(settings, src, manifest)
    for name, expected in _listed(src, files):
        path = src / name
        inside = [p for p in (path, *path.parents) if p != src and p.is_relative_to(src)]
        if any(p.is_symlink() for p in inside):
            raise BackupRefused(f"the backup holds a link, not a file: {name}")
        if not path.is_file():
            raise BackupRefused(f"the backup is incomplete: {name} is missing")
        if not isinstance(expected, dict) or not {"size", "sha256"} <= expected.keys():
            raise BackupRefused(f"{src / MANIFEST} lists {name} without its size and checksum")
        if path.stat().st_size != expected["size"] or sha256_of(path) != expected["sha256"]:
            raise BackupRefused(f"the backup is damaged: {name} does not match its checksum")
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    try:
        known = script.get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise BackupRefused(
            f"the backup's schema (revision {revision}) is newer than this version of callscope"
            f" knows (up to {script.get_current_head()}): restore it with callscope"
            f" {manifest.get('callscope_version', '?')} or newer"
        )
    return manifest


def _listed(src: Path, files: dict) -> Iterator[tuple[str, dict]]:
    """The manifest's entries; a name that would lead outside the backup is refused."""
    for name, expected in sorted(files.items()):
        parts = Path(name).parts
        if Path(name).is_absolute() or ".." in parts or not parts:
            raise BackupRefused(f"the manifest names a file outside the backup: {name!r}")
        yield name, expected


def restore(
    settings: Settings,
    src: Path,
    *,
    trust_foreign: bool = False,
    database_url: str | None = None,
) -> Summary:
    """Restore the backup in SRC into the configured data dir and media folder, both empty, and
    its database into the data dir's own SQLite file or, with DATABASE_URL, into that empty
    PostgreSQL database (moving an installation onto PostgreSQL); the schema is then brought to
    this version's, and jobs that were running are queued again. A backup not signed by this
    installation is restored only when TRUST_FOREIGN. Nothing is changed if it is refused."""
    os.umask(0o077)
    manifest = verify(settings, src, trust_foreign=trust_foreign)
    media_root = _media_root(settings)
    for place in dict.fromkeys([settings.data_dir, media_root]):
        if not _empty_or_missing(place):
            raise BackupRefused(f"{place} is not empty: restore into a new data dir")
    if database_url:
        postgresql = Database(_empty_postgresql(database_url), settings.database_lock_timeout_s)
        db_path = settings.data_dir / "restoring" / DATABASE  # (read from, then removed)
    else:
        postgresql, db_path = None, _own_sqlite(settings)
    made = {place: not place.exists() for place in (settings.data_dir, media_root)}
    try:
        for path in (settings.data_dir, db_path.parent, media_root):
            path.mkdir(parents=True, exist_ok=True)
        settings.data_dir.chmod(0o700)
        for name, _expected in _listed(src, manifest["files"]):
            if name == DATABASE:
                target = db_path
            elif name == SECRET:
                target = settings.data_dir / SECRET
            else:
                target = media_root / Path(name).relative_to(MEDIA)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / name, target)
        restored = Database(f"sqlite:///{db_path}", settings.database_lock_timeout_s)
        try:
            restored.upgrade()
            if postgresql is not None:
                _copy_rows(restored, postgresql)
            with (postgresql or restored).session() as session:
                jobs.requeue_interrupted(session)  # (caught mid-way: run again from the start)
                if postgresql is not None:
                    refresh.rebuild(session)  # (its search index is PostgreSQL's own)
        finally:
            restored.dispose()
        if postgresql is not None:
            shutil.rmtree(db_path.parent)
    except BaseException:
        for place, was_made in made.items():  # (both were empty: nothing else is lost)
            _undo(place, was_made)
        if postgresql is not None:
            _drop_everything(postgresql)  # (it was empty)
        raise
    finally:
        if postgresql is not None:
            postgresql.dispose()
    return _summary(src, manifest)


def _own_sqlite(settings: Settings) -> Path:
    """The data dir's own SQLite database, which restore may write; a database anywhere else
    may be one in use, and restore never writes over it."""
    db_path = _sqlite_path(
        settings,
        "CALLSCOPE_DATABASE_URL names a database that is not the data dir's own: restore"
        " writes a PostgreSQL database only when it is given with --database-url (and empty)",
    )
    if not db_path.resolve().is_relative_to(settings.data_dir.resolve()):
        raise BackupRefused(
            f"the database {db_path} is outside the new data dir {settings.data_dir}: restore"
            " writes only a data dir's own database (unset CALLSCOPE_DATABASE_URL)"
        )
    return db_path


def _empty_postgresql(url: str) -> str:
    """URL, once it names a PostgreSQL database that can be reached and holds no table."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise BackupRefused(f"--database-url is not a database URL: {exc}") from exc
    if parsed.get_backend_name() != "postgresql":
        raise BackupRefused(
            "--database-url must name a PostgreSQL database (postgresql+psycopg://…)"
        )
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
    except SQLAlchemyError as exc:
        why = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise BackupRefused(f"the database of --database-url cannot be reached: {why}") from exc
    finally:
        engine.dispose()
    if tables:
        raise BackupRefused(
            f"the database of --database-url is not empty ({len(tables)} table(s), such as"
            f" {sorted(tables)[0]!r}): restore only into a new, empty database"
        )
    return url


def _copy_rows(source: Database, target: Database) -> None:
    """Every row of SOURCE's tables into TARGET's (same schema, empty), parents first, each
    table in the order of its key; then TARGET's id sequences continue after the rows."""
    target.upgrade()
    tables = [t for t in Base.metadata.sorted_tables if t.name != "alembic_version"]
    with source.engine.connect() as read, target.engine.begin() as write:
        for table in tables:
            rows = read.execute(select(table).order_by(*table.primary_key.columns))
            while batch := rows.mappings().fetchmany(1000):
                write.execute(table.insert(), [dict(row) for row in batch])
        for table in tables:  # (a key of its own: a sequence, if PostgreSQL made one)
            keys = list(table.primary_key.columns)
            if len(keys) == 1 and isinstance(keys[0].type, Integer):
                write.execute(
                    text(
                        "SELECT setval(pg_get_serial_sequence(:t, :c),"
                        f" coalesce(max({keys[0].name}), 0) + 1, false) FROM {table.name}"
                    ),
                    {"t": table.name, "c": keys[0].name},
                )


def _drop_everything(database: Database) -> None:
    """Drop every table of DATABASE (one restore made, into what was empty)."""
    with database.engine.begin() as conn:
        for name in inspect(conn).get_table_names():
            conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
