"""Administration, sign-in protection and the audit log, through the pages and the CLI."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from callscope.config import ConfigError, Settings, load_settings
from callscope.context import Context
from callscope.db.models import ApiToken, AuditEvent, Queue, User
from callscope.governance import admin, auth, policy
from callscope.governance.audit import Actor
from callscope.processing.ingest import Ingestor
from callscope.web.app import create_app
from tests.support import DEMO_CALLS, PASSWORD, callscope, make_meta, sign_in


@pytest.fixture
def site(ctx: Context) -> Iterator[dict]:
    call = Ingestor(ctx).ingest_file(DEMO_CALLS / "synthetic_en_stereo.wav", make_meta())
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
        auth.add_user(session, "boss", "admin", PASSWORD)
        auth.add_user(session, "marcus", "agent", PASSWORD, agent_external_id="AG-1")
    with TestClient(create_app(ctx)) as client:
        yield {"ctx": ctx, "client": client, "call": call}


def events(ctx: Context, action: str | None = None) -> list[AuditEvent]:
    with ctx.db.session() as session:
        query = select(AuditEvent).order_by(AuditEvent.id)
        if action:
            query = query.where(AuditEvent.action == action)
        return list(session.scalars(query))


def csrf_of(client: TestClient, path: str = "/conversations") -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get(path).text).group(1)


# --- sign-in, cookies, CSRF -----------------------------------------------------------------


def test_session_cookie_is_httponly_and_samesite(site):
    res = site["client"].get("/login")
    cookie = res.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie


def test_session_cookie_is_secure_when_served_over_https(settings, tmp_path):
    ctx = Context.open(settings.model_copy(update={"secure_cookies": True}))
    with TestClient(create_app(ctx)) as client:
        assert "secure" in client.get("/login").headers["set-cookie"].lower()
    ctx.close()


def test_forms_without_the_csrf_token_are_refused(site):
    client = site["client"]
    res = client.post("/login", data={"username": "boss", "password": PASSWORD})
    assert res.status_code == 403 and "reload the page" in res.text  # (a page: a form was sent)
    csrf = sign_in(client, "boss")
    for path, data in [
        ("/preferences/language", {"language": "id"}),
        ("/logout", {}),
        ("/admin/settings", {"recordings.enabled": "on"}),
        ("/admin/users", {"username": "x", "role": "admin", "password": "y" * 10}),
    ]:
        assert client.post(path, data=data).status_code == 403, path
        wrong = client.post(path, data={**data, "csrf_token": csrf[::-1]})
        assert wrong.status_code == 403, path
    assert client.get("/conversations").status_code == 200  # still signed in
    with site["ctx"].db.session() as session:
        assert session.scalar(select(User).where(User.username == "x")) is None


def test_sign_in_is_throttled_after_five_failures(site):
    client = site["client"]
    for _ in range(5):
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        res = client.post(
            "/login",
            data={"username": "marcus", "password": "wrong", "csrf_token": token.group(1)},
        )
        assert res.status_code == 401 and "Wrong user name or password" in res.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    res = client.post(
        "/login", data={"username": "marcus", "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert res.status_code == 429 and "Try again in 15 minutes" in res.text
    failed = events(site["ctx"], "sign_in_failed")
    assert len(failed) == 6 and failed[-1].details == {"throttled": True}
    assert {e.object_id for e in failed} == {"marcus"}
    assert events(site["ctx"], "sign_in") == []
    # another user is not locked out by marcus's failures
    assert sign_in(client, "boss")


def test_a_name_no_account_has_is_not_written_down_yet_is_throttled(site):
    """A name nobody has (often a password typed into the name field, or an attacker's list)
    is recorded as a keyed digest: the audit log and its page never show it, and the same name
    is still refused after five failures."""
    client = site["client"]

    def fail(username: str) -> int:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        data = {"username": username, "password": "x", "csrf_token": token.group(1)}
        return client.post("/login", data=data).status_code

    typed = "Tr0ub4dor&3-my-password"
    assert [fail(typed) for _ in range(6)] == [401] * 5 + [429]
    assert fail("another-made-up-name") == 401  # (another name: its own count)
    failed = events(site["ctx"], "sign_in_failed")
    recorded = {(e.actor, e.object_id) for e in failed}
    assert len(recorded) == 2 and all(
        actor == name and name.startswith("unknown:") and len(name) == 24
        for actor, name in recorded
    )
    assert typed not in str([(e.actor, e.object_id, e.details) for e in failed])
    sign_in(client, "boss")
    page = client.get("/admin/audit", params={"action": "sign_in_failed"}).text
    assert typed not in page and "another-made-up-name" not in page and "unknown:" in page
    # the names nobody has are one choice of "Who", however many were tried
    for number in range(30):
        fail(f"sprayed-name-{number}")
    choices = re.findall(r'<option value="(unknown:[^"]*)"', client.get("/admin/audit").text)
    assert choices == ["unknown:"]
    only = client.get("/admin/audit", params={"actor": "unknown:"}).text
    shown = int(re.search(r"(\d+) entries", only).group(1))
    assert shown == len(events(site["ctx"], "sign_in_failed")) >= 37
    assert "<code>sign_in</code>" not in only  # (boss signed in: not among them)


def attempt(client: TestClient, username: str, password: str, address: str) -> int:
    """A sign-in from ADDRESS (as the trusted proxy in front of callscope reports it)."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    res = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        headers={"X-Forwarded-For": f"{address}, 10.0.0.1"},
        follow_redirects=False,
    )
    return res.status_code


def test_failures_from_elsewhere_do_not_lock_an_account_out_of_its_own_address(ctx):
    behind_proxy = ctx.settings.model_copy(update={"trusted_proxies": "testclient, 10.0.0.1"})
    proxied = Context(behind_proxy, ctx.db, ctx.store, ctx.queue)
    with ctx.db.session() as session:
        auth.add_user(session, "boss", "admin", PASSWORD)
    with TestClient(create_app(proxied)) as client:
        for _ in range(6):
            assert attempt(client, "boss", "wrong", "203.0.113.9") in (401, 429)
        assert attempt(client, "boss", PASSWORD, "203.0.113.9") == 429  # the attacker's address
        assert attempt(client, "boss", PASSWORD, "198.51.100.7") == 303  # the admin's own
    sources = {e.source for e in events(ctx, "sign_in_failed")}
    assert sources == {"203.0.113.9"}  # the client, not the proxy


def test_an_oversized_sign_in_is_refused_without_filling_the_audit_log(site):
    client = site["client"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    huge = {"username": "x" * 900_000, "password": "wrong", "csrf_token": token}
    for _ in range(3):
        assert client.post("/login", data=huge).status_code == 422
    assert events(site["ctx"]) == []
    body = b"x" * (3 * 1024 * 1024)
    res = client.post("/login", files={"username": ("u.bin", body)}, data={"csrf_token": token})
    assert res.status_code == 413 and "larger than 1 MiB" in res.json()["detail"]
    chunked = client.post(
        "/login",
        content=(b"x" * 65536 for _ in range(40)),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert chunked.status_code == 413


def test_disabled_user_cannot_sign_in_and_loses_the_session(site):
    client, ctx = site["client"], site["ctx"]
    sign_in(client, "marcus")
    with ctx.db.session() as session:
        session.scalar(select(User).where(User.username == "marcus")).disabled = True
    assert client.get("/conversations", follow_redirects=False).status_code == 303
    with pytest.raises(AssertionError):
        sign_in(client, "marcus")


def copy_of_session(client: TestClient) -> TestClient:
    """Another browser holding a copy of CLIENT's session cookie (as a thief would)."""
    thief = TestClient(client.app, follow_redirects=False)
    thief.cookies.set("callscope_session", client.cookies["callscope_session"])
    assert thief.get("/conversations").status_code == 200
    return thief


def test_signing_out_ends_a_copied_session_too(site):
    client = site["client"]
    csrf = sign_in(client, "marcus")
    thief = copy_of_session(client)
    res = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert res.status_code == 303
    assert thief.get("/conversations").status_code == 303  # off to sign in
    assert thief.get(f"/api/v1/conversations/{site['call'].id}/analysis").status_code == 401


@pytest.mark.parametrize("change", ["password", "role"])
def test_a_new_password_or_role_ends_the_users_sessions(site, change):
    client, ctx = site["client"], site["ctx"]
    sign_in(client, "marcus")
    thief = copy_of_session(client)
    with ctx.db.session() as session:
        marcus = admin.user_by_name(session, "marcus")
        if change == "password":
            admin.set_password(session, Actor.cli(), marcus.id, "a brand new password")
        else:
            admin.update_user(session, Actor.cli(), marcus.id, "supervisor", None, [])
    assert thief.get("/conversations").status_code == 303
    assert client.get("/conversations", follow_redirects=False).status_code == 303


# --- administration pages --------------------------------------------------------------------


def test_admin_pages_are_for_administrators_only(site):
    client = site["client"]
    sign_in(client, "marcus")
    for path in ("/admin/users", "/admin/tokens", "/admin/settings", "/admin/audit"):
        res = client.get(path)
        assert res.status_code == 403 and "administrators only" in res.text
    assert "/admin/users" not in client.get("/conversations").text


def test_admin_creates_changes_disables_and_resets_a_user(site):
    client, ctx = site["client"], site["ctx"]
    csrf = sign_in(client, "boss")
    res = client.post(
        "/admin/users",
        data={
            "username": "sue",
            "role": "supervisor",
            "password": "sue's long password",
            "queues": ["1"],
            "csrf_token": csrf,
        },
    )
    assert res.status_code == 200 and "User created." in res.text
    with ctx.db.session() as session:
        sue = session.scalar(select(User).where(User.username == "sue"))
        assert sue.role == "supervisor" and [q.name for q in sue.queues] == ["Internet support"]
        sue_id = sue.id
    page = client.get(f"/admin/users/{sue_id}").text
    assert 'value="supervisor" selected' in page
    client.post(
        f"/admin/users/{sue_id}", data={"role": "agent", "agent_id": "AG-9", "csrf_token": csrf}
    )
    client.post(f"/admin/users/{sue_id}/disabled", data={"disabled": "true", "csrf_token": csrf})
    res = client.post(
        f"/admin/users/{sue_id}/password", data={"password": "short", "csrf_token": csrf}
    )
    assert "at least 8 characters" in res.text
    client.post(
        f"/admin/users/{sue_id}/password",
        data={"password": "a new long password", "csrf_token": csrf},
    )
    with ctx.db.session() as session:
        sue = session.get(User, sue_id)
        assert sue.role == "agent" and sue.agent.external_id == "AG-9" and sue.queues == []
        assert sue.disabled
        assert auth.verify_password(sue.password_hash, "a new long password")
    assert [e.action for e in events(ctx) if e.object_type == "user" and e.action != "sign_in"] == [
        "user.create",
        "user.change",
        "user.disable",
        "user.password",
    ]
    assert all(e.actor == "boss" and e.source == "testclient" for e in events(ctx, "user.create"))


def test_the_last_administrator_cannot_be_demoted_or_disabled(site):
    client, ctx = site["client"], site["ctx"]
    csrf = sign_in(client, "boss")
    with ctx.db.session() as session:
        boss_id = session.scalar(select(User.id).where(User.username == "boss"))
    res = client.post(
        f"/admin/users/{boss_id}", data={"role": "agent", "agent_id": "A", "csrf_token": csrf}
    )
    assert "only active administrator" in res.text
    res = client.post(
        f"/admin/users/{boss_id}/disabled", data={"disabled": "true", "csrf_token": csrf}
    )
    assert "only active administrator" in res.text
    with ctx.db.session() as session:
        boss = session.get(User, boss_id)
        assert boss.role == "admin" and not boss.disabled


def test_admin_creates_a_token_shown_once_and_revokes_it(site):
    client, ctx = site["client"], site["ctx"]
    csrf = sign_in(client, "boss")
    page = client.post(
        "/admin/tokens", data={"name": "crm", "username": "marcus", "csrf_token": csrf}
    ).text
    token = re.search(r'<code id="new-token">([^<]+)</code>', page).group(1)
    assert "new-token" not in client.get("/admin/tokens").text  # shown only once
    with TestClient(client.app) as api:
        api.headers["Authorization"] = f"Bearer {token}"
        assert api.get("/api/v1/conversations").json()["total"] == 1
        with ctx.db.session() as session:
            row = session.scalar(select(ApiToken).where(ApiToken.name == "crm"))
            assert row.token_hash != token and token not in row.prefix + row.token_hash
        client.post(f"/admin/tokens/{row.id}/revoke", data={"csrf_token": csrf})
        assert api.get("/api/v1/conversations").status_code == 401
    assert [e.action for e in events(ctx) if e.object_type == "api_token"] == [
        "token.create",
        "token.revoke",
    ]


def test_admin_settings_page_changes_and_audits_the_policy(site):
    client, ctx = site["client"], site["ctx"]
    csrf = sign_in(client, "boss")
    form = {
        "csrf_token": csrf,
        "recordings.enabled": "on",
        "consent.required": "on",
        "downloads.audio": "administrators",
        "downloads.transcript": "everyone",
        "retention.days": "30",
        "retention.mode": "recordings",
        "pii.originals": "administrators",
        "evaluations.amend_days": "7",
    }
    res = client.post("/admin/settings", data=form)
    assert "Settings saved." in res.text
    with ctx.db.session() as session:
        values = policy.all_values(session)
    assert values["consent.required"] is True and values["retention.days"] == 30
    assert values["downloads.audio"] == "administrators" and values["pii.redaction"] is False
    changes = {
        e.object_id: (e.details["old"], e.details["new"]) for e in events(ctx, "setting.change")
    }
    assert changes == {
        "consent.required": (False, True),
        "downloads.audio": ("everyone", "administrators"),
        "retention.days": (0, 30),
        "pii.originals": ("delete", "administrators"),
    }
    for bad, message in [
        ({"retention.days": "-1"}, "must be at least 0"),
        ({"retention.days": "soon"}, "takes a int"),
        ({"downloads.audio": "interns"}, "takes one of everyone"),
    ]:
        res = client.post("/admin/settings", data={**form, "consent.required": "", **bad})
        assert message in res.text
    with ctx.db.session() as session:
        assert policy.all_values(session) == values  # nothing of a refused form is stored


def vocabularies(ctx: Context) -> dict[str, str | None]:
    with ctx.db.session() as session:
        return {q.name: q.vocabulary for q in session.scalars(select(Queue))}


def test_admin_sets_a_queues_custom_vocabulary_on_its_page(site):
    client, ctx = site["client"], site["ctx"]
    csrf = sign_in(client, "marcus")
    assert client.get("/admin/queues").status_code == 403
    assert client.post("/admin/queues", data={"csrf_token": csrf, "name": "x"}).status_code == 403
    client.cookies.clear()
    csrf = sign_in(client, "boss")
    typed = "Northwind Electronics,\n SoundWave  X2, northwind electronics, ,Bank Sejahtera"
    res = client.post(
        "/admin/queues", data={"csrf_token": csrf, "name": "Support", "vocabulary": typed}
    )
    assert "Vocabulary saved." in res.text and "SoundWave X2" in res.text
    assert vocabularies(ctx) == {
        "Internet support": None,  # (the queue of the site's call)
        "Support": "Northwind Electronics, SoundWave X2, Bank Sejahtera",
    }
    [event] = events(ctx, "queue.vocabulary")
    assert event.details == {"terms": 3} and event.actor == "boss"
    for bad, message in [
        ({"vocabulary": "Northwind\x07"}, "control character"),
        ({"vocabulary": "x" * 101}, "longer than 100 characters"),
        ({"vocabulary": ", ".join(f"Term number {i}" for i in range(80))}, "longer than 1000"),
        ({"name": "  "}, "a queue name has 1 to 200 characters"),
    ]:
        res = client.post("/admin/queues", data={"csrf_token": csrf, "name": "Support", **bad})
        assert message in res.text
    assert vocabularies(ctx)["Support"] == "Northwind Electronics, SoundWave X2, Bank Sejahtera"
    client.post("/admin/queues", data={"csrf_token": csrf, "name": "Support", "vocabulary": ""})
    assert vocabularies(ctx)["Support"] is None


def test_cli_sets_and_lists_queue_vocabularies(site):
    ctx = site["ctx"]
    res = callscope(ctx, "queues", "vocabulary", "Billing", "Bank Sejahtera, kartu debit")
    assert res.returncode == 0 and res.stdout == "Billing: Bank Sejahtera, kartu debit\n"
    listed = callscope(ctx, "queues", "list").stdout
    assert listed == "Billing\tBank Sejahtera, kartu debit\nInternet support\t\n"
    res = callscope(ctx, "queues", "vocabulary", "Billing", "a" * 101)
    assert res.returncode == 1 and "longer than 100 characters" in res.stderr
    assert vocabularies(ctx)["Billing"] == "Bank Sejahtera, kartu debit"
    assert [e.actor.startswith("cli:") for e in events(ctx, "queue.vocabulary")] == [True]


# --- the audit log -----------------------------------------------------------------------------


def test_views_plays_and_downloads_are_audited(site):
    client, ctx, call = site["client"], site["ctx"], site["call"]
    csrf = sign_in(client, "marcus")
    base = f"/api/v1/conversations/{call.id}"
    assert client.get(f"/conversations/{call.id}").status_code == 200
    assert client.get(f"{base}/audio", headers={"Range": "bytes=0-99"}).status_code == 206
    assert (
        client.post(f"/conversations/{call.id}/played", headers={"X-CSRF-Token": csrf}).status_code
        == 204
    )
    assert client.get(f"{base}/audio?download=true").status_code == 200
    assert client.get(f"{base}/transcript.html").status_code == 200
    assert client.get(f"{base}/analysis").status_code == 200
    mine = [(e.action, e.object_id, e.details) for e in events(ctx) if e.actor == "marcus"]
    assert mine == [
        ("sign_in", "marcus", {}),
        ("conversation.view", str(call.id), {}),
        ("recording.play", str(call.id), {}),
        ("recording.download", str(call.id), {}),
        ("transcript.download", str(call.id), {}),
        ("conversation.view", str(call.id), {"via": "api"}),
    ]


def test_downloads_follow_the_download_settings(site):
    client, ctx, call = site["client"], site["ctx"], site["call"]
    with ctx.db.session() as session:
        policy.set_value(session, "downloads.audio", "supervisors")
        policy.set_value(session, "downloads.transcript", "nobody")
    sign_in(client, "marcus")
    base = f"/api/v1/conversations/{call.id}"
    page = client.get(f"/conversations/{call.id}").text
    assert "download-audio" not in page and "download-transcript" not in page
    res = client.get(f"{base}/audio")
    assert res.status_code == 403 and "not allowed for your role (agent)" in res.json()["detail"]
    assert client.get(f"{base}/audio", headers={"Range": "bytes=0-99"}).status_code == 206
    assert client.get(f"{base}/transcript.html").status_code == 403
    assert events(ctx, "recording.download") == []


def test_the_audit_log_is_append_only(site):
    ctx = site["ctx"]
    sign_in(site["client"], "boss")
    for statement in ("UPDATE audit_events SET actor = 'nobody'", "DELETE FROM audit_events"):
        with pytest.raises(DatabaseError, match="append-only"), ctx.db.session() as session:
            session.execute(text(statement))
    assert [e.actor for e in events(ctx)] == ["boss"]


def test_audit_page_filters_by_action_and_user(site):
    client = site["client"]
    sign_in(client, "marcus")
    client.get(f"/conversations/{site['call'].id}")
    with TestClient(client.app) as boss:
        sign_in(boss, "boss")
        page = boss.get("/admin/audit?action=conversation.view").text
        assert "1 entry" in page and "marcus" in page
        row = page.split("<tbody>")[1]
        # what happened in words, the call by its own id (not the database's)
        assert "opened a conversation (page or analysis API)" in row
        assert f'<a href="/conversations/{site["call"].id}">{site["call"].external_id}</a>' in row
        page = boss.get("/admin/audit?actor=boss").text
        assert "1 entry" in page and "conversation.view" not in page.split("<tbody>")[1]
        assert boss.get("/admin/audit?start=yesterday").status_code == 422


def test_cli_audit_and_user_commands(site):
    ctx = site["ctx"]
    assert callscope(ctx, "users", "disable", "marcus").returncode == 0
    res = callscope(ctx, "users", "set-password", "marcus", "--password-stdin", stdin="tiny\n")
    assert res.returncode == 1 and "at least 8 characters" in res.stderr
    res = callscope(
        ctx, "users", "set-password", "marcus", "--password-stdin", stdin="a fine new password\n"
    )
    assert res.returncode == 0
    res = callscope(ctx, "users", "disable", "nobody")
    assert res.returncode == 1 and "no user 'nobody'" in res.stderr
    res = callscope(ctx, "audit", "--json")
    lines = res.stdout.strip().splitlines()
    assert res.returncode == 0 and len(lines) == 2
    assert '"action": "user.password"' in lines[0] and '"actor": "cli:' in lines[0]
    assert '"action": "user.disable"' in lines[1]
    res = callscope(ctx, "audit", "--action", "sign_in")
    assert res.returncode == 0 and res.stdout == ""
    res = callscope(ctx, "tokens", "create", "robot", "--user", "boss")
    assert res.returncode == 0 and res.stdout.startswith("cs_")
    listed = callscope(ctx, "tokens", "list").stdout
    token_id = listed.split()[0]
    assert "robot" in listed and res.stdout.strip() not in listed
    assert callscope(ctx, "tokens", "revoke", token_id).returncode == 0
    assert "revoked" in callscope(ctx, "tokens", "list").stdout


def test_passwords_are_hashed_with_argon2id_and_the_memory_the_settings_give():
    assert Settings().password_memory_kib == 65536  # (64 MiB, as RFC 9106 recommends)
    made = auth.hash_password(PASSWORD)
    # this suite's setting (tests/conftest.py) is the one in force
    assert made.startswith("$argon2id$v=19$m=1024,t=3,p=4$"), made
    before = PasswordHasher(memory_cost=65536).hash(PASSWORD)  # made under the default
    assert auth.verify_password(before, PASSWORD) and not auth.verify_password(before, "guess")
    with pytest.raises(ConfigError, match="CALLSCOPE_PASSWORD_MEMORY_KIB: .* 1024"):
        load_settings({"CALLSCOPE_PASSWORD_MEMORY_KIB": "512"})
