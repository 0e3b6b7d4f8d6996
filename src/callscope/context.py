"""The parts one callscope process works with, built once from the settings."""

from __future__ import annotations

import os
from dataclasses import dataclass

from callscope.config import Settings
from callscope.db import Database
from callscope.jobqueue import JobQueue, open_queue
from callscope.store import MediaStore, clean_spool, open_store


@dataclass
class Context:
    """Settings, database, media store and job queue."""

    settings: Settings
    db: Database
    store: MediaStore
    queue: JobQueue

    @classmethod
    def open(cls, settings: Settings, *, upgrade: bool = True) -> Context:
        """Open the data dir (created if missing) and, by default, create or upgrade the schema.

        The data dir is the owner's alone (0700), and everything this process writes is made
        readable by its owner only: recordings, transcripts and the database are personal data.
        """
        os.umask(0o077)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.data_dir.chmod(0o700)
        db = Database(settings.resolved_database_url, settings.database_lock_timeout_s)
        if upgrade:
            db.upgrade()
        clean_spool(settings.tmp_dir)
        store = open_store(settings.media_url, settings.media_dir, settings.media_cache_dir)
        return cls(settings, db, store, open_queue(settings))

    def close(self) -> None:
        self.db.dispose()
