"""The demo: users, sample calls (see ATTRIBUTION.md) and their processing."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from callscope.context import Context
from callscope.db.models import Queue, User, category_named
from callscope.governance import auth, policy
from callscope.governance.audit import Actor
from callscope.processing import jobs
from callscope.processing.ingest import Ingestor
from callscope.review import categories, evaluations

DEMO_DIR = Path(__file__).parent
CALLS_DIR = DEMO_DIR / "calls"

USERS = (
    ("admin", "admin", None),
    ("supervisor", "supervisor", None),
    ("daniel", "agent", "AG-1"),
    ("rina", "agent", "AG-2"),
)


RECORDED_ON = date(2026, 11, 24)  # the day after the newest call in calls.json
TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T[^\"]+")


def calls(today: date | None = None) -> list[dict]:
    """The demo calls: audio path and metadata, their times moved so the newest is yesterday."""
    shift = timedelta(days=((today or date.today()) - RECORDED_ON).days)
    text = (DEMO_DIR / "calls.json").read_text(encoding="utf-8")
    text = TIME_RE.sub(lambda m: (datetime.fromisoformat(m.group(0)) + shift).isoformat(), text)
    return [{"audio": DEMO_DIR / e["audio"], "metadata": e["metadata"]} for e in json.loads(text)]


def _credentials(ctx: Context) -> dict[str, str]:
    """Create the demo users and an API token once; kept in the data dir for later runs."""
    path = ctx.settings.data_dir / "demo-credentials.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    creds: dict[str, str] = {}
    with ctx.db.session() as session:
        for name, role, agent_id in USERS:
            if session.scalar(select(User).where(User.username == name)):
                continue
            creds[name] = secrets.token_urlsafe(9)
            auth.add_user(session, name, role, creds[name], agent_id)
        if "admin" in creds:
            creds["api-token"] = auth.create_token(session, "admin", "demo")
    path.write_text(json.dumps(creds, indent=2), encoding="utf-8")
    path.chmod(0o600)
    return creds


def _quality(ctx: Context, echo: Callable[[str], None]) -> None:
    """The example categories (English and Indonesian phrases) and an evaluation form that
    uses them (quality.json), added once: a first run has something on every tab."""
    example = json.loads((DEMO_DIR / "quality.json").read_text(encoding="utf-8"))
    with ctx.db.session() as session:
        for fields in example["categories"]:
            name = fields.pop("name")
            if category_named(session, name) is None:
                categories.add(session, Actor.cli(), name, fields)
                echo(f"category {name!r} added")
        if not any(f.name == example["form"]["name"] for f in evaluations.latest_forms(session)):
            evaluations.import_form(session, Actor.cli(), example["form"])
            echo(f"evaluation form {example['form']['name']!r} imported")


def setup(ctx: Context, echo: Callable[[str], None] = print) -> Iterator[str]:
    """Create demo users, the example categories and form, ingest and process the sample calls;
    yields the sign-in lines."""
    creds = _credentials(ctx)
    _quality(ctx, echo)
    for call in calls():
        result = Ingestor(ctx).ingest_file(call["audio"], call["metadata"])
        state = "ingested" if result.created else "already there"
        echo(f"{call['metadata']['external_id']}: conversation {result.id} {state}")
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
        supervisor = session.scalar(select(User).where(User.username == "supervisor"))
        if supervisor is not None and not supervisor.queues:
            supervisor.queues = list(session.scalars(select(Queue)))
    ran = jobs.run_pending(ctx, jobs.worker_name("demo"))
    echo(f"processed {ran} conversation(s)")
    address = f"http://{_shown_host(ctx.settings.host)}:{ctx.settings.port}"
    yield f"Sign in at {address} with (user, password, role):"
    for name, role, _ in USERS:
        if name in creds:
            yield f"  {name:11} {creds[name]:14} {role}"
    if "api-token" in creds:
        yield f"API token of admin: {creds['api-token']}"
    yield f"API documentation: {address}/api/docs"


def _shown_host(host: str) -> str:
    """Where a browser on this machine reaches a server listening on HOST."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
