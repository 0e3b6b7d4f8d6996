"""Single sign-on against a real OpenID provider (the certified `oidc-provider`, run with Node
from tests/oidc), in Chromium: accounts made from the token's claims, a user taken out of the
group, a replayed callback, local sign-in kept for administrators; and the ID token checks
(signature, issuer, audience, expiry, nonce) on tokens made here."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import select

from callscope.context import Context
from callscope.db.models import AuditEvent, User
from callscope.governance import auth
from callscope.web import sso
from tests.support import PASSWORD, free_port, launch_chromium, make_settings, serving

PROVIDER = Path(__file__).parent / "oidc"
SECRET = "the secret of the callscope client at the provider"
ACCOUNTS = {
    "ana": {"name": "Ana Putri", "groups": ["cs-agents"], "employee_id": "AG-7"},
    "sam": {"name": "Sam Lee", "groups": ["cs-supervisors", "everyone"]},
    "mira": {"name": "Mira", "groups": ["marketing"]},
}


@pytest.fixture(scope="module")
def company(tmp_path_factory, model_dir) -> Iterator[dict]:
    """callscope served with single sign-on, and the company's OpenID provider."""
    assert (PROVIDER / "node_modules" / "oidc-provider").is_dir(), "run: npm ci --prefix tests/oidc"
    data = tmp_path_factory.mktemp("sso")
    provider_port, port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{provider_port}"
    accounts, clients = data / "accounts.json", data / "clients.json"
    accounts.write_text(json.dumps(ACCOUNTS))
    clients.write_text(
        json.dumps(
            [
                {
                    "client_id": "callscope",
                    "client_secret": SECRET,
                    "redirect_uris": [f"http://127.0.0.1:{port}/login/sso/callback"],
                    "grant_types": ["authorization_code"],
                    "response_types": ["code"],
                }
            ]
        )
    )
    provider = subprocess.Popen(
        ["node", str(PROVIDER / "provider.mjs"), str(provider_port), str(accounts), str(clients)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert provider.stdout is not None and "listening" in provider.stdout.readline()
    settings = make_settings(data / "callscope", model_dir=model_dir)
    ctx = Context.open(settings)
    with ctx.db.session() as session:
        auth.add_user(session, "root", "admin", PASSWORD)
        auth.add_user(session, "local-agent", "agent", PASSWORD, "AG-1")
    env = {
        "CALLSCOPE_OIDC_ISSUER": issuer,
        "CALLSCOPE_OIDC_CLIENT_ID": "callscope",
        "CALLSCOPE_OIDC_CLIENT_SECRET": SECRET,
        "CALLSCOPE_OIDC_ADMIN_GROUPS": "cs-admins",
        "CALLSCOPE_OIDC_SUPERVISOR_GROUPS": "cs-supervisors",
        "CALLSCOPE_OIDC_AGENT_GROUPS": "cs-agents",
        "CALLSCOPE_OIDC_AGENT_ID_CLAIM": "employee_id",
    }
    try:
        with serving(settings, data / "server.log", port, env) as base:
            yield {"base": base, "ctx": ctx, "accounts": accounts, "issuer": issuer}
    finally:
        provider.terminate()
        provider.wait(10)
        ctx.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


def sign_in(browser, base: str, login: str, callbacks: list[str] | None = None):
    """A fresh browser that signs in as LOGIN at the company's provider; the page, where it
    landed."""
    page = browser.new_context().new_page()
    if callbacks is not None:
        page.on(
            "request", lambda r: callbacks.append(r.url) if "/login/sso/callback" in r.url else 0
        )
    page.goto(f"{base}/login")
    page.get_by_role("link", name="Sign in with your company account").click()
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password: the provider's test pages")
    page.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: url.startswith(base))
    page.wait_for_load_state()
    return page


@pytest.mark.browser
def test_the_first_sign_in_makes_the_account_from_the_claims(company, chromium):
    page = sign_in(chromium, company["base"], "ana")
    assert page.url == f"{company['base']}/conversations"
    with company["ctx"].db.session() as session:
        ana = session.scalars(select(User).where(User.username == "ana")).one()
        assert (ana.role, ana.agent.external_id) == ("agent", "AG-7")
        assert ana.sso_subject == f"{company['issuer']} ana"
        assert ana.password_hash == auth.SSO_ONLY  # (no password signs in as ana)
        methods = session.scalars(
            select(AuditEvent.details).where(
                AuditEvent.action == "sign_in", AuditEvent.object_id == "ana"
            )
        ).all()
    assert {"method": "sso"} in methods
    page.context.close()
    page = sign_in(chromium, company["base"], "sam")  # (the highest role of their groups)
    with company["ctx"].db.session() as session:
        assert session.scalars(select(User.role).where(User.username == "sam")).one() == (
            "supervisor"
        )
    page.context.close()


@pytest.mark.browser
def test_someone_in_no_admitted_group_is_refused(company, chromium):
    page = sign_in(chromium, company["base"], "mira")
    assert "in none of the groups callscope admits" in page.locator("[role=alert]").inner_text()
    with company["ctx"].db.session() as session:
        assert session.scalar(select(User).where(User.username == "mira")) is None
    page.context.close()


@pytest.mark.browser
def test_a_user_taken_out_of_the_group_is_refused_and_signed_out(company, chromium):
    first = sign_in(chromium, company["base"], "sam")
    assert first.url.endswith("/conversations")
    accounts = json.loads(company["accounts"].read_text())
    accounts["sam"]["groups"] = ["everyone"]
    company["accounts"].write_text(json.dumps(accounts))
    try:
        again = sign_in(chromium, company["base"], "sam")
        assert "none of the groups" in again.locator("[role=alert]").inner_text()
        first.reload()  # (the browser signed in before: its session ended too)
        assert "/login" in first.url
    finally:
        accounts["sam"]["groups"] = ACCOUNTS["sam"]["groups"]
        company["accounts"].write_text(json.dumps(accounts))
    first.context.close()
    again.context.close()


@pytest.mark.browser
def test_a_callback_is_good_once(company, chromium):
    callbacks: list[str] = []
    page = sign_in(chromium, company["base"], "ana", callbacks)
    assert page.url.endswith("/conversations") and len(callbacks) == 1
    answer = page.goto(callbacks[0])  # the same code and state again, in the same browser
    assert answer is not None and answer.status == 401
    assert "expired or was already used" in page.locator("[role=alert]").inner_text()
    stranger = chromium.new_context().new_page()  # … or in another one
    assert stranger.goto(callbacks[0]).status == 401
    page.context.close()
    stranger.context.close()


@pytest.mark.browser
def test_local_passwords_are_kept_for_administrators_only(company, chromium):
    page = chromium.new_context().new_page()
    for username, landed in (("local-agent", "/login"), ("root", "/conversations")):
        page.goto(f"{company['base']}/login")
        page.get_by_label("User name").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        assert page.url.endswith(landed), username
    page.goto(f"{company['base']}/login")
    page.get_by_label("User name").fill("local-agent")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    assert "Sign in with your company account." in page.locator("[role=alert]").inner_text()
    page.context.close()


# The ID token checks, on tokens signed here (what a provider, or someone between, could send)

ISSUER, CLIENT, NONCE = "https://login.example.com", "callscope", "n-0S6_WzA2Mj"


@pytest.fixture(scope="module")
def signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1"})


def token(key: RSAKey, **changes) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER, "aud": CLIENT, "sub": "ana", "nonce": NONCE, "iat": now, "exp": now + 300,
    } | changes  # fmt: skip
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)


def test_a_genuine_id_token_gives_its_claims(signing_key):
    keys = KeySet([signing_key])
    claims = sso.identity(token(signing_key, groups=["cs-agents"]), keys, ISSUER, CLIENT, NONCE)
    assert (claims["sub"], claims["groups"]) == ("ana", ["cs-agents"])


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"aud": "another-app"}, "issued to another application (audience)"),
        ({"aud": [CLIENT, "another-app"], "azp": "another-app"}, "(authorised party)"),
        ({"iss": "https://evil.example.com"}, "issued by another provider (issuer)"),
        ({"exp": int(time.time()) - 120}, "it has expired"),
        ({"nonce": "an-earlier-sign-in"}, "does not answer this sign-in (nonce)"),
        ({"nonce": None}, "does not answer this sign-in (nonce)"),
        ({"sub": None}, "claim sub is wrong or missing"),
    ],
)
def test_an_id_token_that_fails_a_check_is_refused_naming_it(signing_key, changes, problem):
    with pytest.raises(sso.SignInFailed, match=problem.replace("(", r"\(").replace(")", r"\)")):
        sso.identity(token(signing_key, **changes), KeySet([signing_key]), ISSUER, CLIENT, NONCE)


def test_an_id_token_signed_by_another_key_or_none_is_refused(signing_key):
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    with pytest.raises(sso.SignInFailed, match="signature does not verify"):
        sso.identity(token(other), KeySet([signing_key]), ISSUER, CLIENT, NONCE)
    header, payload, _signature = token(signing_key).split(".")
    unsigned = "eyJhbGciOiJub25lIn0." + payload + "."  # {"alg":"none"}
    with pytest.raises(sso.SignInFailed):
        sso.identity(unsigned, KeySet([signing_key]), ISSUER, CLIENT, NONCE)
