"""Database engine, sessions and migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE executed in a session changed."""
    return cast(CursorResult[Any], result).rowcount


def is_busy(exc: OperationalError) -> bool:
    """Whether EXC is a lock held too long by someone else (a backup, VACUUM, a long purge)."""
    text = str(exc.orig).lower()
    return "database is locked" in text or "lock timeout" in text or "deadlock" in text


def is_full(exc: OperationalError) -> bool:
    """Whether EXC says the disk is full."""
    text = str(exc.orig).lower()
    return "disk is full" in text or "no space left" in text


def make_engine(url: str, lock_timeout_s: float = 30.0) -> Engine:
    """An engine for the URL; SQLite gets WAL mode, foreign keys and secure deletion. A
    statement waits LOCK_TIMEOUT_S for another's lock, then fails (see `is_busy`). Errors
    do not repeat a statement's values (words, names), so logging one logs no personal data."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            hide_parameters=True,
            connect_args={"timeout": lock_timeout_s, "check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA secure_delete=ON")  # deleted personal data is overwritten
            cur.close()

        return engine
    return create_engine(
        url,
        hide_parameters=True,
        pool_pre_ping=True,
        connect_args={"options": f"-c lock_timeout={int(lock_timeout_s * 1000)}"},
    )


def alembic_config(url: str) -> Config:
    """The Alembic configuration for callscope's migrations against URL."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Create or upgrade the database schema to the newest revision.

    On SQLite, foreign keys are off while migrating (a migration that rebuilds a table drops
    the old one, which would otherwise cascade to every row referring to it) and checked after.
    """
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # (the driver begins no transaction
            conn.commit()  # for a PRAGMA: this ends only SQLAlchemy's)
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                if sqlite and (broken := conn.exec_driver_sql("PRAGMA foreign_key_check").all()):
                    raise RuntimeError(f"the migration left broken references: {broken[:5]}")
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def schema_revisions(engine: Engine) -> tuple[str | None, str | None]:
    """The database's migration revision (None: never migrated) and the newest this version
    knows."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision(), head


class Database:
    """An engine and its session factory."""

    def __init__(self, url: str, lock_timeout_s: float = 30.0) -> None:
        self.url = url
        self.engine = make_engine(url, lock_timeout_s)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    def upgrade(self) -> None:
        """Create or upgrade the schema."""
        upgrade(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        with self.sessionmaker() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
