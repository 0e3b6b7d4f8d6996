"""Webhooks: signed events to a real HTTP receiver on loopback, retried after a failure."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from callscope.context import Context
from callscope.db.models import Conversation, Job, Recording, Webhook, WebhookDelivery, utcnow
from callscope.governance import auth
from callscope.governance.audit import Actor
from callscope.processing import jobs, retention, webhooks, worker
from callscope.processing.ingest import Ingestor
from callscope.store import blob_key
from callscope.web.app import create_app
from tests.support import FORMATS, PASSWORD, callscope, make_meta, make_settings, sign_in

SHORT = FORMATS / "whatstheweatherlike.wav"


class Receiver:
    """An HTTP server that answers the first FAILURES requests with 500, then 204."""

    def __init__(self, failures: int) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.failures = failures
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                self.send_response(500 if len(outer.requests) <= outer.failures else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=1)
    yield r
    r.close()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    fields = dict(part.split("=", 1) for part in headers["X-Callscope-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), fields["v1"]) and (
        abs(time.time() - int(fields["t"])) < 300
    )


def deliveries(ctx: Context) -> list[WebhookDelivery]:
    with ctx.db.session() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


@pytest.mark.model
def test_processed_event_is_signed_and_retried_after_a_failure(tmp_path, model_dir, receiver):
    ctx = Context.open(make_settings(tmp_path / "d", model_dir=model_dir, webhook_retry_base_s=60))
    with ctx.db.session() as session:
        _hook, secret = webhooks.add(session, Actor.cli(), receiver.url)
    conv = Ingestor(ctx).ingest_file(SHORT, make_meta(mono=True))
    assert jobs.run_job(ctx, conv.job, "test") == "processed"
    failed_at = utcnow()
    assert webhooks.deliver_due(ctx) == 1  # the first attempt

    [first] = deliveries(ctx)
    assert (first.status, first.attempts, first.last_status_code) == ("pending", 1, 500)
    wait = (first.next_attempt_at - failed_at).total_seconds()
    assert 59 < wait < 90  # it backs off by the base …
    assert webhooks.deliver_due(ctx) == 0  # … and is not due before
    with ctx.db.session() as session:  # the minute passes
        session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow()))
    assert webhooks.deliver_due(ctx) == 1
    [done] = deliveries(ctx)
    assert (done.status, done.attempts, done.last_status_code) == ("delivered", 2, 204)

    assert len(receiver.requests) == 2
    for headers, body in receiver.requests:
        assert verify(secret, headers, body)
        assert not verify("another secret", headers, body)
        event = json.loads(body)
        assert event["event"] == "conversation.processed" == headers["X-Callscope-Event"]
        assert event["conversation"]["id"] == conv.id and event["delivery"] == done.id
    ctx.close()


def test_failed_processing_is_an_event_too(tmp_path, model_dir, receiver):
    receiver.failures = 0
    ctx = Context.open(make_settings(tmp_path / "d", model_dir=model_dir))
    with ctx.db.session() as session:
        webhooks.add(session, Actor.cli(), receiver.url)
    conv = Ingestor(ctx).ingest_file(SHORT, make_meta(mono=True))
    with ctx.db.session() as session:  # the original goes missing: processing must fail
        ctx.store.delete(blob_key(session.scalar(select(Recording.sha256))))
    assert jobs.run_job(ctx, conv.job, "test") == "failed"
    assert webhooks.deliver_due(ctx) == 1
    event = json.loads(receiver.requests[0][1])
    assert event["event"] == "conversation.failed"
    assert "missing from the media store" in event["conversation"]["error"]
    ctx.close()


@pytest.mark.model
def test_a_receiver_that_never_answers_ends_failed(tmp_path, model_dir, monkeypatch):
    ctx = Context.open(
        make_settings(tmp_path / "d", model_dir=model_dir, webhook_retry_base_s=0.01)
    )
    monkeypatch.setattr(webhooks, "MAX_ATTEMPTS", 3)
    with ctx.db.session() as session:
        webhooks.add(session, Actor.cli(), "http://127.0.0.1:9/closed")  # nothing listens
    conv = Ingestor(ctx).ingest_file(SHORT, make_meta(mono=True))
    assert jobs.run_job(ctx, conv.job, "test") == "processed"
    for _ in range(10):
        time.sleep(0.05)
        webhooks.deliver_due(ctx)
    [delivery] = deliveries(ctx)
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert "ConnectionRefusedError" in delivery.last_error or "URLError" in delivery.last_error
    ctx.close()


@pytest.mark.parametrize("url", ["ftp://example.com/x", "https://", "javascript:alert(1)", ""])
def test_webhook_urls_must_be_http(ctx: Context, url):
    with pytest.raises(webhooks.WebhookError, match="must be http"), ctx.db.session() as session:
        webhooks.add(session, Actor.cli(), url)


def test_administrator_manages_webhooks_from_the_page_and_the_cli(ctx: Context):
    with ctx.db.session() as session:
        auth.add_user(session, "boss", "admin", PASSWORD)
    with TestClient(create_app(ctx)) as client:
        csrf = sign_in(client, "boss")
        page = client.post(
            "/admin/webhooks", data={"url": "https://crm.example.com/h", "csrf_token": csrf}
        ).text
        assert "Webhook added." in page and 'id="new-secret"' in page
        assert 'id="new-secret"' not in client.get("/admin/webhooks").text
        page = client.post("/admin/webhooks", data={"url": "gopher://x", "csrf_token": csrf}).text
        assert "must be http" in page
    listed = callscope(ctx, "webhooks", "list").stdout
    assert "https://crm.example.com/h  no deliveries" in listed
    added = callscope(ctx, "webhooks", "add", "https://other.example.com/")
    assert added.returncode == 0 and "signing secret: " in added.stdout
    hook_id = added.stdout.split()[1]
    assert callscope(ctx, "webhooks", "remove", hook_id).returncode == 0
    res = callscope(ctx, "webhooks", "remove", hook_id)
    assert res.returncode == 1 and f"no webhook {hook_id}" in res.stderr


# --- a hostile or careless receiver -----------------------------------------------------------


class Trickler:
    """A receiver that answers with a header every half second, for ever (a slow loris)."""

    def __init__(self) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.hits += 1
                try:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    for n in range(120):
                        self.wfile.write(f"X-Slow-{n}: 1\r\n".encode())
                        self.wfile.flush()
                        time.sleep(0.5)
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Redirector:
    """A receiver that answers every event with a redirect elsewhere."""

    def __init__(self, target: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.send_response(302)
                self.send_header("Location", target)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def plant_event(ctx: Context, url: str) -> tuple[int, int]:
    """A registered webhook for URL and a processed event for it; (webhook id, conversation)."""
    conv = Ingestor(ctx).ingest_file(SHORT, make_meta(mono=True))
    with ctx.db.session() as session:
        hook, _secret = webhooks.add(session, Actor.cli(), url)
        webhooks.enqueue(session, session.get_one(Conversation, conv.id), "processed", None)
        return hook.id, conv.id


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://crm.example.com/a hook", "spaces or control characters"),
        ("http://crm.example.com/\x00x", "spaces or control characters"),
        ("http://h:99999/", "is not a port number"),
        ("http://a..b/", "is not a host name"),
        (f"http://{'a' * 64}.example/", "is not a host name"),
        ("http://crm.example.com/café", "must be ASCII (percent-encode the rest)"),
        ("http://[::1", "is not a URL"),
    ],
)
def test_webhook_urls_the_client_cannot_use_are_refused_on_entry(ctx: Context, url, why):
    with pytest.raises(webhooks.WebhookError, match=re.escape(why)), ctx.db.session() as session:
        webhooks.add(session, Actor.cli(), url)


def test_a_stored_url_that_cannot_be_sent_fails_its_delivery_like_any_other(ctx: Context):
    """(As an earlier version stored it.) The attempt is recorded with its error and backs off;
    nothing is raised, and the other deliveries go on."""
    conv = Ingestor(ctx).ingest_file(SHORT, make_meta(mono=True))
    with ctx.db.session() as session:
        session.add(Webhook(url="http://a..b/", secret="s"))
        session.flush()
        webhooks.enqueue(session, session.get_one(Conversation, conv.id), "processed", None)
    assert webhooks.deliver_due(ctx) == 1
    [delivery] = deliveries(ctx)
    assert delivery.status == "pending" and delivery.attempts == 1
    assert "UnicodeError" in delivery.last_error or "label" in delivery.last_error


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_deadline(ctx, monkeypatch):
    monkeypatch.setattr(webhooks, "TIMEOUT_S", 2.0)
    slow = Trickler()
    try:
        plant_event(ctx, slow.url)
        assert webhooks.deliver_due(ctx) == 1  # (the receiver would take a minute)
        [delivery] = deliveries(ctx)
        assert delivery.status == "pending" and "no whole answer within 2 s" in delivery.last_error
    finally:
        slow.server.shutdown()


def test_redirects_are_not_followed_and_not_delivered(ctx: Context, receiver):
    redirector = Redirector(receiver.url)
    try:
        plant_event(ctx, redirector.url)
        webhooks.deliver_due(ctx)
        [delivery] = deliveries(ctx)
        assert delivery.status == "pending" and delivery.last_status_code == 302
        assert "a redirect, which is not followed" in delivery.last_error
        assert receiver.requests == []  # nothing went where the redirect pointed
    finally:
        redirector.server.shutdown()


def test_a_slow_receiver_does_not_hold_up_processing(ctx: Context, monkeypatch):
    monkeypatch.setattr(webhooks, "TIMEOUT_S", 30.0)
    slow = Trickler()
    _hook, conv_id = plant_event(ctx, slow.url)
    with ctx.db.session() as session:  # its job fails fast (no model needed): the original is gone
        ctx.store.delete(blob_key(session.scalar(select(Recording.sha256))))
        job_id = session.scalar(select(Job.id).where(Job.conversation_id == conv_id))
    runner = worker.Worker(ctx, poll_s=0.05)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (slow.hits == 0 or not job_done(ctx, job_id)):
            time.sleep(0.05)
        assert slow.hits >= 1  # the sender is held in the trickle (for up to 30 s) …
        assert job_done(ctx, job_id)  # … while the job was processed meanwhile
    finally:
        runner.stop(timeout=1)
        slow.server.shutdown()


def job_done(ctx: Context, job_id: int) -> bool:
    with ctx.db.session() as session:
        return session.get_one(Job, job_id).status in ("processed", "failed")


def test_an_erased_customers_pending_events_are_not_sent(ctx: Context, receiver):
    plant_event(ctx, receiver.url)
    retention.erase_customer(ctx, Actor.cli(), make_meta()["customer"]["external_id"])
    assert deliveries(ctx) == []
    assert webhooks.deliver_due(ctx) == 0 and receiver.requests == []


def test_removing_a_webhook_during_a_delivery_marks_nothing_delivered(
    ctx: Context, receiver, monkeypatch
):
    hook_id, _conv = plant_event(ctx, receiver.url)
    original = webhooks.post

    def remove_meanwhile(url: str, body: bytes, headers: dict[str, str]) -> int:
        with ctx.db.session() as session:
            webhooks.remove(session, Actor.cli(), hook_id)
            _hook, _secret = webhooks.add(session, Actor.cli(), receiver.url)
            webhooks.enqueue(session, session.scalars(select(Conversation)).one(), "failed", "x")
        return original(url, body, headers)

    monkeypatch.setattr(webhooks, "post", remove_meanwhile)
    webhooks.deliver_due(ctx)
    [fresh] = deliveries(ctx)  # the new event keeps a new id, and waits to be sent
    assert (fresh.status, fresh.attempts, fresh.event) == ("pending", 0, "conversation.failed")
