"""Mono recordings: speakers told apart by voice, agent and customer roles, voiceprints, swap."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callscope.context import Context
from callscope.db.models import Agent, AgentVoiceprint, AuditEvent, Conversation, Queue
from callscope.governance import auth, policy
from callscope.measures import sentiment
from callscope.processing import jobs
from callscope.processing.ingest import Ingestor
from callscope.review.document import document
from callscope.speech import diarization, media
from callscope.web.app import create_app
from tests.evaluation import (
    diarization_error,
    doc_words,
    mixdown,
    rttm_turns,
    speaker_accuracy,
    truth_turns,
)
from tests.support import DATA, DEMO_CALLS, FORMATS, callscope, make_meta, make_settings

EN = DEMO_CALLS / "synthetic_en_stereo.wav"
AUTO = DEMO_CALLS / "auto_repairs_40_stereo_agentL_customerR.wav"


def mono16k(path: Path) -> np.ndarray:
    audio, _ = media.decode(path, sample_rate=media.SAMPLE_RATE)
    return audio.mean(axis=0)


@pytest.mark.model
def test_two_speakers_are_told_apart_on_the_reference_sample():
    audio = mono16k(DATA / "speech" / "pyannote_sample.wav")
    found = diarization.diarize(audio)
    reference = rttm_turns(DATA / "speech" / "pyannote_sample.rttm")
    assert len(found.voices) == 2
    assert diarization_error(reference, found.turns, collar=0.25)["der"] <= 0.15


@pytest.mark.model
def test_a_mixdown_of_a_stereo_call_is_split_where_the_channels_say():
    found = diarization.diarize(mono16k(EN))
    truth = [(t["start"], t["end"], t["speaker"]) for t in truth_turns("synthetic_en_stereo")]
    assert len(found.voices) == 2
    assert diarization_error(truth, found.turns, collar=0.25)["der"] <= 0.15


@pytest.mark.model
def test_a_third_voice_is_found_when_a_call_changes_hands():
    """One minute of two synthetic voices, then a minute of a real agent and caller."""
    rate = media.SAMPLE_RATE
    audio = np.concatenate([mono16k(EN)[: 60 * rate], mono16k(AUTO)[: 60 * rate]])
    assert len(diarization.diarize(audio).voices) >= 3


def test_silence_gives_no_speakers():
    found = diarization.diarize(np.zeros(media.SAMPLE_RATE * 5, dtype=np.float32))
    assert found.turns == [] and found.voices == {}
    assert found.speaker_of(0.0, 1.0) is None


def test_what_is_said_tells_the_agent_in_both_languages():
    assert diarization.phrase_score("Thank you for calling, how can I help you today?", "en") > 0
    assert diarization.phrase_score("Hi, I'd like to buy a Chromecast", "en") < 0
    assert diarization.phrase_score("Selamat pagi, ada yang bisa saya bantu?", "id") > 0
    assert diarization.phrase_score("Saya mau melaporkan kartu debit saya", "id") < 0


def _found(voices: dict[int, np.ndarray]) -> diarization.Diarization:
    return diarization.Diarization([], voices)


def test_roles_by_phrases_then_first_speaker():
    rng = np.random.default_rng(1)
    dz = _found({0: rng.random(256), 1: rng.random(256)})
    texts = {0: "hi I'd like to cancel my order", 1: "thank you for calling how may I help"}
    roles = diarization.assign_roles(dz, texts, first_speaker=0, language="en")
    assert roles.agents == {1} and roles.method == "phrases" and roles.confidence > 0.6
    neutral = diarization.assign_roles(dz, {0: "okay", 1: "yes"}, first_speaker=1, language="en")
    assert neutral.agents == {1} and neutral.method == "first_speaker"
    assert neutral.confidence == 0.5


def test_roles_by_a_known_agents_voiceprint_outweigh_phrases():
    rng = np.random.default_rng(2)
    agent_voice, customer_voice = rng.normal(size=256), rng.normal(size=256)
    unit = [v / np.linalg.norm(v) for v in (agent_voice, customer_voice)]
    dz = _found({0: unit[0], 1: unit[1]})
    texts = {0: "hi I'd like to cancel my order", 1: "thank you for calling how may I help"}
    roles = diarization.assign_roles(dz, texts, 1, "en", voiceprints=[agent_voice * 3])
    assert roles.agents == {0} and roles.method == "voiceprint" and roles.confidence > 0.9
    stranger = rng.normal(size=256)
    roles = diarization.assign_roles(dz, texts, 1, "en", voiceprints=[stranger])
    assert roles.method == "phrases" and roles.agents == {1}


def test_a_voiceprint_follows_new_calls_within_its_cap():
    a, b = np.eye(256)[0], np.eye(256)[1]
    first, n = diarization.updated_voiceprint(None, 0, a, 100)
    assert n == 100 and np.allclose(first, a)
    mixed, n = diarization.updated_voiceprint(first, n, b, 100)
    assert n == 200 and np.isclose(mixed @ a, mixed @ b)
    capped, n = diarization.updated_voiceprint(mixed, diarization.VOICEPRINT_CAP, b, 100)
    assert n == diarization.VOICEPRINT_CAP and capped @ b > mixed @ b


# --- through the pipeline -------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_ctx(tmp_path_factory, model_dir):
    ctx = Context.open(make_settings(tmp_path_factory.mktemp("diarize"), model_dir=model_dir))
    yield ctx
    ctx.close()


def process(ctx: Context, path: Path, meta: dict) -> dict:
    result = Ingestor(ctx).ingest_file(path, meta)
    assert jobs.run_job(ctx, result.job, "test") == "processed"
    with ctx.db.session() as session:
        return document(session, session.get(Conversation, result.id))


def with_agent(meta: dict, external_id: str) -> dict:
    meta["sessions"][0]["agent"] = {"external_id": external_id, "name": external_id}
    return meta


@pytest.mark.model
def test_mono_call_gets_agent_and_customer_lines(module_ctx):
    doc = process(
        module_ctx, DEMO_CALLS / "commercial_mono.wav", with_agent(make_meta(mono=True), "AG-C")
    )
    by_role = {
        role: " ".join(s["text"] for s in doc["transcript"]["segments"] if s["speaker"] == role)
        for role in ("agent", "customer")
    }
    assert "certainly, which color" in by_role["agent"].lower()
    assert "i'd like to buy a chromecast" in by_role["customer"].lower()
    assert doc["recording"]["speaker_source"] == "diarization"
    assert doc["metrics"]["speaker_source"] == "diarization"
    speakers = doc["speakers"]
    assert speakers["speakers"] == 2 and speakers["method"] == "phrases"
    assert 0.5 < speakers["confidence"] <= 1


@pytest.mark.model
def test_mixdown_words_match_the_channels_and_voiceprints_are_learnt(module_ctx, tmp_path):
    stereo = process(module_ctx, EN, with_agent(make_meta(), "AG-V"))
    assert stereo["speakers"] is None
    assert stereo["metrics"]["speaker_source"] == "channels"
    with module_ctx.db.session() as session:
        agent = session.scalar(select(Agent).where(Agent.external_id == "AG-V"))
        print_ = session.get(AgentVoiceprint, agent.id)
        assert print_ is not None and len(print_.embedding) == 256 and print_.windows > 20

    mono = process(module_ctx, mixdown(EN, tmp_path), with_agent(make_meta(mono=True), "AG-V"))
    assert mono["speakers"]["method"] == "voiceprint"
    assert speaker_accuracy(doc_words(mono), truth_turns("synthetic_en_stereo")) >= 0.9

    stranger = process(
        module_ctx, mixdown(EN, tmp_path), with_agent(make_meta(mono=True), "AG-NEW")
    )
    assert stranger["speakers"]["method"] == "phrases"
    assert speaker_accuracy(doc_words(stranger), truth_turns("synthetic_en_stereo")) >= 0.9


@pytest.mark.model
def test_swapping_speakers_recomputes_everything_and_is_audited(module_ctx):
    doc = process(module_ctx, DEMO_CALLS / "commercial_mono.wav", make_meta(mono=True))
    waiting = Ingestor(module_ctx).ingest_file(
        FORMATS / "whatstheweatherlike.wav", make_meta(mono=True)
    )
    with module_ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)  # (the answer carries the words)
        sup = auth.add_user(session, "sup", "supervisor", "a long test password")
        sup.queues = session.scalars(select(Queue)).all()
        auth.add_user(session, "marcus", "agent", "a long test password", agent_external_id="AG-1")
        tokens = {name: auth.create_token(session, name, "t") for name in ("sup", "marcus")}
    with TestClient(create_app(module_ctx)) as client:

        def swap(conversation_id: int, who: str):
            return client.post(
                f"/api/v1/conversations/{conversation_id}/swap-speakers",
                headers={"Authorization": f"Bearer {tokens[who]}"},
            )

        refused = swap(doc["id"], "marcus")
        assert refused.status_code == 403
        assert (
            refused.json()["detail"] == "only supervisors and administrators may correct speakers"
        )
        not_yet = swap(waiting.id, "sup")
        assert not_yet.status_code == 409 and "not been processed" in not_yet.json()["detail"]
        assert swap(99999, "sup").status_code == 404
        res = swap(doc["id"], "sup")
    assert res.status_code == 200
    swapped = res.json()
    before, after = doc["metrics"], swapped["metrics"]
    assert after["talk_time_s"]["agent"] == before["talk_time_s"]["customer"]
    assert after["talk_to_listen"]["agent_pct"] == before["talk_to_listen"]["customer_pct"]
    assert after["speaker_source"] == "diarization"
    flipped = {"agent": "customer", "customer": "agent"}
    assert [(flipped[s["speaker"]], s["text"]) for s in doc["transcript"]["segments"]] == [
        (s["speaker"], s["text"]) for s in swapped["transcript"]["segments"]
    ]
    # each line's sentiment is scored again as its new speaker says it (an agent's bare
    # "thank you" is an acknowledgement, a customer's is thanks)
    language = doc["transcript"]["language"]
    for line in swapped["transcript"]["segments"]:
        expected = sentiment.score(line["text"], language, line["speaker"])
        assert (
            line["sentiment"]["score"] == pytest.approx(expected, abs=1e-4)
            or (line["sentiment"]["uncertain"])
        )
    assert swapped["speakers"]["swapped"] is True
    with module_ctx.db.session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "conversation.swap_speakers")
        ).all()
    assert [(e.actor, e.object_id, e.details) for e in events] == [
        ("sup", str(doc["id"]), {"previous_method": "phrases"})
    ]

    again = callscope(module_ctx, "swap-speakers", doc["external_id"])
    assert again.returncode == 0, again.stderr
    assert f"conversation {doc['external_id']}: agent and customer swapped" in again.stdout
    with module_ctx.db.session() as session:
        back = document(session, session.get(Conversation, doc["id"]))
    assert back["metrics"]["talk_time_s"] == doc["metrics"]["talk_time_s"]
    assert back["speakers"]["swapped"] is False
    missing = callscope(module_ctx, "swap-speakers", "NO-SUCH-CALL")
    assert missing.returncode == 1 and "no conversation 'NO-SUCH-CALL'" in missing.stderr


# what agents and customers say: each phrase pattern with a line that should match it
SAID = {
    ("agent", "en"): [
        "Thank you for calling Acme",
        "My name is Daniel, how can I help you",
        "How may I assist you today",
        "Is there anything else I can do",
        "Could I have your account number",
        "Let me check that for you",
        "Would you like a replacement",
        "One moment please",
        "Bear with me",
        "I'm sorry to hear that",
        "Have a great day",
        "Certainly, I can do that",
    ],
    ("agent", "id"): [
        "Terima kasih telah menghubungi kami",
        "Ada yang bisa saya bantu",
        "Dengan Rina, ada yang bisa dibantu",
        "Apakah ada lagi yang bisa saya bantu",
        "Mohon ditunggu sebentar",
        "Boleh saya minta nomornya",
        "Baik bapak",
        "Saya akan cek dulu",
    ],
    ("customer", "en"): [
        "I'd like to cancel my order",
        "I'm calling about my bill",
        "I have a problem with the router",
        "I ordered a speaker last week",
        "Could you help me with this",
        "Where is my package",
        "Thank you so much",
    ],
    ("customer", "id"): [
        "Saya mau melaporkan gangguan",
        "Saya ingin tanya",
        "Kartu saya hilang",
        "Tolong bantu saya",
        "Iya mbak",
    ],
}


@pytest.mark.parametrize("role,language", sorted(SAID))
def test_every_phrase_pattern_matches_what_it_is_for(role, language):
    patterns = (diarization.AGENT_PHRASES if role == "agent" else diarization.CUSTOMER_PHRASES)[
        language
    ]
    said = [diarization.normalised(line) for line in SAID[role, language]]
    for _weight, pattern in patterns:
        assert any(re.search(pattern, line) for line in said), pattern
    sign = 1 if role == "agent" else -1
    for line in SAID[role, language]:
        assert sign * diarization.phrase_score(line, language) > 0, line


def test_an_indonesian_agent_greeting_by_name_is_the_agents():
    assert diarization.phrase_score("Dengan Rina, ada yang bisa dibantu?", "id") > 0
