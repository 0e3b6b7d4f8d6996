"""The server as the network meets it (`callscope serve`, a real socket): uploads that arrive
slowly hold no database connection, so other requests are answered while they trickle in; and
a body nobody signed in may send is refused before it is read."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar

import pytest
from sqlalchemy import select

from callscope.context import Context
from callscope.db.models import AuditEvent
from callscope.governance import auth
from tests.support import PASSWORD, make_meta, make_settings, serving

BOUNDARY = "callscope-test-boundary"
SLOW_UPLOADS = 20  # more than the database pool's 5 connections and 10 overflow


@pytest.fixture(scope="module")
def served(tmp_path_factory, model_dir) -> Iterator[dict]:
    data = tmp_path_factory.mktemp("served")
    ctx = Context.open(make_settings(data, model_dir=model_dir))
    with ctx.db.session() as session:
        auth.add_user(session, "boss", "admin", PASSWORD)
        token = auth.create_token(session, "boss", "feed", "ingest")
    with serving(ctx.settings, data / "server.log") as base:
        yield {"port": int(base.rsplit(":", 1)[1]), "base": base, "token": token, "ctx": ctx}
    ctx.close()


def started_upload(port: int, path: str, headers: dict[str, str], first: bytes) -> socket.socket:
    """A POST of a 100 MB multipart body of which only FIRST has been sent (the rest never is)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        f"Content-Length: {100 * 2**20}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + first)
    return sock


def audio_part_start() -> bytes:
    meta = json.dumps(make_meta())
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n{meta}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        + b"RIFF"
        + bytes(60_000)
    )


def test_slow_uploads_leave_the_database_to_everyone_else(served):
    bearer = {"Authorization": f"Bearer {served['token']}"}
    slow = [
        started_upload(served["port"], "/api/v1/conversations", bearer, audio_part_start())
        for _ in range(SLOW_UPLOADS)
    ]
    try:
        time.sleep(2)  # (each upload is past its token check and waiting for bytes)
        request = urllib.request.Request(
            f"http://127.0.0.1:{served['port']}/api/v1/conversations", headers=bearer
        )
        with urllib.request.urlopen(request, timeout=20) as answer:  # noqa: S310 (loopback)
            assert answer.status == 200
            assert json.loads(answer.read())["total"] == 0
    finally:
        for sock in slow:
            sock.close()


def test_a_body_from_nobody_signed_in_is_refused_before_it_is_read(served):
    sock = started_upload(
        served["port"],
        "/admin/import",
        {},
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="transcript"; '
        f'filename="t.vtt"\r\n\r\n'.encode()
        + bytes(2**20),
    )
    try:
        answer = sock.recv(200).decode("latin-1")  # (99 MB of the body are never sent)
    finally:
        sock.close()
    assert answer.startswith("HTTP/1.1 403 "), answer


def test_a_forwarded_address_is_believed_only_from_a_trusted_proxy(served):
    """No proxy is configured: a sign-in that says it was forwarded for another address is
    recorded (and throttled) as coming from its peer, the loopback."""
    base = served["base"]
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with browser.open(f"{base}/login", timeout=10) as page:  # (loopback)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode())[1]
    form = {"username": "boss", "password": "not the password", "csrf_token": csrf}
    request = urllib.request.Request(  # noqa: S310 (the loopback)
        f"{base}/login",
        data=urllib.parse.urlencode(form).encode(),
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        browser.open(request, timeout=10)
    assert refused.value.code == 401
    with served["ctx"].db.session() as session:
        sources = session.scalars(
            select(AuditEvent.source).where(AuditEvent.action == "sign_in_failed")
        ).all()
    assert sources == ["127.0.0.1"]
