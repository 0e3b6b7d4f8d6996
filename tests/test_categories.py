"""Categories: exact phrase matching (checked against a plain reference on generated
transcripts), who and when, absence and conditions; defined by CLI, API and page, applied to
stored calls, found in the list, counted in the CSV export and named to webhooks; and comments
at a moment of a call."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from callscope.db.models import AuditEvent, Comment, WebhookDelivery
from callscope.governance import auth, policy
from callscope.governance.audit import Actor
from callscope.processing import retention, webhooks
from callscope.processing.ingest import Ingestor
from callscope.review import categories
from tests.support import PASSWORD, callscope, make_meta, sign_in

VOCABULARY = ["refund", "refunds", "refunded", "thank", "you", "for", "calling", "café", "Cafe"]


def line(speaker, words, start=0.0):
    timed = [
        {"text": w, "start_s": start + i, "end_s": start + i + 0.8} for i, w in enumerate(words)
    ]
    return {"speaker": speaker, "start_s": start, "end_s": start + len(words), "words": timed}


def reference_count(segments, phrase):
    """How often PHRASE occurs, found the plain way: every position of every line."""
    wanted = [(w.rstrip("*"), w.endswith("*")) for w in phrase.split()]
    count = 0
    for seg in segments:
        words = [categories.fold(re.sub(r"[^\w']", "", w["text"])) for w in seg["words"]]
        for i in range(len(words) - len(wanted) + 1):
            if all(
                words[i + k].startswith(categories.fold(t))
                if prefix
                else words[i + k] == categories.fold(t)
                for k, (t, prefix) in enumerate(wanted)
            ):
                count += 1
    return count


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from(["agent", "customer"]),
            st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=12),
        ),
        min_size=1,
        max_size=6,
    ),
    phrase=st.lists(
        st.sampled_from(["refund", "thank", "you", "cafe", "calling"]), min_size=1, max_size=3
    ),
    prefix=st.booleans(),
)
def test_phrases_match_exactly_where_they_are_said(lines, phrase, prefix):
    segments = [line(speaker, words, start=20.0 * i) for i, (speaker, words) in enumerate(lines)]
    text = " ".join(phrase) + ("*" if prefix else "")
    definition = categories.parse({"phrases": [text]})
    found = categories.find(definition, categories.lines_of(segments), end_s=200.0)
    assert len(found) == reference_count(segments, text)
    for moment in found:  # each moment is the phrase's own words, in their speaker's line
        assert moment["end_s"] - moment["start_s"] == pytest.approx(len(phrase) - 1 + 0.8)


def test_who_and_when_absence_and_conditions():
    segments = [
        line("agent", "Thank you for calling Northwind".split(), start=1.0),
        line("customer", "I want a refund".split(), start=10.0),
        line("agent", "Your refund is processed. Thank you for calling".split(), start=80.0),
    ]
    end = 100.0

    def matched(fields, metrics=None, sentiment=None):
        return categories.match(
            categories.parse(fields),
            categories.lines_of(segments),
            end,
            metrics or {},
            sentiment or {},
        )

    greeting = matched({"phrases": ["thank you for calling"], "speaker": "agent", "first_s": 15})
    assert [(m["speaker"], m["start_s"]) for m in greeting] == [("agent", 1.0)]
    closing = matched({"phrases": ["thank you for calling"], "last_s": 15})
    assert [m["start_s"] for m in closing] == [84.0]
    assert matched({"phrases": ["refund*"], "speaker": "customer"})[0]["text"] == "refund"
    assert matched({"phrases": ["refund"], "speaker": "agent", "first_s": 30}) is None
    assert matched({"phrases": ["recorded line"], "absent": True}) == []  # matched, no moment
    assert matched({"phrases": ["refund"], "absent": True}) is None
    angry = {"conditions": {"customer_sentiment": "negative", "customer_trend": "falling"}}
    assert matched(angry, sentiment={"customer": {"label": "negative"}, "trend": -0.4}) == []
    assert matched(angry, sentiment={"customer": {"label": "negative"}, "trend": 0.0}) is None
    quiet = {"phrases": ["refund"], "conditions": {"non_talk_over_s": 30}}
    assert matched(quiet, metrics={"non_talk": {"total_s": 12}}) is None
    assert len(matched(quiet, metrics={"non_talk": {"total_s": 45}})) == 2


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({}, "give at least one phrase, example (like) or condition"),
        ({"phrases": ["hello"], "speaker": "robot"}, "speaker: "),
        ({"phrases": ["hello"], "first_s": -5}, "first_s: "),
        ({"phrases": ["hello"], "first_s": 5, "last_s": 5}, "first_s or last_s, not both"),
        ({"phrases": ["re*fund"]}, "`*` may only end a word"),
        ({"phrases": ["  "]}, "phrases: "),
        ({"absent": True, "conditions": {"interruptions_at_least": 2}}, "absent needs the phrases"),
        ({"phrases": ["x"], "conditions": {"mood": "bad"}}, "conditions.mood: "),
        ({"phrases": ["a*"]}, "phrases: 'a*': a prefix needs at least 3 letters before `*`"),
        ({"phrases": ["thank yo*"]}, "'yo*' would match most of a call"),
    ],
)
def test_bad_definitions_are_refused_naming_the_field(fields, named):
    with pytest.raises(categories.CategoryError, match=re.escape(named)):
        categories.parse(fields)


def test_a_category_keeps_at_most_its_first_hundred_moments_of_a_call(ctx, api):
    """A phrase said 400 times in a call (or a category an attacker made to match everything):
    what is stored, shown and written stays bounded."""
    with ctx.db.session() as session:
        categories.add(session, Actor.cli(), "Refunds", {"phrases": ["refund*"]})
    call = imported(api, [("customer", "refund refunds refunded refund " * 10)] * 10)
    doc = api.get(f"/api/v1/conversations/{call}/analysis").json()
    [found] = [c for c in doc["categories"] if c["name"] == "Refunds"]
    assert len(found["matches"]) == categories.MAX_MOMENTS
    assert found["matches"][0]["start_s"] == 0.0  # (the first ones)


def imported(api, words_by_speaker, **meta):
    segments = [
        line(s, text.split(), start=10.0 * i) for i, (s, text) in enumerate(words_by_speaker)
    ]
    for seg in segments:
        seg["text"] = " ".join(w["text"] for w in seg["words"])
    body = {"language": "en", "transcript": {"segments": segments}}
    files = {
        "metadata": (None, json.dumps(make_meta(mono=True, **meta)), "application/json"),
        "transcript": ("t.json", json.dumps(body), "application/json"),
    }
    res = api.post("/api/v1/conversations/import", files=files)
    assert res.status_code == 201, res.text
    return res.json()["id"]


def test_categories_through_the_api_list_filter_csv_and_webhook(ctx, api):
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
        webhooks.add(session, Actor.cli(), "https://crm.example.com/hook")
    res = api.post(
        "/api/v1/categories",
        json={"name": "Refund asked", "phrases": ["refund*"], "speaker": "customer"},
    )
    assert res.status_code == 201 and res.json()["applied"] is False
    category_id = res.json()["id"]
    duplicate = api.post("/api/v1/categories", json={"name": "refund ASKED", "phrases": ["x"]})
    assert duplicate.status_code == 422
    assert "name: a category named 'refund ASKED' exists" in duplicate.json()["detail"]
    refused = api.post("/api/v1/categories", json={"name": "Empty"})
    assert refused.status_code == 422 and "at least one phrase" in refused.json()["detail"]
    asked = imported(api, [("agent", "How can I help"), ("customer", "I want my refunds now")])
    other = imported(api, [("agent", "How can I help"), ("customer", "Just checking my balance")])

    found = api.get("/api/v1/conversations", params={"category": "refund asked"}).json()
    assert [c["id"] for c in found["items"]] == [asked]
    assert found["items"][0]["categories"] == ["Refund asked"]
    doc = api.get(f"/api/v1/conversations/{asked}/analysis").json()
    assert doc["categories"] == [
        {
            "name": "Refund asked",
            "matches": [{"speaker": "customer", "start_s": 13.0, "end_s": 13.8, "text": "refunds"}],
        }
    ]
    table = list(csv.DictReader(io.StringIO(api.get("/api/v1/conversations/export.csv").text)))
    by_id = {int(row["id"]): row for row in table}
    assert (
        by_id[asked]["categories_matched"] == "1" and by_id[asked]["categories"] == "Refund asked"
    )
    assert by_id[other]["categories_matched"] == "0"
    with ctx.db.session() as session:
        payloads = {d.conversation_id: d.payload for d in session.scalars(select(WebhookDelivery))}
    assert payloads[asked]["conversation"]["categories"] == ["Refund asked"]
    assert payloads[other]["conversation"]["categories"] == []

    assert api.delete(f"/api/v1/categories/{category_id}").status_code == 204
    assert (
        api.get("/api/v1/conversations", params={"category": "Refund asked"}).json()["total"] == 0
    )
    assert api.get(f"/api/v1/conversations/{asked}/analysis").json()["categories"] == []


def test_a_new_category_is_applied_to_stored_calls_by_the_cli_with_progress(ctx, api):
    calls = [imported(api, [("agent", f"Thank you for calling number {i}")]) for i in range(3)]
    calls.append(imported(api, [("agent", "Good morning")]))
    added = callscope(
        ctx,
        "categories",
        "add",
        "Greeting",
        "--phrase",
        "thank you for calling",
        "--speaker",
        "agent",
        "--first-s",
        "30",
    )
    assert added.returncode == 0, added.stderr
    listed = callscope(ctx, "categories", "list").stdout
    assert re.search(r"Greeting +0 call\(s\) .*\(being applied\)", listed)
    applied = callscope(ctx, "categories", "apply")
    assert applied.returncode == 0 and applied.stdout.strip() == "applied 1 category"
    assert "Greeting" in applied.stderr  # the progress bar
    assert re.search(r"Greeting +3 call\(s\)", callscope(ctx, "categories", "list").stdout)
    found = api.get("/api/v1/conversations", params={"category": "Greeting"}).json()
    assert sorted(c["id"] for c in found["items"]) == sorted(calls[:3])
    # what the workers do between jobs: nothing is left to apply
    assert categories.apply_next(ctx.db) is False
    bad = callscope(ctx, "categories", "add", "Nothing")
    assert bad.returncode == 1
    assert (
        bad.stderr.strip()
        == "error: invalid category: give at least one phrase, example (like) or condition"
    )
    removed = callscope(ctx, "categories", "remove", "greeting")
    assert removed.returncode == 0
    assert api.get("/api/v1/conversations", params={"category": "Greeting"}).json()["total"] == 0


def test_comments_threads_resolving_refusals_and_erasure(ctx, api):
    conversation_id = imported(api, [("agent", "Hello there"), ("customer", "Hi I have a problem")])
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)  # (comments need viewing on)
    url = f"/api/v1/conversations/{conversation_id}/comments"
    first = api.post(url, json={"at_s": 10.5, "text": "Good opening"})
    assert first.status_code == 201
    comment_id = first.json()["comments"][0]["id"]
    reply = api.post(url, json={"at_s": 0, "text": "Agreed", "reply_to": comment_id})
    thread = reply.json()["comments"]
    assert [c["text"] for c in thread] == ["Good opening"]
    assert [r["text"] for r in thread[0]["replies"]] == ["Agreed"]
    done = api.post(f"{url}/{comment_id}/resolve")
    assert done.json()["comments"][0]["resolved"] is True
    doc = api.get(f"/api/v1/conversations/{conversation_id}/analysis").json()
    assert doc["comments"][0]["at_s"] == 10.5 and doc["comments"][0]["resolved"] is True
    for body, status, named in [
        ({"at_s": 1, "text": "   "}, 422, "text: write something"),
        ({"at_s": 500, "text": "late"}, 422, "at_s: a moment of the call"),
        ({"at_s": 1, "text": "x", "reply_to": 999}, 404, "reply_to: no comment 999"),
    ]:
        res = api.post(url, json=body)
        assert res.status_code == status and named in res.json()["detail"], res.text
    assert (
        api.post("/api/v1/conversations/4711/comments", json={"at_s": 1, "text": "x"}).status_code
        == 404
    )
    with ctx.db.session() as session:
        assert len(session.scalars(select(Comment)).all()) == 2
    retention.erase_customer(ctx, Actor.cli(), make_meta()["customer"]["external_id"])
    with ctx.db.session() as session:
        assert session.scalars(select(Comment)).all() == []


def test_comments_from_the_page(ctx, client):
    with ctx.db.session() as session:
        auth.add_user(session, "boss", "admin", PASSWORD)
        policy.set_value(session, "recordings.enabled", True)
    body = {"language": "en", "transcript": {"segments": [line("agent", ["Hello", "there"])]}}
    body["transcript"]["segments"][0]["text"] = "Hello there"
    ingestor = Ingestor(ctx)
    result = ingestor.import_transcript(
        json.dumps(body).encode(), "json", ingestor.check_metadata(make_meta(mono=True))
    )
    csrf = sign_in(client, "boss")
    res = client.post(
        f"/conversations/{result.id}/comments",
        data={"csrf_token": csrf, "text": "Check the greeting", "at_s": "0.5"},
        follow_redirects=False,
    )
    assert res.status_code == 303 and res.headers["location"].endswith("#details")
    page = client.get(f"/conversations/{result.id}").text
    assert "Check the greeting" in page and "Comment added." in page
    forged = client.post(
        f"/conversations/{result.id}/comments", data={"text": "no token"}, follow_redirects=False
    )
    assert forged.status_code == 403


def test_administrators_define_categories_on_their_page(ctx, client):
    with ctx.db.session() as session:
        auth.add_user(session, "boss", "admin", PASSWORD)
        auth.add_user(session, "sup", "supervisor", PASSWORD)
    csrf = sign_in(client, "boss")
    form = {
        "csrf_token": csrf,
        "name": "No disclosure",
        "phrases": "this call is recorded\npanggilan ini direkam\n",
        "speaker": "agent",
        "window": "first",
        "seconds": "30",
        "absent": "true",
    }
    res = client.post("/admin/categories", data=form, follow_redirects=True)
    assert "Category added: the stored calls are being matched." in res.text
    row = re.search(r'<tr id="category-\d+">(.*?)</tr>', res.text, re.S).group(1)
    assert "not said:" in row and "panggilan ini direkam" in row and "first 30 s" in row
    again = client.post("/admin/categories", data=form, follow_redirects=True)
    assert "name: a category named &#39;No disclosure&#39; exists" in again.text
    # its Edit form holds the definition as it is; saved, the definition is the new one
    category_id = re.search(r'<tr id="category-(\d+)">', res.text).group(1)
    edit = again.text.split(f'id="edit-category-{category_id}"')[1].split("</details>")[0]
    assert "this call is recorded\npanggilan ini direkam</textarea>" in edit
    assert '<option value="first" selected>' in edit and 'value="30.0"' in edit
    assert 'name="absent" value="true" checked' in edit
    changed = {**form, "phrases": "this call may be recorded", "window": "all", "absent": ""}
    res = client.post(f"/admin/categories/{category_id}", data=changed, follow_redirects=True)
    assert "Category changed: the stored calls are being matched again." in res.text
    row = re.search(rf'<tr id="category-{category_id}">(.*?)</tr>', res.text, re.S).group(1)
    assert "this call may be recorded" in row and "not said:" not in row
    assert "first 30 s" not in row.split("</td>")[2]
    bad = client.post("/admin/categories", data={**form, "name": "x", "seconds": "-5"})
    assert bad.status_code == 422 and "seconds" in bad.text
    client.post("/logout", data={"csrf_token": csrf})
    csrf = sign_in(client, "sup")
    assert client.get("/admin/categories").status_code == 403
    assert client.post("/admin/categories", data={**form, "csrf_token": csrf}).status_code == 403


def test_a_category_added_while_another_is_applied_catches_up_and_both_finish(ctx, api):
    calls = [imported(api, [("customer", f"my refund number {i} please")]) for i in range(7)]
    with ctx.db.session() as session:
        categories.add(session, Actor.cli(), "Refund", {"phrases": ["refund"]})
    assert categories.apply_step(ctx.db, batch=2) is not None  # Refund is 2 calls in
    with ctx.db.session() as session:
        categories.add(session, Actor.cli(), "Please", {"phrases": ["please"]})
    steps = 0
    while categories.apply_step(ctx.db, batch=2) is not None:
        steps += 1
    assert steps <= 5  # (Please caught up with Refund after one step; then they went together)
    for name in ("Refund", "Please"):
        found = api.get("/api/v1/conversations", params={"category": name, "limit": 50}).json()
        assert sorted(c["id"] for c in found["items"]) == sorted(calls), name
    assert categories.pending(ctx.db) == []


def test_a_category_is_found_by_its_name_before_its_id(ctx):
    """`categories remove 2` removes the category named "2", not the one whose id is 2; a
    number nobody named is an id; anything else is not found (never a server error)."""
    with ctx.db.session() as session:
        first = categories.add(session, Actor.cli(), "Greeting", {"phrases": ["hello"]})
        second = categories.add(session, Actor.cli(), "Cancel", {"phrases": ["cancel"]})
        named = categories.add(session, Actor.cli(), str(second.id), {"phrases": ["refund"]})
        assert categories.find_category(session, str(second.id)).id == named.id
        assert categories.find_category(session, f" {first.id} ").id == first.id
        assert categories.find_category(session, second.id).id == second.id
        for unknown in ("²", "9" * 30, "nobody", "-1"):
            with pytest.raises(categories.UnknownCategory, match="no category"):
                categories.find_category(session, unknown)


def test_category_names_are_one_in_any_case_of_any_alphabet(ctx, api):
    """ "Ä1" and "ä1" are one name (SQLite's lower() knows only ASCII): the second is refused,
    and either finds the first by name, in the commands and in the list's filter."""
    with ctx.db.session() as session:
        first = categories.add(session, Actor.cli(), "Ä1", {"phrases": ["refund"]})
        with pytest.raises(categories.CategoryError, match="a category named 'ä1' exists"):
            categories.add(session, Actor.cli(), "ä1", {"phrases": ["cancel"]})
        assert categories.find_category(session, "ä1").id == first.id
        assert categories.find_category(session, " ä1 ").id == first.id
    refused = api.post("/api/v1/categories", json={"name": "ä1", "phrases": ["cancel"]})
    assert refused.status_code == 422 and "exists" in refused.text
    listed = api.get("/api/v1/conversations", params={"category": "ä1"})
    assert listed.status_code == 200 and listed.json()["items"] == []


def test_a_category_an_evaluation_form_answers_from_is_not_removed(ctx, api):
    with ctx.db.session() as session:
        categories.add(session, Actor.cli(), "Greeting", {"phrases": ["hello"]})
    form = {
        "name": "Quality",
        "sections": [
            {
                "title": "Opening",
                "questions": [
                    {
                        "id": "greet",
                        "text": "Greeted",
                        "type": "yes_no",
                        "weight": 1,
                        "auto": {"category": "greeting"},
                    }
                ],
            }
        ],
    }
    assert api.post("/api/v1/evaluation-forms", json=form).status_code == 201
    [greeting] = api.get("/api/v1/categories").json()
    refused = api.delete(f"/api/v1/categories/{greeting['id']}")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "category 'Greeting' answers form 'Quality', question greet: change the form first"
    )
    assert [c["name"] for c in api.get("/api/v1/categories").json()] == ["Greeting"]
    url = f"/api/v1/categories/{greeting['id']}"
    renamed = api.put(url, json={"name": "Welcome", "phrases": ["hello"]})
    assert renamed.status_code == 409 and "keeps its name" in renamed.json()["detail"]
    rephrased = api.put(url, json={"name": "GREETING", "phrases": ["hello", "good morning"]})
    assert rephrased.status_code == 200 and rephrased.json()["phrases"] == ["hello", "good morning"]
    changed = {**form, "sections": [{**form["sections"][0]}]}
    changed["sections"][0]["questions"] = [
        {"id": "greet", "text": "Greeted", "type": "yes_no", "weight": 1}
    ]
    assert api.post("/api/v1/evaluation-forms", json=changed).status_code == 201  # version 2
    assert api.delete(f"/api/v1/categories/{greeting['id']}").status_code == 204


def test_a_changed_category_matches_the_stored_calls_again_with_progress(ctx, api):
    calls = [imported(api, [("customer", f"I want a refund for order {i}")]) for i in range(3)]
    calls.append(imported(api, [("customer", "please cancel my contract")]))
    with ctx.db.session() as session:
        categories.add(session, Actor.cli(), "Refund", {"phrases": ["refund"]})
        categories.add(session, Actor.cli(), "Other", {"phrases": ["contract"]})
    while categories.apply_step(ctx.db) is not None:
        pass
    refund = next(c for c in api.get("/api/v1/categories").json() if c["name"] == "Refund")
    assert refund["calls"] == 3 and refund["progress_pct"] is None
    url = f"/api/v1/categories/{refund['id']}"
    for body, status, said in (
        ({"name": "Leaving", "phrases": ["*"]}, 422, "phrases"),
        ({"name": "other", "phrases": ["cancel*"]}, 422, "a category named 'other' exists"),
        ({"name": " ", "phrases": ["cancel*"]}, 422, "name: give a name"),
    ):
        res = api.put(url, json=body)
        assert res.status_code == status and said in res.json()["detail"], res.text
    assert (
        api.put("/api/v1/categories/999", json={"name": "x", "phrases": ["y"]}).status_code == 404
    )
    body = {"name": "Leaving", "phrases": ["cancel*"], "speaker": "customer"}
    changed = api.put(url, json=body).json()
    assert (changed["name"], changed["applied"], changed["progress_pct"]) == ("Leaving", False, 0)
    assert categories.apply_step(ctx.db, batch=2) == (2, 4)
    leaving = next(c for c in api.get("/api/v1/categories").json() if c["name"] == "Leaving")
    assert leaving["progress_pct"] == 50.0
    while categories.apply_step(ctx.db, batch=2) is not None:
        pass
    found = api.get("/api/v1/conversations", params={"category": "Leaving"}).json()
    assert [c["id"] for c in found["items"]] == [calls[3]]
    with ctx.db.session() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "category.change"))
        assert event.details["before"]["name"] == "Refund"
        assert event.details["after"]["definition"]["phrases"] == ["cancel*"]
    # from the command line: the definition given replaces the old one
    res = callscope(
        ctx, "categories", "change", "leaving", "--name", "Refund", "--phrase", "refund"
    )
    assert res.returncode == 0, res.stderr
    assert re.search(
        r"Refund +\d+ call\(s\) .*\(being applied\)", callscope(ctx, "categories", "list").stdout
    )
    callscope(ctx, "categories", "apply")
    found = api.get("/api/v1/conversations", params={"category": "Refund"}).json()
    assert sorted(c["id"] for c in found["items"]) == sorted(calls[:3])
