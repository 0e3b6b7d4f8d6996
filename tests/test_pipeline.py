"""Processing with the real speech model: transcript, attribution, sentiment, metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from callscope.context import Context
from callscope.db.models import Conversation, ConversationAnalysis, Segment, Word
from callscope.governance import admin
from callscope.governance.audit import Actor
from callscope.ops import checks
from callscope.processing import jobs, results
from callscope.processing.ingest import Ingestor
from callscope.review.document import document, document_json, html_safe_json, transcript_segments
from callscope.speech import asr
from tests.evaluation import doc_words, speaker_accuracy, truth_turns
from tests.lines import REAL_CALLS, Line, on_line, real_call
from tests.support import DEMO_CALLS, make_meta, make_settings

pytestmark = pytest.mark.model

EN = DEMO_CALLS / "synthetic_en_stereo.wav"


def process(ctx: Context, path: Path, meta: dict) -> dict:
    result = Ingestor(ctx).ingest_file(path, meta)
    assert jobs.run_job(ctx, result.job, "test") == "processed"
    with ctx.db.session() as session:
        return document(session, session.get(Conversation, result.id))


@pytest.fixture(scope="module")
def module_ctx(tmp_path_factory, model_dir):
    ctx = Context.open(make_settings(tmp_path_factory.mktemp("pipeline"), model_dir=model_dir))
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def english(module_ctx):
    meta = make_meta()
    meta["sessions"] = [
        {
            "agent": {"external_id": "AG-1", "name": "Daniel Reyes"},
            "role": "primary",
            "started_at": "2026-11-20T14:00:00Z",
            "ended_at": "2026-11-20T14:01:30Z",
        },
        {
            "agent": {"external_id": "AG-7", "name": "Priya Shah"},
            "role": "transfer",
            "started_at": "2026-11-20T14:01:30Z",
            "ended_at": "2026-11-20T14:02:43Z",
        },
    ]
    return process(module_ctx, EN, meta)


def test_processed_document_has_every_section(english):
    assert english["status"] == "processed"
    assert english["transcript"]["language"] == "en"
    seg = english["transcript"]["segments"][0]
    assert set(seg) == {"speaker", "agent", "start_s", "end_s", "text", "sentiment", "words"}
    assert set(seg["words"][0]) == {"text", "start_s", "end_s", "confidence"}
    assert set(english["sentiment"]) >= {"overall", "agent", "customer", "quarters", "trend"}
    assert set(english["metrics"]) >= {
        "talk_time_s",
        "talking_speed_wpm",
        "talk_to_listen",
        "switches",
        "average_pause_s",
        "agent_response_pause_s",
        "longest_customer_monologue",
        "non_talk",
        "interruptions",
    }


def test_transcript_follows_the_call(english):
    text = " ".join(s["text"] for s in english["transcript"]["segments"]).lower()
    for phrase in (
        "thank you for calling",
        "my name is daniel",
        "order number",
        "replacement",
        "tracking number",
    ):
        assert phrase in text


def test_words_are_attributed_to_the_right_speaker(english):
    assert speaker_accuracy(doc_words(english), truth_turns("synthetic_en_stereo")) >= 0.98


def test_metrics_are_close_to_the_truth(english):
    m = english["metrics"]
    assert m["switches"]["count"] == 26
    assert m["longest_customer_monologue"]["duration_s"] == pytest.approx(26.56, abs=1.0)
    assert m["talk_time_s"]["customer"] == pytest.approx(58.1, rel=0.08)


def test_agent_segments_name_the_agent_of_their_session(english):
    agents = {
        (s["agent"], s["start_s"] < 90)
        for s in english["transcript"]["segments"]
        if s["speaker"] == "agent"
    }
    assert agents == {("Daniel Reyes", True), ("Priya Shah", False)}
    assert all(
        s["agent"] is None for s in english["transcript"]["segments"] if s["speaker"] == "customer"
    )


def test_sentiment_is_scored_per_segment_and_overall(english):
    lines = english["transcript"]["segments"]
    assert {s["sentiment"]["label"] for s in lines} - {None} == {"positive", "neutral", "negative"}
    unsure = [s for s in lines if s["sentiment"]["uncertain"]]  # (no face: the page says why)
    # (a line the classifier reads right no more often than wrong is unsure; a few are)
    assert len(unsure) <= 0.15 * len(lines), [s["text"] for s in unsure]
    assert all(s["sentiment"]["label"] is None and s["sentiment"]["score"] is None for s in unsure)
    thanks = next(s for s in english["transcript"]["segments"] if "appreciate" in s["text"])
    assert thanks["sentiment"]["label"] == "positive" and thanks["sentiment"]["score"] > 0.3
    assert english["sentiment"]["overall"]["label"] in ("positive", "neutral", "negative")
    assert len(english["sentiment"]["quarters"]) == 4


def test_processing_again_gives_the_same_rows(module_ctx, english):
    with module_ctx.db.session() as session:
        segments_before = session.scalar(select(func.count()).select_from(Segment))
        words_before = session.scalar(select(func.count()).select_from(Word))
        job_id = session.scalar(select(Conversation.id).where(Conversation.id == english["id"]))
    from callscope.processing import pipeline

    pipeline.process(module_ctx, job_id, lambda p, s: None)
    with module_ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Segment)) == segments_before
        assert session.scalar(select(func.count()).select_from(Word)) == words_before
        again = document(session, session.get(Conversation, english["id"]))
    assert again["transcript"] == english["transcript"]
    assert again["metrics"] == english["metrics"]


def test_stored_transcript_matches_the_rows_and_the_json_document(module_ctx, english):
    with module_ctx.db.session() as session:
        conv = session.get(Conversation, english["id"])
        stored = session.get(ConversationAnalysis, conv.id).transcript
        assert json.loads(stored) == transcript_segments(session, conv.id)
        assert json.loads(document_json(session, conv)) == document(session, conv)
        # conversations processed before the transcript was stored read it from the rows
        session.get(ConversationAnalysis, conv.id).transcript = None
        session.flush()
        assert document(session, conv) == english
        session.get(ConversationAnalysis, conv.id).transcript = stored


def test_a_queues_vocabulary_spells_its_names_in_the_transcript(module_ctx):
    with module_ctx.db.session() as session:
        admin.set_vocabulary(session, Actor.cli(), "Northwind line", "Northwind Electronics")
    meta = make_meta()
    meta["queue"] = "Northwind line"
    doc = process(module_ctx, EN, meta)
    text = " ".join(s["text"] for s in doc["transcript"]["segments"])
    # the greeting and the goodbye name the company; the recogniser alone writes "North Wind"
    assert text.count("Northwind Electronics") == 2, text
    assert "north wind" not in text.lower()


def test_indonesian_call_language_is_detected(module_ctx):
    meta = make_meta()
    del meta["recording"]["language"]
    doc = process(module_ctx, DEMO_CALLS / "synthetic_id_stereo.wav", meta)
    assert doc["transcript"]["language"] == "id"
    warned = [w["code"] for w in doc["recording"]["warnings"]] == ["low_confidence"]
    assert warned == (doc["transcript"]["confidence"] < 0.6)
    text = " ".join(s["text"] for s in doc["transcript"]["segments"]).lower()
    assert "selamat" in text and "sama" in text
    assert speaker_accuracy(doc_words(doc), truth_turns("synthetic_id_stereo")) >= 0.98


def test_stored_transcript_json_is_inert_inside_a_script_element():
    text = html_safe_json([{"text": "</script><img src=x onerror=alert(1)> & ☺ \u2028"}])
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == [{"text": "</script><img src=x onerror=alert(1)> & ☺ \u2028"}]


def test_a_call_whose_channels_carry_each_other_loudly_says_so(module_ctx, tmp_path):
    """Crosstalk 3 dB below each voice cannot be told fully from it: the call still gets its
    transcript and metrics, with a warning that stays when the speakers are swapped."""
    path = on_line(real_call(REAL_CALLS[0]), Line(-3, 20), tmp_path / "loud.wav")
    doc = process(module_ctx, path, make_meta())
    assert [w["code"] for w in doc["recording"]["warnings"]] == ["crosstalk"]
    assert "other side's voice" in doc["recording"]["warnings"][0]["message"]
    assert {s["speaker"] for s in doc["transcript"]["segments"]} == {"agent", "customer"}
    assert doc["metrics"]["talk_time_s"]["customer"] > 0
    with module_ctx.db.session() as session:
        results.swap_speakers(session, doc["id"], Actor.cli())
    with module_ctx.db.session() as session:
        again = document(session, session.get(Conversation, doc["id"]))
    assert "crosstalk" in [w["code"] for w in again["recording"]["warnings"]]


def test_a_language_can_have_a_speech_model_of_its_own(tmp_path, model_dir):
    """CALLSCOPE_ASR_MODEL_ID names the model of Indonesian calls (here a second copy of the
    bundled one, in a folder of its own); English calls keep the default. Each call's
    document names the model that heard it, and doctor says which model serves which
    language, with its digest."""
    bundled = asr.resolve_model("base", model_dir)
    own = tmp_path / "whisper-for-indonesian"
    shutil.copytree(bundled, own)
    ctx = Context.open(make_settings(tmp_path / "d", model_dir=model_dir, asr_model_id=str(own)))
    try:
        indonesian = make_meta()
        indonesian["recording"]["language"] = "id"
        doc = process(ctx, DEMO_CALLS / "synthetic_id_stereo.wav", indonesian)
        assert doc["transcript"]["model"] == str(own)
        assert "selamat" in " ".join(s["text"] for s in doc["transcript"]["segments"]).lower()
        english = make_meta()
        english["recording"]["language"] = "en"
        assert process(ctx, real_call(REAL_CALLS[0]), english)["transcript"]["model"] == "base"
        found = checks.speech_model(ctx)
        assert "detection, en: 'base' assembled, SHA-256 905e5bf8336b… as pinned" in found
        assert f"id: {own} (a model of your own), SHA-256 905e5bf8336b…" in found
    finally:
        ctx.close()
