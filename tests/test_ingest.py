"""Ingest through the domain: what is accepted, what is refused, and that refusals store nothing."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from callscope.context import Context
from callscope.db.models import Agent, Contact, Conversation, Job, Recording
from callscope.errors import Conflict, TooLarge
from callscope.governance import policy
from callscope.processing.ingest import ConsentMissing, Ingestor, InvalidAudio
from callscope.processing.metadata import InvalidMetadata, parse_metadata
from tests.support import DEMO_CALLS, FORMATS, READABLE, make_meta, tone, write_wav

STEREO = DEMO_CALLS / "synthetic_en_stereo.wav"
MONO = FORMATS / "whatstheweatherlike.wav"


@pytest.mark.parametrize(
    "path,container,codec,duration,channels,rate", READABLE, ids=[r[0].name for r in READABLE]
)
def test_ingests_every_readable_file(
    ctx: Context, path, container, codec, duration, channels, rate
):
    result = Ingestor(ctx).ingest_file(path, make_meta(mono=channels == 1))
    assert result.created and result.status == "queued" and result.job
    with ctx.db.session() as session:
        rec = session.scalar(select(Recording).where(Recording.conversation_id == result.id))
        assert (rec.channels, rec.sample_rate, rec.codec) == (channels, rate, codec)
        assert rec.duration_s == pytest.approx(duration, abs=0.01)
        assert ctx.store.exists(rec.playback_key) and ctx.store.exists(rec.peaks_key)
        assert session.get(Job, result.job).status == "queued"


def test_ingest_stores_the_metadata_of_the_spec_example(ctx: Context):
    result = Ingestor(ctx).ingest_file(STEREO, make_meta(external_id="CONV-1001"))
    with ctx.db.session() as session:
        conv = session.get(Conversation, result.id)
        assert conv.external_id == "CONV-1001"
        assert conv.contact.name == "Helen Brooks"
        assert conv.primary_agent.name == "Marcus Lee"
        assert [s.name for s in conv.primary_agent.skills] == ["english", "internet"]
        assert conv.queue.name == "Internet support"
        assert conv.workstream.name == "Voice - Support"
        assert conv.regarding_url == "https://crm.example.com/cases/77"
        assert conv.consent_status == "granted" and conv.consent_method == "ivr_announcement"
        assert (conv.ended_at - conv.started_at).total_seconds() == 300
        assert conv.recording.channel_map == {"0": "agent", "1": "customer"}


def test_times_with_other_zones_are_stored_as_the_same_instant(ctx: Context):
    meta = make_meta(started_at="2026-11-20T21:00:00+07:00")
    meta["sessions"][0]["started_at"] = "2026-11-20T21:00:00+07:00"
    meta["sessions"][0]["ended_at"] = "2026-11-20T21:01:00+07:00"
    result = Ingestor(ctx).ingest_file(STEREO, meta)
    with ctx.db.session() as session:
        conv = session.get(Conversation, result.id)
        assert conv.started_at.isoformat() == "2026-11-20T14:00:00+00:00"


# --- refusals: each names its problem and stores nothing -----------------------------------


def _refused(ctx: Context, path: Path, meta, error, match: str, nothing) -> None:
    with pytest.raises(error, match=match):
        Ingestor(ctx).ingest_file(path, meta)
    nothing()


def test_refuses_headerless_wav(ctx, assert_nothing_stored):
    _refused(
        ctx,
        FORMATS / "ingestion-client_missing_wav_header.wav",
        make_meta(mono=True),
        InvalidAudio,
        "no RIFF header",
        assert_nothing_stored,
    )


def test_refuses_truncated_file(ctx, tmp_path, assert_nothing_stored):
    cut = tmp_path / "cut.wav"
    cut.write_bytes(STEREO.read_bytes()[:200_000])
    _refused(ctx, cut, make_meta(), InvalidAudio, "truncated", assert_nothing_stored)


def test_refuses_zero_length_file(ctx, tmp_path, assert_nothing_stored):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    _refused(ctx, empty, make_meta(), InvalidAudio, "empty", assert_nothing_stored)


def test_refuses_silent_audio(ctx, tmp_path, assert_nothing_stored):
    silent = write_wav(tmp_path / "silent.wav", [[0.0] * 8000, [0.0] * 8000])
    _refused(ctx, silent, make_meta(), InvalidAudio, "silent", assert_nothing_stored)


def test_refuses_upload_over_the_cap(tmp_path, assert_nothing_stored, ctx):
    small = Context.open(ctx.settings.model_copy(update={"max_upload_mb": 1}))
    try:
        _refused(
            small,
            STEREO,
            make_meta(),
            TooLarge,
            "larger than the upload limit of 1 MiB",
            assert_nothing_stored,
        )
    finally:
        small.close()


def test_refuses_channel_map_naming_a_missing_channel(ctx, assert_nothing_stored):
    _refused(
        ctx,
        MONO,
        make_meta(),
        InvalidAudio,
        "names channel 1 but the audio has only 1 channel",
        assert_nothing_stored,
    )


@pytest.mark.parametrize(
    "change,match",
    [
        ({"external_id": None}, r"metadata\.external_id: Input should be a valid string"),
        ({"sessions": []}, r"metadata\.sessions: List should have at least 1 item"),
        ({"started_at": "yesterday"}, r"metadata\.started_at: Input should be a valid datetime"),
        (
            {"started_at": "2026-11-20T14:00:00"},
            r"metadata\.started_at: Input should have timezone",
        ),
        ({"consent": {"status": "maybe"}}, r"metadata\.consent\.status: Input should be 'granted'"),
        ({"recording": {"language": "xx"}}, r"metadata\.recording\.language: unsupported language"),
        (
            {"recording": {"channels": {"left": "agent"}}},
            r"metadata\.recording\.channels: channel 'left' is not a channel number",
        ),
        ({"recording": {"channels": {"0": "robot"}}}, r"metadata\.recording\.channels\.0: Input"),
        (
            {"regarding": {"url": "javascript:alert(1)"}},
            r"metadata\.regarding\.url: must be an http",
        ),
    ],
)
def test_refuses_malformed_metadata_naming_the_field(ctx, change, match, assert_nothing_stored):
    _refused(ctx, STEREO, make_meta(**change), InvalidMetadata, match, assert_nothing_stored)


def test_missing_agent_id_is_named_with_its_path(ctx, assert_nothing_stored):
    meta = make_meta()
    del meta["sessions"][0]["agent"]["external_id"]
    _refused(
        ctx,
        STEREO,
        meta,
        InvalidMetadata,
        r"metadata\.sessions\[0\]\.agent\.external_id is missing",
        assert_nothing_stored,
    )


def test_missing_external_id_is_named(ctx, assert_nothing_stored):
    meta = make_meta()
    del meta["external_id"]
    _refused(
        ctx,
        STEREO,
        meta,
        InvalidMetadata,
        r"metadata\.external_id is missing",
        assert_nothing_stored,
    )


def test_session_ending_before_it_starts_is_refused(ctx, assert_nothing_stored):
    meta = make_meta()
    meta["sessions"][0]["ended_at"] = "2026-11-20T13:00:00Z"
    _refused(
        ctx,
        STEREO,
        meta,
        InvalidMetadata,
        r"metadata\.sessions\[0\]\.ended_at is before its started_at",
        assert_nothing_stored,
    )


@pytest.mark.parametrize(
    "raw,match",
    [
        (b"{not json", "metadata is not valid JSON"),
        (b"[1, 2]", "metadata must be a JSON object"),
        (b"\xff\xfe", "metadata is not valid JSON"),
    ],
)
def test_refuses_metadata_that_is_not_a_json_object(raw, match):
    with pytest.raises(InvalidMetadata, match=match):
        parse_metadata(raw)


@pytest.mark.parametrize("status", ["declined", "unknown"])
def test_refuses_call_without_consent_when_consent_is_required(ctx, status, assert_nothing_stored):
    with ctx.db.session() as session:
        policy.set_value(session, "consent.required", True)
    meta = make_meta(consent={"status": status})
    _refused(
        ctx,
        STEREO,
        meta,
        ConsentMissing,
        f"consent is required but .* is '{status}'",
        assert_nothing_stored,
    )


@pytest.mark.parametrize("status", ["granted", "not_required"])
def test_accepts_consented_call_when_consent_is_required(ctx, status):
    with ctx.db.session() as session:
        policy.set_value(session, "consent.required", True)
    assert Ingestor(ctx).ingest_file(STEREO, make_meta(consent={"status": status})).created


def test_declined_consent_is_stored_when_not_required(ctx):
    result = Ingestor(ctx).ingest_file(STEREO, make_meta(consent={"status": "declined"}))
    with ctx.db.session() as session:
        assert session.get(Conversation, result.id).consent_status == "declined"


# --- idempotency -----------------------------------------------------------------------------


def test_same_external_id_and_audio_returns_the_existing_conversation(ctx):
    meta = make_meta()
    first = Ingestor(ctx).ingest_file(STEREO, meta)
    again = Ingestor(ctx).ingest_file(STEREO, meta)
    assert (again.id, again.job, again.created) == (first.id, first.job, False)
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Conversation)) == 1
        assert session.scalar(select(func.count()).select_from(Job)) == 1


def test_same_external_id_with_other_audio_is_a_conflict(ctx):
    meta = make_meta()
    Ingestor(ctx).ingest_file(STEREO, meta)
    files_before = sorted(ctx.settings.media_dir.rglob("*"))
    with pytest.raises(Conflict, match="already exists with different audio"):
        Ingestor(ctx).ingest_file(DEMO_CALLS / "synthetic_id_stereo.wav", meta)
    assert sorted(ctx.settings.media_dir.rglob("*")) == files_before


def test_concurrent_ingests_of_one_call_make_one_conversation(ctx):
    meta = make_meta()
    results, errors = [], []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        try:
            results.append(Ingestor(ctx).ingest_file(STEREO, json.dumps(meta)))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({r.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Conversation)) == 1
        assert session.scalar(select(func.count()).select_from(Recording)) == 1
        assert session.scalar(select(func.count()).select_from(Contact)) == 1
        assert session.scalar(select(func.count()).select_from(Agent)) == 1


def test_concurrent_ingests_of_different_calls_share_new_agent_and_contact(ctx, tmp_path):
    files = [
        write_wav(tmp_path / f"{i}.wav", [tone(1.0, 300 + i * 50), tone(1.0, 200)])
        for i in range(4)
    ]
    errors = []
    barrier = threading.Barrier(4)

    def run(path: Path) -> None:
        barrier.wait()
        try:
            Ingestor(ctx).ingest_file(path, make_meta())
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Conversation)) == 4
        assert session.scalar(select(func.count()).select_from(Agent)) == 1
        assert session.scalar(select(func.count()).select_from(Contact)) == 1


def test_unknown_agent_is_created_as_agent_record(ctx):
    meta = make_meta()
    meta["sessions"].append(
        {
            "agent": {"external_id": "AG-9", "name": "Pat Doe"},
            "role": "transfer",
            "started_at": "2026-11-20T14:03:00Z",
        }
    )
    result = Ingestor(ctx).ingest_file(STEREO, meta)
    with ctx.db.session() as session:
        conv = session.get(Conversation, result.id)
        assert [(s.agent.external_id, s.role) for s in conv.sessions] == [
            ("AG-1", "primary"),
            ("AG-9", "transfer"),
        ]
