"""The `callscope` command: parses arguments, makes one domain call, prints the outcome."""

from __future__ import annotations

import json
import random
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC
from functools import partial
from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, make_url, or_, select
from sqlalchemy.orm import selectinload

from callscope import errors, logs, telemetry
from callscope.config import Settings, get_settings
from callscope.context import Context
from callscope.db.models import (
    ApiToken,
    Conversation,
    ConversationAnalysis,
    Job,
    Queue,
    User,
    Webhook,
    WebhookDelivery,
)
from callscope.governance import access, admin, audit, auth, policy
from callscope.governance.audit import Actor
from callscope.ops import backup, checks
from callscope.processing import jobs, presence, results, retention, transcripts, webhooks, worker
from callscope.processing.ingest import Ingestor
from callscope.review import categories, document, evaluations, exports, search
from callscope.vocabulary import FINISHED, Scope, Status

# exit codes by the kind of error; click's usage errors exit with 2
EXIT_CODES: tuple[tuple[type[errors.CallscopeError], int], ...] = (
    (errors.Unavailable, 75),  # a part is unavailable now: trying again later may work
    (errors.CallscopeError, 1),  # refused, not found, not allowed, conflict
)


SERVICES = ("serve", "worker", "demo")  # the commands that run until stopped


class CallscopeGroup(click.Group):
    """Prints callscope's errors as one line on stderr, without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except errors.CallscopeError as exc:
            if ctx.invoked_subcommand in ("ingest", "import"):
                telemetry.refused(exc)
            click.echo(f"error: {exc}", err=True)
            sys.exit(next(code for kind, code in EXIT_CODES if isinstance(exc, kind)))


@contextmanager
def opened(upgrade: bool = True) -> Iterator[Context]:
    """The context of this process, closed afterwards."""
    ctx = Context.open(get_settings(), upgrade=upgrade)
    try:
        yield ctx
    finally:
        ctx.close()


@click.group(cls=CallscopeGroup)
@click.version_option(package_name="callscope")
@click.pass_context
def main(ctx: click.Context) -> None:
    """callscope: call recording and transcript review for contact centres."""
    try:
        settings = get_settings()
    except errors.CallscopeError:  # (`callscope config` and the others say what is wrong)
        return
    # the services log as configured; a one-off command only what went wrong
    level = settings.log_level if ctx.invoked_subcommand in SERVICES else "WARNING"
    logs.configure(settings.log_format, level)


@main.command()
def config() -> None:
    """Print the settings in force."""
    settings = get_settings()
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if value in (None, ""):
            value = "(not set)"
        elif name == "metrics_token":
            value = "(set)"
        elif name == "database_url":
            value = safe_url(value)
        click.echo(f"{name:16} = {value}    # {field.description}")
    click.echo(f"{'database (used)':16} = {safe_url(settings.resolved_database_url)}")


def safe_url(url: str) -> str:
    """URL without its password."""
    return make_url(url).render_as_string(hide_password=True)


@main.command()
def doctor() -> None:
    """Check the whole setup as configured (settings, database, media store, broker and
    workers, speech model, sentence meaning, decoding, disk, clock); prints ✓ or ✗ and what to
    do for each, and exits with 1 when a check fails. Changes nothing (run `callscope init` to
    set up)."""
    outcomes = [checks.run("settings", checks.settings_valid)]
    if outcomes[0].ok:
        ctx = Context.open(get_settings(), upgrade=False)
        try:
            outcomes += [checks.run(name, partial(check, ctx)) for name, check in checks.DOCTOR]
        finally:
            ctx.close()
    for outcome in outcomes:
        mark = "✓" if outcome.ok else "✗"
        click.echo(f"{mark} {outcome.name:17} {outcome.found}")
        if outcome.fix:
            click.echo(f"  {'':17} → {outcome.fix}")
    failed = [o.name for o in outcomes if not o.ok]
    if failed:
        click.echo(f"{len(failed)} check(s) failed: {', '.join(failed)}", err=True)
        sys.exit(1)


@main.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
def backup_command(dest: Path) -> None:
    """Back up this instance into DEST (a new or empty folder) while it runs: a consistent copy
    of the SQLite database, the media it refers to and a manifest with checksums. With
    PostgreSQL or an object store, see docs/deployment.md#backup-and-restore."""
    summary = backup.backup(get_settings(), dest)
    click.echo(f"backed up {summary} into {dest}")


@main.command("restore")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--trust-foreign",
    is_flag=True,
    help="restore a backup not signed with this installation's backup key (made elsewhere)",
)
@click.option(
    "--database-url",
    help="restore the database into this empty PostgreSQL database instead of the data dir's"
    " SQLite file (then run callscope with CALLSCOPE_DATABASE_URL set to it)",
)
def restore_command(src: Path, trust_foreign: bool, database_url: str | None) -> None:
    """Restore the backup in SRC into the configured data dir, which must be new or empty; the
    backup is verified against its manifest and its signature first, and refused whole if
    anything is off."""
    settings = get_settings()
    summary = backup.restore(settings, src, trust_foreign=trust_foreign, database_url=database_url)
    click.echo(f"restored {summary} into {settings.data_dir}")
    if database_url and database_url != settings.database_url:
        click.echo("run callscope with CALLSCOPE_DATABASE_URL set to the --database-url given")


@main.command()
def init() -> None:
    """Create the data folder and create or upgrade the database."""
    with opened() as ctx:
        click.echo(f"database ready: {ctx.settings.resolved_database_url}")


def _read_meta(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {path}: {exc.strerror}", param_hint="--meta"
        ) from exc


META_OPTION = click.option(
    "--meta",
    "meta_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="metadata JSON (the shape in docs/ingest.md)",
)


@main.command()
@click.argument("audio", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@META_OPTION
@click.option("--wait", is_flag=True, help="wait for processing, with a progress bar on stderr")
@click.option("--json", "as_json", is_flag=True, help="print one JSON line")
def ingest(audio: Path, meta_path: Path, wait: bool, as_json: bool) -> None:
    """Ingest a recording with its metadata; prints the conversation id."""
    with opened() as ctx:
        result = Ingestor(ctx).ingest_file(audio, _read_meta(meta_path))
        status = result.status
        if wait and result.job is not None:
            status = wait_for_job(ctx, result.job)
    if as_json:
        click.echo(json.dumps({**result.as_dict(), "status": status}))
    else:
        click.echo(result.id)
    if status == Status.FAILED:
        sys.exit(1)


@main.command("import")
@click.argument("transcript", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@META_OPTION
@click.option(
    "--audio",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the call's recording, if there is one (kept for playback; not transcribed)",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(transcripts.FORMATS),
    help="the transcript's format (default: from its extension)",
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON line")
def import_transcript(
    transcript: Path, meta_path: Path, audio: Path | None, fmt: str | None, as_json: bool
) -> None:
    """Import an existing transcript (our JSON or WebVTT with speaker voices), with or without
    its audio: metrics and sentiment are computed, no speech recognition runs."""
    with opened() as ctx:
        ingestor = Ingestor(ctx)
        meta = ingestor.check_metadata(_read_meta(meta_path))
        upload = None
        if audio is not None:
            with open(audio, "rb") as stream:
                upload = ingestor.spool(stream, audio.name)
        result = ingestor.import_transcript(
            transcript.read_bytes(),
            fmt or transcripts.format_of(transcript.name),
            meta,
            upload,
            audio.name if audio else None,
        )
    click.echo(json.dumps(result.as_dict()) if as_json else result.id)


class ProgressBar:
    """A progress bar on stderr: redrawn in place on a terminal, a line per step otherwise."""

    WIDTH = 30

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last: tuple[int, str | None] = (-1, None)

    def __call__(self, percent: float, stage: str | None = None) -> None:
        shown = int(percent)
        if self.tty:
            if (shown, stage) == self.last:
                return
            filled = self.WIDTH * shown // 100
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            self.stream.write(f"\r[{bar}] {shown:3d}% {stage or '':24}")
        else:
            if stage == self.last[1] and shown // 10 == self.last[0] // 10:
                return
            self.stream.write(f"processing: {shown:3d}% {stage or ''}\n")
        self.stream.flush()
        self.last = (shown, stage)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


HANDOVER_S = 10.0  # a running worker that has not taken the job by then is busy: run it here


def wait_for_job(ctx: Context, job_id: int, poll_s: float = 0.2) -> str:
    """Follow a job to its end with a progress bar on stderr; returns its final status. A
    running worker with its models loaded is left to process it (this process loads none);
    else, or if no worker takes it within HANDOVER_S, it is processed here."""
    bar = ProgressBar()
    try:
        handed = bool(presence.ready_workers(ctx)) and follow_job(ctx, job_id, bar, poll_s)
        if not handed and jobs.run_job(ctx, job_id, jobs.worker_name("cli"), progress=bar) is None:
            follow_job(ctx, job_id, bar, poll_s, queued_for=None)
    finally:
        bar.close()
    with ctx.db.session() as session:
        job = session.get_one(Job, job_id)
        final, error = job.status, job.error
    if final == Status.FAILED:
        click.echo(f"error: processing failed: {error}", err=True)
    webhooks.deliver_due(ctx)  # (its event, in case no worker runs to send it)
    return final


def follow_job(
    ctx: Context,
    job_id: int,
    bar: ProgressBar,
    poll_s: float,
    queued_for: float | None = HANDOVER_S,
) -> bool:
    """Show the progress of a job another worker runs until it ends (True); False if it is
    still waiting in the queue after QUEUED_FOR seconds (None: however long)."""
    since = time.monotonic()
    while True:
        with ctx.db.session() as session:
            job = session.get_one(Job, job_id)
            status, progress, stage = job.status, job.progress, job.stage
        if status in FINISHED:
            bar(progress, stage)
            return True
        if status == Status.QUEUED:
            if queued_for is not None and time.monotonic() - since > queued_for:
                return False
        else:
            bar(progress, stage)
        time.sleep(poll_s)


def find_conversation(session: Any, ident: str) -> Conversation:
    """A conversation by numeric id or external id."""
    clauses = [Conversation.external_id == ident]
    if ident.isdigit():
        clauses.append(Conversation.id == int(ident))
    conv = session.scalar(select(Conversation).where(or_(*clauses)).limit(1))
    if conv is None:
        raise errors.NotFound(f"no conversation {ident!r}")
    return conv


@main.command()
@click.argument("ident")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def show(ident: str, fmt: str) -> None:
    """Show a conversation (by id or external id): its analysis document or a summary."""
    with opened() as ctx, ctx.db.session() as session:
        doc = document.document(session, find_conversation(session, ident))
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    ov = doc["overview"]
    agent = (ov["primary_agent"] or {}).get("name", "")
    customer = (ov["customer"] or {}).get("name", "")
    click.echo(f"conversation {doc['id']} ({doc['external_id']}) — {doc['status']}")
    click.echo(f"  agent {agent}, customer {customer}, queue {ov['queue'] or '-'}")
    click.echo(
        f"  {ov['started_at']} → {ov['ended_at']} ({ov['duration_s']} s), "
        f"consent {ov['consent']['status']}"
    )
    for seg in doc["transcript"]["segments"]:
        click.echo(f"  [{seg['start_s']:7.2f}] {seg['speaker']:8} {seg['text']}")


@main.group()
def users() -> None:
    """Manage sign-in accounts."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(auth.ROLES), required=True)
@click.option("--agent-id", help="the agent's external id (links an agent account to its calls)")
@click.option(
    "--password-stdin", is_flag=True, required=True, help="read the password from standard input"
)
def users_add(name: str, role: str, agent_id: str | None, password_stdin: bool) -> None:
    """Create a user."""
    password = sys.stdin.readline().rstrip("\n")
    with opened() as ctx, ctx.db.session() as session:
        user = admin.create_user(session, Actor.cli(), name, role, password, agent_id)
        click.echo(f"user {user.username} ({user.role}) created")


@users.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="re-enable the user instead")
def users_disable(name: str, enable: bool) -> None:
    """Disable a user: their sign-in, browser sessions and API tokens stop working."""
    with opened() as ctx, ctx.db.session() as session:
        user = admin.user_by_name(session, name)
        admin.set_disabled(session, Actor.cli(), user.id, not enable)
        click.echo(f"user {name} {'enabled' if enable else 'disabled'}")


@users.command("set-password")
@click.argument("name")
@click.option(
    "--password-stdin", is_flag=True, required=True, help="read the password from standard input"
)
def users_set_password(name: str, password_stdin: bool) -> None:
    """Set a user's password."""
    password = sys.stdin.readline().rstrip("\n")
    with opened() as ctx, ctx.db.session() as session:
        user = admin.user_by_name(session, name)
        admin.set_password(session, Actor.cli(), user.id, password)
        click.echo(f"password of {name} set")


@users.command("list")
def users_list() -> None:
    """List users."""
    with opened() as ctx, ctx.db.session() as session:
        for user in session.scalars(select(User).order_by(User.username)):
            agent = user.agent.external_id if user.agent else ""
            state = "disabled" if user.disabled else "active"
            click.echo(f"{user.username:20} {user.role:10} {agent:12} {state}")


@main.group()
def tokens() -> None:
    """Manage API tokens."""


@tokens.command("create")
@click.argument("name")
@click.option("--user", "username", help="the account the token acts as (default: the first admin)")
@click.option(
    "--scope",
    type=click.Choice([s.value for s in Scope]),
    help="read, or also ingest (administrators only); default: ingest for an administrator",
)
def tokens_create(name: str, username: str | None, scope: str | None) -> None:
    """Create an API token and print it (it is shown only this once)."""
    with opened() as ctx, ctx.db.session() as session:
        if username is None:
            username = session.scalar(access.first_administrator())
            if username is None:
                raise auth.UserError("no administrator exists: create one or pass --user")
        click.echo(admin.create_token(session, Actor.cli(), username, name, scope))


@tokens.command("list")
def tokens_list() -> None:
    """List API tokens (never the tokens themselves: only their first characters)."""
    with opened() as ctx, ctx.db.session() as session:
        for row in session.scalars(select(ApiToken).order_by(ApiToken.id)):
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
            click.echo(
                f"{row.id:5} {row.prefix}…  {row.name:24} {row.user.username:16} "
                f"{row.scope:7} {state}"
            )


@tokens.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id: int) -> None:
    """Revoke an API token (by the id `tokens list` shows)."""
    with opened() as ctx, ctx.db.session() as session:
        admin.revoke_token(session, Actor.cli(), token_id)
        click.echo(f"token {token_id} revoked")


@main.group()
def settings() -> None:
    """Administrator settings (recordings on/off, consent …)."""


@settings.command("list")
def settings_list() -> None:
    """Print every setting with its value in force."""
    with opened() as ctx, ctx.db.session() as session:
        for key, value in policy.all_values(session).items():
            click.echo(f"{key:22} {json.dumps(value):8} # {policy.SPECS[key].help}")


@settings.command("set")
@click.argument("key")
@click.argument("value")
def settings_set(key: str, value: str) -> None:
    """Set KEY to VALUE."""
    parsed = policy.parse_value(key, value)
    with opened() as ctx, ctx.db.session() as session:
        admin.change_setting(session, Actor.cli(), key, parsed)
    click.echo(f"{key} = {json.dumps(parsed)}")


@main.group()
def queues() -> None:
    """Queues and their custom vocabulary (names the recogniser is told to expect)."""


@queues.command("list")
def queues_list() -> None:
    """Print every queue with its vocabulary."""
    with opened() as ctx, ctx.db.session() as session:
        for queue in session.scalars(select(Queue).order_by(Queue.name)):
            click.echo(f"{queue.name}\t{queue.vocabulary or ''}")


@queues.command("vocabulary")
@click.argument("queue")
@click.argument("terms")
def queues_vocabulary(queue: str, terms: str) -> None:
    """Set the custom vocabulary of QUEUE: TERMS separated by commas ("" for none). It applies
    to calls processed from now on."""
    with opened() as ctx, ctx.db.session() as session:
        row = admin.set_vocabulary(session, Actor.cli(), queue, terms)
        click.echo(f"{row.name}: {row.vocabulary or '(no vocabulary)'}")


@main.command()
@click.option("--host", help="address to listen on (default from settings)")
@click.option("--port", type=int, help="port to listen on (default from settings)")
@click.option("--no-worker", is_flag=True, help="do not run the embedded processing worker")
def serve(host: str | None, port: int | None, no_worker: bool) -> None:
    """Serve the web app and API (the database is created or upgraded first). Without a
    broker, an embedded worker processes jobs; with one, `callscope worker` processes do."""
    run_server(host, port, with_worker=not no_worker and not get_settings().broker_url)


def run_server(
    host: str | None,
    port: int | None,
    with_worker: bool,
    before: Callable[[Context], None] | None = None,
) -> None:
    import uvicorn

    settings = get_settings()
    ctx = Context.open(settings)
    if before:
        before(ctx)
    from callscope.web.app import create_app  # (only the server needs the web layer)

    app = create_app(ctx, with_worker=with_worker)
    if settings.metrics_port:
        telemetry.serve_port(ctx.db, settings.metrics_port, settings.metrics_host)
    # (the log lines are callscope's: its own access log names the route, not the address; and
    # a client's address is the peer's unless CALLSCOPE_TRUSTED_PROXIES names it: callscope
    # reads X-Forwarded-For itself, so the server's own reading of it stays off)
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )


@main.command("worker")
@click.option("--once", is_flag=True, help="run the waiting jobs, then exit")
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="expose this worker's metrics on this port (default: CALLSCOPE_METRICS_PORT, if set)",
)
def run_worker(once: bool, metrics_port: int | None) -> None:
    """Run the processing worker (without the web app): a Celery worker when a broker is
    configured (CALLSCOPE_BROKER_URL), otherwise one that polls the database."""
    with opened() as ctx:
        port = metrics_port or ctx.settings.metrics_port
        if port and not once:
            telemetry.serve_port(ctx.db, port, ctx.settings.metrics_host)
        if ctx.settings.broker_url and not once:
            worker.run_celery_worker(ctx)
            return
        if once:
            click.echo(f"processed {jobs.run_pending(ctx, jobs.worker_name())} job(s)")
            webhooks.deliver_due(ctx)
            return
        runner = worker.Worker(ctx, warm_up=True)
        click.echo(f"worker {runner.name} waiting for jobs (Ctrl-C stops)", err=True)
        signal.signal(signal.SIGTERM, _interrupt)  # (a service manager stops it as Ctrl-C does)
        try:
            runner.run_forever()
        except KeyboardInterrupt:
            runner.stop()


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


@main.command()
@click.argument("job_id", type=int)
@click.option("--wait", is_flag=True, help="run it now, with a progress bar on stderr")
def retry(job_id: int, wait: bool) -> None:
    """Queue a failed job again."""
    with opened() as ctx:
        jobs.retry(ctx, job_id)
        click.echo(f"job {job_id} queued")
        if wait and wait_for_job(ctx, job_id) == Status.FAILED:
            sys.exit(1)


@main.command("demo")
@click.option("--no-serve", is_flag=True, help="set up the demo data only")
def run_demo(no_serve: bool) -> None:
    """Set up demo users and calls, process them, and serve on http://127.0.0.1:8000."""
    with opened() as ctx:
        from callscope import demo  # (it brings the web layer's catalog)

        for line in demo.setup(ctx, echo=lambda m: click.echo(m, err=True)):
            click.echo(line)
    if not no_serve:
        run_server(None, None, with_worker=True)


@main.command("audit")
@click.option("--user", "actor_name", help="only entries of this user name (or cli:…, system:…)")
@click.option("--action", type=click.Choice(sorted(audit.ACTIONS)), help="only this action")
@click.option("--conversation", type=int, help="only entries about this conversation")
@click.option("--since", type=click.DateTime(), help="from this UTC date/time on")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
def audit_log(
    actor_name: str | None,
    action: str | None,
    conversation: int | None,
    since: Any,
    limit: int,
    as_json: bool,
) -> None:
    """Show the audit log, newest first."""
    query = audit.query(
        actor=actor_name,
        action=action,
        object_type="conversation" if conversation is not None else None,
        object_id=str(conversation) if conversation is not None else None,
        since=since.replace(tzinfo=UTC) if since else None,
    )
    with opened() as ctx, ctx.db.session() as session:
        for event in session.scalars(query.limit(limit)):
            entry = audit.as_dict(event)
            if as_json:
                click.echo(json.dumps(entry, ensure_ascii=False))
            else:
                target = (
                    f"{entry['object_type']} {entry['object_id']}" if entry["object_type"] else ""
                )
                click.echo(
                    f"{entry['at']}  {entry['actor']:20} {entry['action']:22} {target:20}"
                    f" {entry['source'] or ''}"
                )


@main.command("erase-customer")
@click.argument("external_id")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def erase_customer(external_id: str, yes: bool) -> None:
    """Erase everything about a customer: conversations, audio, transcripts, metadata."""
    if not yes:
        click.confirm(f"Erase customer {external_id} and all their conversations?", abort=True)
    with opened() as ctx:
        removed = retention.erase_customer(ctx, Actor.cli(), external_id)
    click.echo(
        f"customer {external_id} erased: {len(removed.conversations)} conversation(s),"
        f" {removed.files} media file(s)"
    )


@main.command("legal-hold")
@click.argument("ident")
@click.option("--release", is_flag=True, help="release the hold instead")
def legal_hold(ident: str, release: bool) -> None:
    """Place a conversation (id or external id) on legal hold, exempt from retention and erasure."""
    with opened() as ctx, ctx.db.session() as session:
        conv = find_conversation(session, ident)
        retention.set_legal_hold(session, Actor.cli(), conv.id, not release)
    click.echo(f"conversation {conv.external_id}: legal hold {'released' if release else 'set'}")


@main.command("swap-speakers")
@click.argument("ident")
def swap_speakers(ident: str) -> None:
    """Swap agent and customer in a processed conversation (id or external id): every word
    changes speaker, sentiment and metrics are computed again; audited."""
    with opened() as ctx, ctx.db.session() as session:
        conv = find_conversation(session, ident)
        results.swap_speakers(session, conv.id, Actor.cli())
        agent_pct = session.get_one(ConversationAnalysis, conv.id).agent_talk_pct
    click.echo(
        f"conversation {conv.external_id}: agent and customer swapped"
        f" (agent talk now {agent_pct:.1f} %)"
    )


@main.command()
@click.option("--sentiment", is_flag=True, help="the sentiment of every line and of the call")
@click.option("--meaning", "meant", is_flag=True, help="every line's meaning (search by meaning)")
@click.option("--all", "every", is_flag=True, help="every processed conversation")
@click.argument("idents", nargs=-1)
def recompute(sentiment: bool, meant: bool, every: bool, idents: tuple[str, ...]) -> None:
    """Compute results again with the current version: --sentiment or --meaning (each computes
    every result again) of the conversations IDENTS (ids or external ids) or --all processed
    ones, from their stored words; audited."""
    if not (sentiment or meant):
        raise click.UsageError("say what to compute again: --sentiment or --meaning")
    what = " and ".join(w for w, on in (("sentiment", sentiment), ("meaning", meant)) if on)
    if every == bool(idents):
        raise click.UsageError("name conversations, or give --all (not both)")
    with opened() as ctx:
        with ctx.db.session() as session:
            if every:
                ids = list(
                    session.scalars(
                        select(Conversation.id)
                        .where(Conversation.processing_status == Status.PROCESSED)
                        .order_by(Conversation.id)
                    )
                )
            else:  # every name is checked before anything changes
                ids = [find_conversation(session, ident).id for ident in idents]
        with click.progressbar(ids, label=f"recomputing {what}", file=sys.stderr) as bar:
            for conversation_id in bar:
                with ctx.db.session() as session:
                    results.recompute(session, conversation_id, Actor.cli())
    click.echo(f"recomputed the {what} of {len(ids)} conversation(s)")


@main.command()
def purge() -> None:
    """Apply the retention setting now (the worker also does so every hour)."""
    with opened() as ctx:
        removed = retention.purge_expired(ctx)
    click.echo(
        f"removed {len(removed.recordings)} recording(s), {len(removed.conversations)}"
        f" conversation(s), {removed.files} media file(s)"
    )


@main.command()
@click.argument("idents", nargs=-1)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "vtt", "srt", "csv"]),
    default="json",
    show_default=True,
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="file")
def export(idents: tuple[str, ...], fmt: str, output: Path | None) -> None:
    """Export conversations (ids or external ids): one as JSON (the analysis document),
    WebVTT or SRT; or the metrics of several, or of all when none is named, as CSV. While
    viewing is switched off, the JSON has no transcript words and WebVTT and SRT are refused."""
    if fmt != "csv" and len(idents) != 1:
        raise click.UsageError(f"--format {fmt} exports exactly one conversation")
    with opened() as ctx, ctx.db.session() as session:
        conversations = [find_conversation(session, ident) for ident in idents]
        if fmt == "csv":
            query = (
                select(Conversation, ConversationAnalysis)
                .outerjoin(ConversationAnalysis)
                .options(*(selectinload(r) for r in search.SHOWN))
                .order_by(Conversation.started_at.desc())
            )
            if idents:  # in the order named
                query = query.where(Conversation.id.in_([c.id for c in conversations]))
                found = {c.id: (c, a) for c, a in session.execute(query)}
                rows = [found[c.id] for c in conversations]
            else:
                rows = [(c, a) for c, a in session.execute(query)]
                conversations = [c for c, _a in rows]
            text = exports.metrics_csv(
                rows, search.categories_of(session, [c.id for c, _a in rows])
            )
        else:
            viewing = policy.get(session, "recordings.enabled")
            if not viewing and fmt != "json":
                raise errors.NotAllowed(f"{access.VIEWING_OFF}: no transcript is exported")
            withheld = None if viewing else access.VIEWING_OFF  # (the document without words)
            doc = json.loads(document.document_json(session, conversations[0], withheld))
            text = (
                json.dumps(doc, ensure_ascii=False, indent=2)
                if fmt == "json"
                else exports.webvtt_text(doc)
                if fmt == "vtt"
                else exports.srt_text(doc)
            )
        target = ("list", None) if fmt == "csv" else ("conversation", conversations[0].id)
        audit.record(
            session,
            Actor.cli(),
            "conversation.export",
            *target,
            format=fmt,
            conversations=len(conversations),
        )
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


@main.group("webhooks")
def webhooks_group() -> None:
    """Webhooks: URLs told when a conversation is processed or fails."""


@webhooks_group.command("add")
@click.argument("url")
def webhooks_add(url: str) -> None:
    """Register URL; prints its id and signing secret (shown only this once)."""
    with opened() as ctx, ctx.db.session() as session:
        hook, secret = webhooks.add(session, Actor.cli(), url)
        click.echo(f"webhook {hook.id} added; signing secret: {secret}")


@webhooks_group.command("list")
def webhooks_list() -> None:
    """List webhooks with their deliveries by state."""
    with opened() as ctx, ctx.db.session() as session:
        for hook in session.scalars(select(Webhook).order_by(Webhook.id)):
            counts = dict(
                session.execute(
                    select(WebhookDelivery.status, func.count())
                    .where(WebhookDelivery.webhook_id == hook.id)
                    .group_by(WebhookDelivery.status)
                ).all()
            )
            states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
            click.echo(f"{hook.id:4} {hook.url}  {states or 'no deliveries'}")


@webhooks_group.command("remove")
@click.argument("webhook_id", type=int)
def webhooks_remove(webhook_id: int) -> None:
    """Remove a webhook (and its delivery records)."""
    with opened() as ctx, ctx.db.session() as session:
        webhooks.remove(session, Actor.cli(), webhook_id)
    click.echo(f"webhook {webhook_id} removed")


@main.group("categories")
def categories_group() -> None:
    """Categories: phrases said (or not) by whom and when, and conditions, that calls match."""


def _category_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that define a category (`categories add` and `change`)."""
    options = [
        click.option(
            "--phrase", "phrases", multiple=True, help="a phrase; a trailing * is a prefix"
        ),
        click.option(
            "--like",
            multiple=True,
            help="an example sentence: lines that mean the same match (any language)",
        ),
        click.option(
            "--similarity",
            type=float,
            help="how similar in meaning (0–1) a line must be to an example",
        ),
        click.option("--speaker", type=click.Choice(["agent", "customer", "any"]), default="any"),
        click.option("--first-s", type=float, help="said within the first N seconds"),
        click.option("--last-s", type=float, help="said within the last N seconds"),
        click.option("--absent", is_flag=True, help="matches when none of the phrases is said"),
        click.option(
            "--non-talk-over-s", type=float, help="condition: non-talk time over N seconds"
        ),
        click.option(
            "--interruptions-at-least", type=int, help="condition: at least N interruptions"
        ),
        click.option(
            "--customer-sentiment",
            type=click.Choice(["negative", "neutral", "positive"]),
            help="condition: the customer's sentiment over the call",
        ),
        click.option(
            "--customer-trend",
            type=click.Choice(["falling", "rising"]),
            help="condition: the customer's sentiment trend",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _category_fields(phrases: tuple[str, ...], options: dict[str, Any]) -> dict[str, Any]:
    conditions = {
        key: options.pop(key)
        for key in (
            "non_talk_over_s",
            "interruptions_at_least",
            "customer_sentiment",
            "customer_trend",
        )
        if options.get(key) is not None
    }
    return {
        "phrases": list(phrases),
        "like": list(options.pop("like", ())),
        **{k: v for k, v in options.items() if v is not None},
        "conditions": conditions,
    }


@categories_group.command("add")
@click.argument("name")
@_category_options
def categories_add(name: str, phrases: tuple[str, ...], **options: Any) -> None:
    """Add a category; stored calls are matched by the workers (or `categories apply`)."""
    with opened() as ctx, ctx.db.session() as session:
        category = categories.add(session, Actor.cli(), name, _category_fields(phrases, options))
    click.echo(f"category {category.id} ({category.name}) added")


@categories_group.command("change")
@click.argument("name")
@click.option("--name", "new_name", help="its new name (default: it keeps its name)")
@_category_options
def categories_change(
    name: str, new_name: str | None, phrases: tuple[str, ...], **options: Any
) -> None:
    """Change a category (by name or id): the definition given replaces the old one, and the
    stored calls are matched again by the workers (or `categories apply`)."""
    with opened() as ctx, ctx.db.session() as session:
        category = categories.find_category(session, name)
        categories.change(
            session,
            Actor.cli(),
            category.id,
            new_name or category.name,
            _category_fields(phrases, options),
        )
        click.echo(f"category {category.id} ({category.name}) changed")


@categories_group.command("list")
def categories_list() -> None:
    """List categories with the number of calls that match each."""
    with opened() as ctx, ctx.db.session() as session:
        for row in categories.listing(session):
            phrases = ", ".join(row["phrases"]) or "-"
            state = "" if row["applied"] else "  (being applied)"
            click.echo(
                f"{row['id']:4} {row['name']:24} {row['calls']:6} call(s)  "
                f"{'NOT ' if row['absent'] else ''}{phrases} [{row['speaker']}]{state}"
            )


@categories_group.command("remove")
@click.argument("name")
def categories_remove(name: str) -> None:
    """Remove a category (by name or id) and its matches."""
    with opened() as ctx, ctx.db.session() as session:
        categories.remove(session, Actor.cli(), name)
    click.echo(f"category {name} removed")


@categories_group.command("apply")
@click.option("--all", "every", is_flag=True, help="match every category again")
def categories_apply(every: bool) -> None:
    """Match stored calls against the categories added or changed since they were processed
    (with --all, against every category), with a progress bar for each."""
    with opened() as ctx:
        if every:
            with ctx.db.session() as session:
                categories.reapply(session)
                audit.record(session, Actor.cli(), "category.apply", "list", None)
        pending = categories.pending(ctx.db)
        label = ", ".join(pending) if len(pending) <= 3 else f"{len(pending)} categories"
        with click.progressbar(length=1, label=label, file=sys.stderr) as bar:
            while (step := categories.apply_step(ctx.db)) is not None:
                done, total = step
                bar.length = max(total, 1)
                bar.update(done - bar.pos)
    click.echo(f"applied {len(pending)} categor{'y' if len(pending) == 1 else 'ies'}")


@main.group("forms")
def forms_group() -> None:
    """Quality evaluation forms (docs/metrics.md#evaluation-score)."""


@forms_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def forms_import(path: Path) -> None:
    """Import a form from its JSON file: a new version when its name exists."""
    raw = errors.read_json(path.read_bytes(), str(path), evaluations.EvaluationError)
    with opened() as ctx, ctx.db.session() as session:
        form = evaluations.import_form(session, Actor.cli(), raw)
        click.echo(f"form {form.name!r} version {form.version} imported (id {form.id})")


@forms_group.command("list")
def forms_list() -> None:
    """The newest version of every form, with its questions."""
    with opened() as ctx, ctx.db.session() as session:
        for form in evaluations.latest_forms(session):
            questions = sum(len(s["questions"]) for s in form.definition["sections"])
            click.echo(f"{form.id:4} {form.name}  (version {form.version}, {questions} questions)")


@main.group("evaluations")
def evaluations_group() -> None:
    """Quality evaluations: sampling calls for supervisors to evaluate."""


@evaluations_group.command("sample")
@click.option("--per-agent", type=int, required=True, help="calls to sample per agent")
@click.option("--days", type=int, required=True, help="from the calls of the last N days")
@click.option("--queue", help="only the calls of this queue")
@click.option("--weighted", is_flag=True, help="likelier: negative customers, falling trends")
@click.option(
    "--risk", multiple=True, help="likelier: calls matching this category (again for more)"
)
@click.option("--seed", type=int, help="a fixed random seed (the same draw again)")
def evaluations_sample(
    per_agent: int,
    days: int,
    queue: str | None,
    weighted: bool,
    risk: tuple[str, ...],
    seed: int | None,
) -> None:
    """Assign random processed calls of each agent, not evaluated yet, to a supervisor of
    their queue (their *To evaluate* list)."""
    with opened() as ctx, ctx.db.session() as session:
        given = evaluations.sample(
            session,
            Actor.cli(),
            per_agent,
            days,
            queue,
            weighted,
            random.Random(seed) if seed is not None else None,
            list(risk),
        )
    for name, count in given.items():
        click.echo(f"{name}: {count} call(s)")
    click.echo(f"assigned {sum(n for k, n in given.items() if not k.startswith('('))} call(s)")
