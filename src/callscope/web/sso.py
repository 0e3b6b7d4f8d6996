"""Single sign-on with the company's OpenID provider (OpenID Connect, authorisation code flow
with PKCE, through Authlib; the ID token checked with joserfc).

`/login/sso` sends the browser to the provider with a fresh state, nonce and PKCE verifier
kept in this browser's session; `/login/sso/callback` takes them out again (so a callback is
good once), exchanges the code, and checks the ID token: its signature against the provider's
published keys, issuer, audience (callscope's client id), expiry and nonce. The account is made
or brought up to date from the token's claims (`auth.sso_user`): the role from the groups
claim, the agent from the agent id claim. The provider's settings come from its discovery
document, read again every ten minutes.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from callscope import errors, i18n
from callscope.config import Settings
from callscope.governance import audit, auth
from callscope.governance.audit import Actor
from callscope.i18n import N_
from callscope.vocabulary import Role
from callscope.web import security
from callscope.web.deps import ContextDep, SessionDep
from callscope.web.ui import login_page, safe_next, speak_as_the_browser

router = APIRouter(include_in_schema=False)

DISCOVERY_TTL_S = 600.0
SIGN_IN_TTL_S = 600.0  # a sign-in started longer ago than this is not finished
LEEWAY_S = 60  # clocks of the provider and this server may differ by this much
ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]  # (never "none" nor a shared secret)
TIMEOUT_S = 10.0
# what the company's sign-in may answer, for the sign-in page (in the user's language)
EXPIRED = N_("This sign-in expired or was already used. Sign in again.")
PROVIDER_REFUSED = N_("The company sign-in refused: %(reason)s")
UNREACHABLE = N_("The company sign-in cannot be reached. Try again later.")
BAD_TOKEN = N_("The company sign-in sent an identity that callscope cannot trust (%(problem)s).")


class SignInFailed(errors.NotAllowed):
    """The provider's answer cannot be trusted; the message says which check failed."""


class BadSignature(SignInFailed):
    """The ID token's signature does not verify with the keys at hand."""


@dataclass(frozen=True)
class Provider:
    """What the discovery document says of the provider."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


_lock = threading.Lock()
_discovered: dict[str, tuple[float, Provider]] = {}
_key_sets: dict[str, KeySet] = {}


def provider(settings: Settings) -> Provider:
    """The provider named by CALLSCOPE_OIDC_ISSUER, from its discovery document (cached)."""
    issuer = settings.oidc_issuer.rstrip("/")
    with _lock:
        cached = _discovered.get(issuer)
        if cached and time.monotonic() - cached[0] < DISCOVERY_TTL_S:
            return cached[1]
    answer = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=TIMEOUT_S)
    answer.raise_for_status()
    document = answer.json()
    if document.get("issuer", "").rstrip("/") != issuer:  # (OpenID Connect Discovery 4.3)
        raise SignInFailed(f"the provider at {issuer} calls itself {document.get('issuer')!r}")
    found = Provider(
        document["issuer"],
        document["authorization_endpoint"],
        document["token_endpoint"],
        document["jwks_uri"],
    )
    with _lock:
        _discovered[issuer] = (time.monotonic(), found)
    return found


def _keys(found: Provider, *, fresh: bool = False) -> KeySet:
    """The provider's published signing keys (read again when FRESH: keys are rotated)."""
    with _lock:
        if not fresh and found.jwks_uri in _key_sets:
            return _key_sets[found.jwks_uri]
    answer = requests.get(found.jwks_uri, timeout=TIMEOUT_S)
    answer.raise_for_status()
    keys = KeySet.import_key_set(answer.json())
    with _lock:
        _key_sets[found.jwks_uri] = keys
    return keys


def identity(
    id_token: str, keys: KeySet, issuer: str, client_id: str, nonce: str, now: int | None = None
) -> dict[str, Any]:
    """The claims of ID_TOKEN once its signature verifies with KEYS and it was issued by
    ISSUER, for CLIENT_ID, to the sign-in that sent NONCE, and has not expired; SignInFailed
    naming the check that failed otherwise."""
    try:
        token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
        jwt.JWTClaimsRegistry(
            now=now,
            leeway=LEEWAY_S,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except BadSignatureError as exc:
        raise BadSignature("its signature does not verify") from exc
    except ExpiredTokenError as exc:
        raise SignInFailed("it has expired") from exc
    except (InvalidClaimError, MissingClaimError) as exc:
        claim = getattr(exc, "claim", "") or str(exc)
        what = {
            "aud": "it was issued to another application (audience)",
            "iss": "it was issued by another provider (issuer)",
            "nonce": "it does not answer this sign-in (nonce): it may be replayed",
        }
        raise SignInFailed(what.get(claim, f"claim {claim} is wrong or missing")) from exc
    except (JoseError, ValueError) as exc:
        raise SignInFailed(f"it cannot be read: {exc}") from exc
    claims = dict(token.claims)
    azp = claims.get("azp")
    if isinstance(claims["aud"], list) and len(claims["aud"]) > 1 and azp != client_id:
        raise SignInFailed("it was issued to another application (authorised party)")
    return claims


def role_of(claims: dict[str, Any], settings: Settings) -> str | None:
    """The role the user's groups give (the highest), or None."""
    found = claims.get(settings.oidc_groups_claim) or []
    groups = {str(g) for g in (found if isinstance(found, list) else [found])}
    for role, named in (
        (Role.ADMIN, settings.oidc_admin_groups),
        (Role.SUPERVISOR, settings.oidc_supervisor_groups),
        (Role.AGENT, settings.oidc_agent_groups),
    ):
        if groups & {g.strip() for g in named.split(",") if g.strip()}:
            return role.value
    return None


def _client(request: Request, settings: Settings) -> OAuth2Session:
    return OAuth2Session(
        settings.oidc_client_id,
        settings.oidc_client_secret,
        scope=settings.oidc_scopes,
        redirect_uri=str(request.url_for("sso_callback")),
        code_challenge_method="S256",
    )


@router.get("/login/sso")
def sso_start(
    request: Request,
    ctx: ContextDep,
    next: str = "/conversations",  # noqa: A002 (the query parameter's name)
) -> Response:
    """Send the browser to the company's sign-in."""
    settings = ctx.settings
    if not settings.single_sign_on:
        raise errors.NotFound("single sign-on is not set up")
    try:
        found = provider(settings)
    except (requests.RequestException, ValueError, KeyError, SignInFailed):
        return _failed(request, UNREACHABLE, {}, 503)
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(24)
    url, state = _client(request, settings).create_authorization_url(
        found.authorization_endpoint, code_verifier=verifier, nonce=nonce
    )
    request.session["sso"] = {
        "state": state,
        "nonce": nonce,
        "verifier": verifier,
        "next": safe_next(next),
        "at": time.time(),
    }
    return RedirectResponse(url, status_code=303)


@router.get("/login/sso/callback", name="sso_callback")
def sso_callback(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Finish a sign-in the company's provider sends back."""
    settings = ctx.settings
    if not settings.single_sign_on:
        raise errors.NotFound("single sign-on is not set up")
    pending = request.session.pop("sso", None)  # (good once)
    query = request.query_params
    if not isinstance(pending, dict) or not secrets.compare_digest(
        str(pending.get("state")), query.get("state", "")
    ):
        return _failed(request, EXPIRED, {})
    if time.time() - float(pending["at"]) > SIGN_IN_TTL_S:
        return _failed(request, EXPIRED, {})
    if "error" in query:
        reason = query.get("error_description") or query["error"]
        return _failed(request, PROVIDER_REFUSED, {"reason": reason[:200]})
    try:
        found = provider(settings)
        token = _client(request, settings).fetch_token(
            found.token_endpoint,
            grant_type="authorization_code",
            code=query.get("code", ""),
            code_verifier=pending["verifier"],
        )
    except (requests.RequestException, ValueError, KeyError, SignInFailed) as exc:
        return _failed(request, PROVIDER_REFUSED, {"reason": str(exc)[:200]})
    try:
        claims = _checked(token, found, settings, pending["nonce"])
    except SignInFailed as exc:
        return _failed(request, BAD_TOKEN, {"problem": str(exc)})
    except (requests.RequestException, ValueError):
        return _failed(request, UNREACHABLE, {}, 503)
    username = str(claims.get(settings.oidc_username_claim) or claims["sub"])[:150]
    agent_id = claims.get(settings.oidc_agent_id_claim) if settings.oidc_agent_id_claim else None
    source = security.client_address(request)
    try:
        user = auth.sso_user(
            session,
            f"{found.issuer} {claims['sub']}",
            username,
            role_of(claims, settings),
            str(agent_id)[:100] if agent_id else None,
        )
    except auth.NotAdmitted as exc:
        audit.record(
            session, Actor(None, username, source), "sign_in_failed", "user", username,
            method="sso", reason=str(exc),
        )  # fmt: skip
        session.commit()  # (the account's sessions ended, and the refusal recorded)
        return _failed(request, str(exc), {}, 403)
    security.start_session(request, user)
    audit.record(session, Actor.of(user, source), "sign_in", "user", username, method="sso")
    return RedirectResponse(safe_next(str(pending.get("next", ""))), status_code=303)


def _checked(
    token: dict[str, Any], found: Provider, settings: Settings, nonce: str
) -> dict[str, Any]:
    """The claims of TOKEN's ID token, checked with the provider's keys (read again once when
    the signature does not verify: the provider may have rotated them)."""
    if not token.get("id_token"):
        raise SignInFailed("no ID token came with the answer")
    checks = (found.issuer, settings.oidc_client_id, nonce)
    try:
        return identity(token["id_token"], _keys(found), *checks)
    except BadSignature:
        return identity(token["id_token"], _keys(found, fresh=True), *checks)


def _failed(request: Request, message: str, params: dict[str, str], status: int = 401) -> Response:
    speak_as_the_browser(request)
    error = i18n.gettext(message) % params if params else i18n.gettext(message)
    return login_page(request, status, error=error)
