"""Quality evaluations: forms (versioned, refused by field), automatic answers with their
evidence, overrides with who and why, the score, the agent's acknowledgement and dispute, and
who may do what."""

from __future__ import annotations

import json
import random
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from callscope.db.models import (
    Agent,
    AuditEvent,
    Category,
    CategoryMatch,
    Conversation,
    ConversationAnalysis,
    ConversationSession,
    Evaluation,
    EvaluationAssignment,
    EvaluationForm,
    Queue,
    User,
    utcnow,
)
from callscope.governance import auth, policy
from callscope.governance.audit import Actor
from callscope.review import categories, evaluations
from tests.support import PASSWORD, callscope, make_meta, sign_in

FORM = {
    "name": "Support call quality",
    "sections": [
        {
            "title": "Opening",
            "questions": [
                {
                    "id": "greeting",
                    "text": "Agent greeted the customer",
                    "type": "yes_no",
                    "weight": 2,
                    "auto": {"category": "Greeting", "when": "matched"},
                },
                {"id": "empathy", "text": "Agent showed empathy", "type": "scale_5", "weight": 3},
            ],
        },
        {
            "title": "Compliance",
            "questions": [
                {
                    "id": "no_promise",
                    "text": "No unauthorised promise",
                    "type": "yes_no",
                    "weight": 1,
                    "auto": {"category": "Guarantee", "when": "absent"},
                }
            ],
        },
    ],
}


def line(speaker, text, start):
    words = text.split()
    timed = [
        {"text": w, "start_s": start + i, "end_s": start + i + 0.8} for i, w in enumerate(words)
    ]
    return {
        "speaker": speaker,
        "start_s": start,
        "end_s": start + len(words),
        "text": text,
        "words": timed,
    }


@pytest.fixture
def world(ctx, api):
    """A call of agent AG-1 (Marcus) that greets, and the form's categories."""
    with ctx.db.session() as session:
        categories.add(session, Actor.cli(), "Greeting", {"phrases": ["thank you for calling"]})
        categories.add(session, Actor.cli(), "Guarantee", {"phrases": ["i guarantee"]})
        auth.add_user(session, "sup", "admin", PASSWORD)
        auth.add_user(session, "marcus", "agent", PASSWORD, agent_external_id="AG-1")
        auth.add_user(session, "olga", "agent", PASSWORD, agent_external_id="AG-2")
        tokens = {n: auth.create_token(session, n, "t") for n in ("marcus", "olga")}
    body = {
        "language": "en",
        "transcript": {
            "segments": [
                line("agent", "Thank you for calling Northwind", 0.0),
                line("customer", "My order never arrived", 10.0),
            ]
        },
    }
    files = {
        "metadata": (None, json.dumps(make_meta(mono=True)), "application/json"),
        "transcript": ("t.json", json.dumps(body), "application/json"),
    }
    res = api.post("/api/v1/conversations/import", files=files)
    assert res.status_code == 201
    assert api.post("/api/v1/evaluation-forms", json=FORM).status_code == 201
    return {"id": res.json()["id"], "tokens": tokens}


def as_user(api, token):
    return {"Authorization": f"Bearer {token}"}


def test_a_call_is_evaluated_with_automatic_answers_and_their_evidence(ctx, api, world):
    url = f"/api/v1/conversations/{world['id']}/evaluations"
    res = api.post(
        url,
        json={
            "form": "Support call quality",
            "answers": {"empathy": 4},
            "comments": {"empathy": "Warm, a bit late"},
        },
    )
    assert res.status_code == 201, res.text
    done = res.json()
    answers = {a["id"]: a for a in done["answers"]}
    assert answers["greeting"]["value"] == "yes"
    assert answers["greeting"]["automatic"]["evidence"][0]["start_s"] == 0.0  # the moment
    assert answers["no_promise"]["value"] == "yes"  # the guarantee was never said
    assert answers["empathy"]["comment"] == "Warm, a bit late"
    # (2 × 1 + 3 × 0.75 + 1 × 1) / 6 = 87.5 %
    assert done["score_pct"] == 87.5 and done["status"] == "submitted"
    listed = api.get(url).json()
    assert [e["id"] for e in listed] == [done["id"]]


def test_an_uncertain_transcript_decides_no_answer_from_its_words(ctx, api, world):
    """Heard with little confidence, the call's category answers are left to the evaluator
    (a misheard greeting would answer "no"), who must then give them."""
    with ctx.db.session() as session:
        session.get(ConversationAnalysis, world["id"]).confidence = 0.4
        form = evaluations.Form.model_validate(FORM)
        assert evaluations.automatic_answers(session, form, world["id"]) == {}
        conv = session.get(Conversation, world["id"])
        user = session.scalar(select(User).where(User.username == "sup"))
        assert evaluations.panel(session, user, conv, None)["unsure"] == ["greeting", "no_promise"]
    url = f"/api/v1/conversations/{world['id']}/evaluations"
    refused = api.post(url, json={"form": "Support call quality", "answers": {"empathy": 4}})
    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        "answers.greeting: answer “Agent greeted the customer”, or mark it N/A"
    )
    answers = {"empathy": 4, "greeting": "yes", "no_promise": "na"}
    done = api.post(url, json={"form": "Support call quality", "answers": answers}).json()
    assert done["score_pct"] == 85.0 and all(not a.get("override") for a in done["answers"])


def test_overriding_an_automatic_answer_needs_a_reason_and_is_kept(api, world):
    url = f"/api/v1/conversations/{world['id']}/evaluations"
    refused = api.post(url, json={"form": "Support call quality", "answers": {"greeting": "no"}})
    assert refused.status_code == 422
    assert (
        "reasons.greeting: say why the automatic answer “yes” "
        "to “Agent greeted the customer” is changed"
    ) in refused.json()["detail"]
    res = api.post(
        url,
        json={
            "form": "Support call quality",
            "answers": {"greeting": "no", "empathy": "na"},
            "reasons": {"greeting": "greeted the wrong company"},
        },
    )
    answer = {a["id"]: a for a in res.json()["answers"]}["greeting"]
    assert answer["override"]["automatic"] == "yes" and answer["override"]["why"]
    assert answer["override"]["by"]
    assert res.json()["score_pct"] == pytest.approx(100 / 3, abs=0.05)  # empathy N/A


@pytest.mark.parametrize(
    ("form", "named"),
    [
        (
            {
                **FORM,
                "sections": [
                    {"title": "A", "questions": [FORM["sections"][0]["questions"][1]] * 2}
                ],
            },
            "duplicate question id 'empathy'",
        ),
        (
            {
                **FORM,
                "sections": [
                    {
                        "title": "A",
                        "questions": [{**FORM["sections"][0]["questions"][1], "weight": 0}],
                    }
                ],
            },
            "sections[0].questions[0].weight: ",
        ),
        (
            {
                **FORM,
                "sections": [
                    {
                        "title": "A",
                        "questions": [
                            {**FORM["sections"][0]["questions"][0], "auto": {"category": "Nope"}}
                        ],
                    }
                ],
            },
            "sections[0].questions[0].auto.category: no category named 'Nope'",
        ),
        (
            {
                **FORM,
                "sections": [
                    {
                        "title": "A",
                        "questions": [{**FORM["sections"][0]["questions"][1], "type": "stars"}],
                    }
                ],
            },
            "sections[0].questions[0].type: ",
        ),
        ({"name": "Empty", "sections": []}, "sections: "),
    ],
)
def test_bad_forms_are_refused_naming_the_field_and_nothing_is_stored(ctx, api, world, form, named):
    res = api.post("/api/v1/evaluation-forms", json=form)
    assert res.status_code == 422 and named in res.json()["detail"], res.text
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(EvaluationForm)) == 1


def test_a_form_imported_again_is_a_new_version_and_old_evaluations_keep_theirs(
    ctx, api, world, tmp_path
):
    first = api.post(
        f"/api/v1/conversations/{world['id']}/evaluations",
        json={"form": "Support call quality", "answers": {"empathy": 5}},
    ).json()
    changed = {**FORM, "sections": FORM["sections"][:1]}
    path = tmp_path / "form.json"
    path.write_text(json.dumps(changed))
    done = callscope(ctx, "forms", "import", str(path))
    assert done.returncode == 0 and "version 2" in done.stdout
    assert (
        "Support call quality  (version 2, 2 questions)" in callscope(ctx, "forms", "list").stdout
    )
    again = api.get(f"/api/v1/conversations/{world['id']}/evaluations").json()
    assert again[0]["form"]["version"] == 1 and len(again[0]["answers"]) == 3
    assert again[0]["id"] == first["id"]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    refused = callscope(ctx, "forms", "import", str(bad))
    assert refused.returncode == 1 and "bad.json is not valid JSON" in refused.stderr


def test_wrong_answers_are_refused_naming_the_question(api, world):
    url = f"/api/v1/conversations/{world['id']}/evaluations"
    for answers, named in [
        ({"empathy": 6}, "answers.empathy: scale_5 takes 1, 2, 3, 4, 5, na, not 6"),
        ({"empathy": True}, "answers.empathy: "),
        ({"greeting": "maybe"}, "answers.greeting: yes_no takes yes, no, na"),
        ({"speed": "yes"}, "answers.speed: the form has no question 'speed'"),
    ]:
        res = api.post(url, json={"form": "Support call quality", "answers": answers})
        assert res.status_code == 422 and named in res.json()["detail"], res.text
    assert api.post(url, json={"form": "Nope", "answers": {}}).status_code == 404


def test_the_agent_acknowledges_or_disputes_and_others_see_nothing(ctx, api, world):
    evaluation = api.post(
        f"/api/v1/conversations/{world['id']}/evaluations",
        json={"form": "Support call quality", "answers": {"empathy": 2}},
    ).json()
    marcus, olga = (as_user(api, world["tokens"][n]) for n in ("marcus", "olga"))
    url = f"/api/v1/conversations/{world['id']}/evaluations"
    assert [e["id"] for e in api.get(url, headers=marcus).json()] == [evaluation["id"]]
    assert api.get(url, headers=olga).status_code == 404  # not her call
    # an agent evaluates no call, their own least of all
    own = api.post(url, headers=marcus, json={"form": "Support call quality", "answers": {}})
    assert own.status_code == 403
    assert (
        api.post(
            f"/api/v1/evaluations/{evaluation['id']}/dispute", headers=olga, json={"comment": "x"}
        ).status_code
        == 404
    )
    empty = api.post(
        f"/api/v1/evaluations/{evaluation['id']}/dispute", headers=marcus, json={"comment": " "}
    )
    assert empty.status_code == 422 and "comment: say what is disputed" in empty.text
    disputed = api.post(
        f"/api/v1/evaluations/{evaluation['id']}/dispute",
        headers=marcus,
        json={"comment": "I apologised at 0:40"},
    ).json()
    assert disputed["status"] == "disputed" and disputed["response"] == "I apologised at 0:40"
    # the administrator cannot answer in the agent's place, but answers the dispute
    url = f"/api/v1/evaluations/{evaluation['id']}"
    assert api.post(f"{url}/acknowledge", json={}).status_code == 403
    assert api.post(f"{url}/answer", headers=marcus, json={"comment": "x"}).status_code == 403
    answered = api.post(f"{url}/answer", json={"comment": "Right: empathy is 4"}).json()
    assert answered["status"] == "answered" and answered["answer"] == "Right: empathy is 4"
    again = api.post(f"{url}/answer", json={"comment": "y"})
    assert again.status_code == 422 and "not disputed" in again.text
    with ctx.db.session() as session:
        actions = set(session.scalars(select(AuditEvent.action)))
        assert {
            "evaluation_form.import",
            "evaluation.submit",
            "evaluation.dispute",
            "evaluation.answer",
        } <= actions
        assert session.scalar(select(func.count()).select_from(Evaluation)) == 1


def test_its_evaluator_amends_an_evaluation_audited_and_counted_again(ctx, api, world):
    """Amend: the evaluator alone, while disputed or within `evaluations.amend_days`; the same
    checks as a submission, refused whole; before and after in the audit; the scorecard
    follows; a disputed evaluation is answered by the amendment."""
    evaluation = api.post(
        f"/api/v1/conversations/{world['id']}/evaluations",
        json={"form": "Support call quality", "answers": {"empathy": 2}},
    ).json()
    assert evaluation["score_pct"] == 62.5  # (2 × 1 + 3 × 0.25 + 1 × 1) / 6
    card = {"agent": "AG-1", "from": "2026-11-01", "to": "2026-11-30"}
    assert api.get("/api/v1/scorecards", params=card).json()["score_pct"] == 62.5
    with ctx.db.session() as session:
        sup = {"Authorization": f"Bearer {auth.create_token(session, 'sup', 't')}"}
    marcus = as_user(api, world["tokens"]["marcus"])
    url = f"/api/v1/evaluations/{evaluation['id']}/amend"
    better = {"why": "Listened again: the apology was warm", "answers": {"empathy": 4}}
    for who, status in ((marcus, 403), (sup, 403)):  # the agent; another administrator
        assert api.post(url, headers=who, json=better).status_code == status
    refusals = {
        "why: say why you amend": {**better, "why": "  "},
        "reasons.greeting: say why the automatic answer “yes”": {
            **better,
            "answers": {"greeting": "no"},
        },
        "answers.empathy: scale_5 takes": {**better, "answers": {"empathy": 9}},
        "the form has no question 'tone'": {**better, "comments": {"tone": "x"}},
    }
    for said, body in refusals.items():
        res = api.post(url, json=body)
        assert res.status_code == 422 and said in res.json()["detail"], res.text
    dispute = {"comment": "I apologised twice"}
    api.post(f"/api/v1/evaluations/{evaluation['id']}/dispute", headers=marcus, json=dispute)
    amended = api.post(url, json=better).json()
    assert amended["score_pct"] == 87.5 and amended["status"] == "answered"
    assert amended["answer"] == amended["amended_why"] == better["why"]
    answers = {a["id"]: a for a in amended["answers"]}
    assert answers["greeting"]["value"] == "yes" and answers["greeting"]["automatic"]
    assert api.get("/api/v1/scorecards", params=card).json()["score_pct"] == 87.5
    with ctx.db.session() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "evaluation.amend"))
        assert event.details["before"]["score_pct"] == 62.5
        assert event.details["after"]["answers"]["empathy"] == 4
        assert event.details["why"] == better["why"]
    # once answered, the setting's window: amendable today, not after it closes
    again = api.post(url, json={**better, "answers": {"empathy": 5}}).json()
    assert again["score_pct"] == 100.0 and again["status"] == "submitted"
    with ctx.db.session() as session:
        policy.set_value(session, "evaluations.amend_days", 0)
    closed = api.post(url, json=better)
    assert closed.status_code == 403 and "within 0 days" in closed.json()["detail"]


def test_a_draft_is_kept_for_its_evaluator_alone_until_it_is_submitted(ctx, api, world):
    url = f"/api/v1/conversations/{world['id']}/evaluations"
    body = {
        "form": "Support call quality",
        "answers": {"empathy": 3},
        "comments": {"empathy": "so far"},
        "reasons": {"greeting": "half a greeting"},
    }
    assert api.get(f"{url}/draft").status_code == 404
    assert api.put(f"{url}/draft", json=body).json()["answers"] == {"empathy": 3}
    kept = api.put(f"{url}/draft", json={**body, "answers": {"empathy": 4}}).json()
    assert kept["answers"] == {"empathy": 4} and kept["reasons"] == {"greeting": "half a greeting"}
    assert api.get(f"{url}/draft").json() == kept  # (replaced, not added)
    wrong = api.put(f"{url}/draft", json={**body, "answers": {"empathy": 9}})
    assert wrong.status_code == 422 and "answers.empathy" in wrong.text
    assert api.get(f"{url}/draft").json() == kept
    # nobody else sees it, nothing counts it
    marcus = as_user(api, world["tokens"]["marcus"])
    assert api.get(url, headers=marcus).json() == [] and api.get(url).json() == []
    assert api.get(f"{url}/draft", headers=marcus).status_code == 404
    card = api.get("/api/v1/scorecards", params={"from": "2026-11-01", "to": "2026-11-30"})
    assert card.json()["evaluations"] == 0
    with ctx.db.session() as session:
        draft_id = session.scalar(select(Evaluation.id))
    acknowledged = api.post(f"/api/v1/evaluations/{draft_id}/acknowledge", headers=marcus, json={})
    assert acknowledged.status_code == 404
    # submitting is done with it
    submitted = api.post(url, json={"form": "Support call quality", "answers": {"empathy": 4}})
    assert submitted.status_code == 201
    assert api.get(f"{url}/draft").status_code == 404
    with ctx.db.session() as session:
        assert session.scalars(select(Evaluation.status)).all() == ["submitted"]


def test_an_administrator_imports_forms_from_the_page(ctx, client, world):
    csrf = sign_in(client, "sup")
    assert "Agent greeted the customer" in client.get("/admin/forms").text

    def send(**fields):
        return client.post("/admin/forms", data={"csrf_token": csrf, **fields}).text

    assert "definition is not valid JSON" in send(definition="{name: Support")
    twice = {**FORM, "sections": [FORM["sections"][0], FORM["sections"][0]]}
    assert "duplicate question id" in send(definition=json.dumps(twice))
    changed = {**FORM, "sections": FORM["sections"][:1]}
    uploaded = client.post(
        "/admin/forms",
        data={"csrf_token": csrf},
        files={"upload": ("form.json", json.dumps(changed).encode(), "application/json")},
    ).text
    assert "Form imported." in uploaded
    with ctx.db.session() as session:
        versions = session.scalars(select(EvaluationForm.version).order_by(EvaluationForm.id))
        assert versions.all() == [1, 2]  # the refused ones left nothing
    listed = client.get("/admin/forms").text
    assert "<td>2</td>" in listed and "No unauthorised promise" not in listed


def test_sampling_leans_towards_calls_of_risk_categories(ctx):
    """60 calls of the last ten days, 6 of them matching "Churn risk": drawn 5 at a time over
    40 seeds, the risky ones come up at least twice as often when named as risk as when not."""
    with ctx.db.session() as session:
        queue, agent = Queue(name="Retention"), Agent(external_id="AG-9", name="Nina")
        churn = Category(name="Churn risk", definition={}, version=1, applied_version=1)
        session.add_all([queue, agent, churn])
        session.flush()
        boss = auth.add_user(session, "lead", "supervisor", PASSWORD)
        boss.queues = [queue]
        for i in range(60):
            conv = Conversation(
                external_id=f"R-{i}",
                channel="voice",
                status="closed",
                primary_agent_id=agent.id,
                queue_id=queue.id,
                started_at=utcnow() - timedelta(days=i % 10, hours=1),
                processing_status="processed",
            )
            session.add(conv)
            session.flush()
            session.add(ConversationAnalysis(conversation_id=conv.id))
            if i % 10 == 0:
                session.add(CategoryMatch(conversation_id=conv.id, category_id=churn.id))
        risky = set(session.scalars(select(CategoryMatch.conversation_id)))

    def drawn(risk):
        found = 0
        for seed in range(40):
            with ctx.db.session() as session:
                evaluations.sample(session, Actor.cli(), 5, 10, rng=random.Random(seed), risk=risk)
                rows = session.execute(
                    select(EvaluationAssignment.conversation_id, EvaluationAssignment.reasons)
                ).all()
                picked = {conv_id for conv_id, _why in rows}
                assert len(picked) == 5
                for conv_id, why in rows:  # (each says why it was likelier drawn)
                    assert why == (["risk:Churn risk"] if risk and conv_id in risky else [])
                found += len(picked & risky)
                session.rollback()
        return found

    plain, leaning = drawn(None), drawn(["Churn risk"])
    assert plain > 0 and leaning >= 2 * plain, (plain, leaning)
    with ctx.db.session() as session, pytest.raises(evaluations.EvaluationError, match="risk:"):
        evaluations.sample(session, Actor.cli(), 5, 10, risk=["No such"])


def test_nobody_evaluates_or_is_sampled_a_call_they_took_part_in_or_no_longer_see(ctx):
    """A supervisor linked to an agent who took a call over by a transfer neither evaluates it
    nor is sampled it (another supervisor of the queue is); a supervisor moved off a queue no
    longer finds its sampled calls in To evaluate."""
    with ctx.db.session() as session:
        queue, other = Queue(name="Billing"), Queue(name="Sales")
        first, lead_as_agent = Agent(external_id="AG-1"), Agent(external_id="AG-LEAD")
        session.add_all([queue, other, first, lead_as_agent])
        session.flush()
        lead = auth.add_user(session, "lead", "supervisor", PASSWORD)
        lead.agent_id, lead.queues = lead_as_agent.id, [queue]
        deputy = auth.add_user(session, "deputy", "supervisor", PASSWORD)
        deputy.queues = [queue]
        started = utcnow() - timedelta(days=1)
        conv = Conversation(
            external_id="T-1",
            channel="voice",
            status="closed",
            primary_agent_id=first.id,
            queue_id=queue.id,
            started_at=started,
            processing_status="processed",
        )
        conv.sessions = [
            ConversationSession(position=0, agent_id=first.id, started_at=started),
            ConversationSession(
                position=1, agent_id=lead_as_agent.id, role="transfer", started_at=started
            ),
        ]
        session.add(conv)
        session.flush()
        session.add(ConversationAnalysis(conversation_id=conv.id))
        session.flush()
        empathy = FORM["sections"][0]["questions"][1]
        plain = {"name": "Plain", "sections": [{"title": "All", "questions": [empathy]}]}
        evaluations.import_form(session, Actor.cli(), plain)
    with ctx.db.session() as session:
        lead, deputy = (
            session.scalar(select(User).where(User.username == name)) for name in ("lead", "deputy")
        )
        conv = session.scalar(select(Conversation).where(Conversation.external_id == "T-1"))
        assert evaluations.took_part(lead, conv) and not evaluations.took_part(deputy, conv)
        with pytest.raises(evaluations.NotYours, match="nobody evaluates their own calls"):
            evaluations.evaluate(session, Actor.cli(), lead, conv.id, "Plain", {"empathy": 3})
        assert evaluations.panel(session, lead, conv, None)["form"] is None
        assert evaluations.sample(session, Actor.cli(), 5, 10) == {"deputy": 1}
        session.rollback()
    with ctx.db.session() as session:  # (the deputy alone took part: nobody is sampled it)
        deputy = session.scalar(select(User).where(User.username == "deputy"))
        conv = session.scalar(select(Conversation).where(Conversation.external_id == "T-1"))
        conv.sessions[0].agent_id = deputy.agent_id = session.scalar(
            select(Agent.id).where(Agent.external_id == "AG-LEAD")
        )
        given = evaluations.sample(session, Actor.cli(), 5, 10)
        assert given == {"(only a supervisor who took part in the call)": 1}
        session.rollback()
    with ctx.db.session() as session:
        deputy = session.scalar(select(User).where(User.username == "deputy"))
        evaluations.sample(session, Actor.cli(), 5, 10)
        [(call, assigned)] = evaluations.to_evaluate(session, deputy)
        assert call.external_id == "T-1" and utcnow() - assigned.created_at < timedelta(minutes=5)
        assert assigned.reasons == []  # (drawn at random)
        deputy.queues = [session.scalar(select(Queue).where(Queue.name == "Sales"))]
        session.flush()
        assert evaluations.to_evaluate(session, deputy) == []


def test_the_score_is_the_weighted_share_over_answered_questions():
    form = evaluations.Form.model_validate(FORM)
    assert evaluations.score(form, {}) is None
    assert evaluations.score(form, {"greeting": "na", "empathy": "na"}) is None
    assert evaluations.score(
        form, {"greeting": "no", "empathy": 1, "no_promise": "yes"}
    ) == pytest.approx(16.7)
    assert evaluations.score(form, {"greeting": "yes", "empathy": 5, "no_promise": "yes"}) == 100.0


def test_a_scorecard_gives_the_weeks_of_an_agents_calls_that_the_viewer_may_see(api, world):
    params = {"agent": "AG-1", "from": "2026-11-01", "to": "2026-11-30"}
    first = api.get("/api/v1/scorecards", params=params).json()
    assert (first["calls"], first["evaluations"], first["score_pct"]) == (1, 0, None)
    api.post(
        f"/api/v1/conversations/{world['id']}/evaluations",
        json={"form": "Support call quality", "answers": {"empathy": 4}},
    )
    card = api.get("/api/v1/scorecards", params=params).json()
    assert card["calls"] == 1 and card["evaluations"] == 1 and card["score_pct"] == 87.5
    [week] = card["weeks"]
    assert week["week_start"] == "2026-11-16"  # the Monday of the call's week (20 Nov 2026)
    assert week["calls"] == 1 and week["average_handle_s"] == 300.0
    assert week["categories"] == {"Greeting": 1} and week["score_pct"] == 87.5
    assert week["customer_sentiment"] is not None and 0 <= week["agent_talk_pct"] <= 100
    olga = as_user(api, world["tokens"]["olga"])
    assert api.get("/api/v1/scorecards", params=params, headers=olga).json()["calls"] == 0
    marcus = as_user(api, world["tokens"]["marcus"])
    assert api.get("/api/v1/scorecards", params=params, headers=marcus).json()["calls"] == 1
    elsewhere = api.get(
        "/api/v1/scorecards", params={**params, "from": "2025-01-01", "to": "2025-02-01"}
    )
    assert elsewhere.json()["weeks"] == []
    backwards = api.get("/api/v1/scorecards", params={**params, "from": "2026-12-01"})
    assert backwards.status_code == 422 and "from:" in backwards.text
    ages = api.get("/api/v1/scorecards", params={**params, "from": "2000-01-03"})
    assert ages.status_code == 422 and "at most 260 weeks" in ages.text
    for far in (
        {"from": "1969-12-29", "to": "1970-01-31"},
        {"from": "9999-12-01", "to": "9999-12-31"},
    ):
        outside = api.get("/api/v1/scorecards", params=far)
        assert outside.status_code == 422 and "from, to: days from" in outside.text


def test_sampled_calls_are_evaluated_and_answered_from_the_pages(ctx, api, client, world):
    with ctx.db.session() as session:
        boss = auth.add_user(session, "queen", "supervisor", PASSWORD)
        boss.queues = [session.scalars(select(Queue)).one()]
        # (the call of yesterday, whenever the test runs: sampling counts back from today)
        session.get_one(Conversation, world["id"]).started_at = utcnow() - timedelta(days=1)
    sampled = callscope(
        ctx, "evaluations", "sample", "--per-agent", "3", "--days", "7", "--seed", "7"
    )
    assert sampled.returncode == 0, sampled.stderr
    assert sampled.stdout.splitlines() == ["queen: 1 call(s)", "assigned 1 call(s)"]
    again = callscope(ctx, "evaluations", "sample", "--per-agent", "3", "--days", "7")
    assert again.stdout.strip() == "assigned 0 call(s)"  # (a call is sampled once)

    csrf = sign_in(client, "queen")
    listed = client.get("/evaluations").text
    assert f'href="/conversations/{world["id"]}#evaluation"' in listed
    assert "<th>Assigned</th>" in listed  # (with when each call was assigned, and why)
    assert '<td class="why-sampled">at random</td>' in listed
    assert 'name="risk" value="Greeting"' in listed  # (sampling may lean on a category)
    page = client.get(f"/conversations/{world['id']}").text
    assert 'id="evaluate"' in page and "Answered automatically: yes" in page
    res = client.post(
        f"/conversations/{world['id']}/evaluations",
        data={
            "csrf_token": csrf,
            "form_id": "1",
            "answer-greeting": "yes",
            "answer-empathy": "3",
            "answer-no_promise": "yes",
            "comment-empathy": "Could acknowledge the wait",
        },
        follow_redirects=True,
    )
    assert "Evaluation submitted." in res.text and "Could acknowledge the wait" in res.text
    assert '<details id="evaluate-again" >' in res.text  # (no blank form under the submitted one)
    assert f'href="/conversations/{world["id"]}#evaluation"' not in client.get("/evaluations").text
    refused = client.post(
        f"/conversations/{world['id']}/evaluations",
        data={
            "csrf_token": csrf,
            "form_id": "1",
            "answer-greeting": "no",
            "answer-empathy": "2",
            "comment-empathy": "Typed before the refusal",
        },
        follow_redirects=True,
    )
    said = "say why the automatic answer “yes” to “Agent greeted the customer” is changed"
    assert f'data-control="reason-greeting">{said}</p>' in refused.text  # (the field marked)
    form = refused.text.split('id="evaluate"')[1]  # nothing typed is lost: kept as a draft
    assert "Typed before the refusal" in form and re.search(r'value="2"\s+selected', form)
    answers = res.text.split('id="evaluate"')[0]  # (the submitted evaluation, above the form)
    assert "3 / 5" in answers and "(overridden)" not in answers

    client.post("/logout", data={"csrf_token": csrf})
    csrf = sign_in(client, "marcus")
    assert client.get("/evaluations").status_code == 403  # (an agent has no list to work)
    page = client.get(f"/conversations/{world['id']}").text
    assert "Acknowledge" in page and 'id="evaluate"' not in page
    [evaluation] = api.get(f"/api/v1/conversations/{world['id']}/evaluations").json()
    res = client.post(
        f"/evaluations/{evaluation['id']}/respond",
        data={"csrf_token": csrf, "decision": "dispute", "comment": "I apologised twice"},
        follow_redirects=True,
    )
    assert "I apologised twice" in res.text
    with ctx.db.session() as session:
        assert session.get(Evaluation, evaluation["id"]).status == "disputed"
        assert session.scalar(select(User.id).where(User.username == "queen"))
    client.post("/logout", data={"csrf_token": csrf})
    csrf = sign_in(client, "queen")
    overridden = client.post(
        f"/conversations/{world['id']}/evaluations",
        data={
            "csrf_token": csrf,
            "form_id": "1",
            "answer-greeting": "no",
            "reason-greeting": "greeted the wrong company",
            "answer-empathy": "na",
        },
        follow_redirects=True,
    )
    assert "(overridden)" in overridden.text and "greeted the wrong company" in overridden.text
    # the disputed evaluation amended by its evaluator, a refusal said in her language
    assert f'id="amend-{evaluation["id"]}"' in overridden.text
    amend = f"/evaluations/{evaluation['id']}/amend"
    typed = {"csrf_token": csrf, "answer-greeting": "no", "answer-empathy": "4", "why": "heard"}
    refused = client.post(
        amend, data=typed, headers={"Accept-Language": "id"}, follow_redirects=False
    )
    page = client.get(refused.headers["location"], headers={"Accept-Language": "id"}).text
    said = "jelaskan mengapa jawaban otomatis “ya” untuk “Agent greeted the customer” diubah"
    assert f'data-form="{amend}" data-control="reason-greeting">{said}</p>' in page
    typed = {**typed, "reason-greeting": "wrong company", "why": "Heard it again"}
    amended = client.post(amend, data=typed, follow_redirects=True).text
    assert "Evaluation amended." in amended and "Heard it again" in amended
    with ctx.db.session() as session:
        done = session.get_one(Evaluation, evaluation["id"])
        assert (done.status, done.answer, done.answers["empathy"]) == (
            "answered",
            "Heard it again",
            4,
        )
        assert done.overrides["greeting"]["why"] == "wrong company"


def test_a_form_names_its_category_in_any_case_of_any_alphabet(ctx, api, world):
    """As a category's name is found everywhere else ("Straße" is "STRASSE"): the form is
    accepted and its question answered from the category's matches."""
    with ctx.db.session() as session:
        categories.add(session, Actor.cli(), "Straße", {"phrases": ["northwind"]})
    while categories.apply_step(ctx.db) is not None:
        pass
    form = {
        "name": "Street",
        "sections": [
            {
                "title": "Opening",
                "questions": [
                    {
                        "id": "named",
                        "text": "Named the company",
                        "type": "yes_no",
                        "weight": 1,
                        "auto": {"category": "STRASSE"},
                    }
                ],
            }
        ],
    }
    assert api.post("/api/v1/evaluation-forms", json=form).status_code == 201
    done = api.post(
        f"/api/v1/conversations/{world['id']}/evaluations", json={"form": "Street", "answers": {}}
    )
    assert done.status_code == 201, done.text
    [answer] = done.json()["answers"]
    assert answer["value"] == "yes" and answer["automatic"]["evidence"]
