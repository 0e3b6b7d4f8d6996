"""Who may see what (docs/administration.md#who-sees-what): every route of the app, enumerated
from its router, is tried by users who may not see a conversation; none of them reaches it or
learns it exists."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from callscope.context import Context
from callscope.db.models import ApiToken, Conversation, LiveCall, Queue, User, utcnow
from callscope.governance import access, auth, policy
from callscope.governance.audit import Actor
from callscope.processing import live, webhooks
from callscope.processing.ingest import Ingestor
from callscope.processing.streams import Opened
from callscope.review import categories, comments, evaluations
from callscope.web.app import create_app
from tests.support import (
    DEMO_CALLS,
    PASSWORD,
    fill_path,
    make_meta,
    make_settings,
    routes,
    sign_in,
)

SECRET_ID = "CONV-SECRET-4711"
SECRET_NAME = "Philippa Secretname"

# form fields the routes take, so that a refusal comes from scoping, not from a missing field
FORM = {
    "hold": "true",
    "confirm": "CUST-SECRET",
    "role": "admin",
    "password": "another long password",
    "disabled": "true",
    "name": "stolen",
    "username": "other",
    "language": "en",
    "agent_id": "AG-2",
    "text": "a comment",
    "decision": "acknowledge",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory, model_dir) -> Iterator[dict[str, Any]]:
    """A secret call of agent AG-1 in queue Internet support, and one of AG-2 in Billing."""
    settings = make_settings(tmp_path_factory.mktemp("access"), model_dir=model_dir)
    ctx = Context.open(settings)
    secret_meta = make_meta(external_id=SECRET_ID)
    secret_meta["customer"] = {"external_id": "CUST-SECRET", "name": SECRET_NAME}
    secret = Ingestor(ctx).ingest_file(DEMO_CALLS / "synthetic_en_stereo.wav", secret_meta)
    other_meta = make_meta(queue="Billing")
    other_meta["sessions"][0]["agent"] = {"external_id": "AG-2", "name": "Olga Other"}
    other_meta["customer"] = {"external_id": "CUST-OTHER", "name": "Carl Customer"}
    Ingestor(ctx).ingest_file(DEMO_CALLS / "synthetic_id_stereo.wav", other_meta)
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
        auth.add_user(session, "boss", "admin", PASSWORD)
        marcus = auth.add_user(session, "marcus", "agent", PASSWORD, agent_external_id="AG-1")
        auth.add_user(session, "other", "agent", PASSWORD, agent_external_id="AG-2")
        sup = auth.add_user(session, "sup", "supervisor", PASSWORD)
        sup.queues = [session.query(Queue).filter_by(name="Billing").one()]
        auth.add_user(session, "lonely", "supervisor", PASSWORD)
        tokens = {name: auth.create_token(session, name, "t") for name in ("other", "sup")}
        pbx = auth.create_token(session, "boss", "pbx", "ingest")
        conv = session.get(Conversation, secret.id)
        hook, _secret = webhooks.add(session, Actor.cli(), "https://crm.example.com/hook")
        category = categories.add(session, Actor.cli(), "Greeting", {"phrases": ["thank you"]})
        comment = comments.add(session, Actor.cli(), secret.id, 1.0, "a note on the secret call")
        form = {
            "name": "Q",
            "sections": [
                {
                    "title": "A",
                    "questions": [{"id": "q", "text": "Polite", "type": "yes_no", "weight": 1}],
                }
            ],
        }
        evaluations.import_form(session, Actor.cli(), form)
        boss = session.query(User).filter_by(username="boss").one()
        evaluation = evaluations.evaluate(
            session, Actor.of(boss), boss, secret.id, "Q", {"q": "yes"}
        )
        evaluations.save_draft(session, boss, secret.id, "Q", {"q": "no"})  # the next one
        fill = {
            "conversation_id": secret.id,
            "job_id": secret.job,
            "contact_id": conv.contact_id,
            "user_id": marcus.id,
            "token_id": session.query(ApiToken).filter_by(name="t").first().id,
            "fmt": "vtt",
            "webhook_id": hook.id,
            "category_id": category.id,
            "comment_id": comment.id,
            "evaluation_id": evaluation.id,
        }
    live_meta = {**secret_meta, "external_id": f"{SECRET_ID}-live"}  # (the secret call, live)
    speakers = {0: "agent", 1: "customer"}
    live_call = live.Hub(ctx).open("generic", Opened("s", live_meta, 2, 8000, speakers, pbx), None)
    with ctx.db.session() as session:  # (it ended: its page's event stream ends too)
        session.execute(
            update(LiveCall)
            .where(LiveCall.id == live_call.id)
            .values(status=live.ENDED, ended_at=utcnow())
        )
    fill["live_id"] = live_call.id
    app = create_app(ctx)
    yield {"ctx": ctx, "app": app, "fill": fill, "tokens": tokens}
    ctx.close()


def attempt(client: TestClient, method: str, path: str, csrf: str | None):
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    if method == "GET":
        return client.get(path, headers=headers, follow_redirects=False)
    return client.request(method, path, data=FORM, headers=headers, follow_redirects=False)


def leaks(text: str) -> bool:
    return SECRET_ID in text or SECRET_NAME in text


@pytest.mark.parametrize("username", ["other", "sup", "lonely"])
def test_no_route_shows_a_conversation_to_a_user_who_may_not_see_it(world, username):
    checked = []
    with TestClient(world["app"]) as client:
        csrf = sign_in(client, username)  # (once: a route that ended the session would fail)
        for method, template in routes(world["app"]):
            if template in ("/logout", "/login", "/api/v1/conversations") and method == "POST":
                continue  # signing out, signing in and ingesting are tried below
            path = fill_path(template, world["fill"])
            res = attempt(client, method, path, csrf)
            checked.append((method, template, path, res))
    assert len(checked) > 25
    for method, template, path, res in checked:
        assert not leaks(res.text), f"{method} {path} shows the secret call to {username}"
        # a route about one object: as if it did not exist (an API write from a browser
        # session needs a token first: 401)
        refusals = (401, 403, 404) if path.startswith("/api/") and method != "GET" else (403, 404)
        if path != template:
            assert res.status_code in refusals, f"{method} {path} gave {res.status_code}"


def test_api_tokens_of_users_who_may_not_see_it_get_404(world):
    for name, token in world["tokens"].items():
        with TestClient(world["app"]) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            for method, template in routes(world["app"]):
                if not template.startswith("/api/") or (
                    method == "POST" and template == "/api/v1/conversations"
                ):
                    continue  # ingesting is tried below
                path = fill_path(template, world["fill"])
                # (a body that fits the route: a refusal comes from scoping, not its shape)
                body = (
                    {"form": "Q", "answers": {}}
                    if template.endswith(("/evaluations", "/evaluations/draft"))
                    else {"why": "no", "answers": {}}
                    if template.endswith("/amend")
                    else {"name": "no", "phrases": ["no"]}
                    if template.startswith("/api/v1/categories/")
                    else {"comment": "no"}
                    if template.startswith("/api/v1/evaluations/")
                    else {"at_s": 1.0, "text": "a comment"}
                    if method == "POST"
                    else None
                )
                res = client.request(method, path, json=body)
                assert not leaks(res.text), f"{path} shows the secret call to {name}'s token"
                if "{conversation_id}" in template:
                    assert res.status_code == 404, f"{path}: {res.status_code}"
                elif path != template:  # (categories are no secret: an administrator's)
                    assert res.status_code in (403, 404), f"{path}: {res.status_code}"


def test_the_administrator_reaches_every_object_route(world):
    """The same filled paths do lead somewhere: the 404s above are scoping, not typos."""
    with TestClient(world["app"]) as client:
        csrf = sign_in(client, "boss")
        for method, template in routes(world["app"]):
            path = fill_path(template, world["fill"])
            if method != "GET" or path == template:
                continue
            res = attempt(client, method, path, csrf)
            assert res.status_code == 200, f"{path}: {res.status_code}"


def test_the_agent_of_the_call_sees_it_and_not_the_other(world):
    with TestClient(world["app"]) as client:
        sign_in(client, "marcus")
        listing = client.get("/conversations").text
        assert SECRET_NAME in listing and "Carl Customer" not in listing
        assert client.get(f"/conversations/{world['fill']['conversation_id']}").status_code == 200
        assert client.get(f"/contacts/{world['fill']['contact_id']}").status_code == 200
        dashboard = client.get("/dashboard").text
        assert "Olga Other" not in dashboard


def test_supervisor_sees_only_their_queues(world):
    with TestClient(world["app"]) as client:
        sign_in(client, "sup")
        listing = client.get("/conversations").text
        assert "Carl Customer" in listing and SECRET_NAME not in listing
        assert "1 conversation" in listing


def test_each_role_may_do_what_the_administration_guide_says():
    """docs/administration.md#who-sees-what, as access.may answers it."""
    expected = {
        "agent": set(),
        "supervisor": {
            "evaluate",
            "answer_dispute",
            "correct_speakers",
            "see_colleagues",
            "resolve_comments",
        },
        "admin": {a.value for a in access.ROLES},
    }
    for role, allowed in expected.items():
        flags = access.flags(User(username=role, role=role))
        assert {action for action, yes in flags.items() if yes} == allowed, role
    assert access.flags(None) == dict.fromkeys(flags, False)
