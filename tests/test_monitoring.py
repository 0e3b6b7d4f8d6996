"""What operators watch: `/metrics` for Prometheus (behind its token, or on a port of its own,
adding up several processes), request ids, and log lines as JSON without personal data."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from callscope import logs
from callscope.context import Context
from callscope.governance import auth, policy
from callscope.processing import jobs
from callscope.processing.ingest import Ingestor
from callscope.web.app import create_app
from tests.support import (
    DEMO_CALLS,
    EXAMPLE_META,
    FORMATS,
    free_port,
    make_meta,
    make_settings,
    settings_env,
)

TOKEN = "metrics-test-token-0123456789"
EN = DEMO_CALLS / "synthetic_en_stereo.wav"
SHORT = FORMATS / "whatstheweatherlike.wav"  # (2.03 s, mono)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def watched(tmp_path, model_dir) -> Iterator[tuple[Context, TestClient]]:
    settings = make_settings(tmp_path, model_dir=model_dir).model_copy(
        update={"metrics_token": TOKEN}
    )
    ctx = Context.open(settings)
    with ctx.db.session() as session:
        auth.add_user(session, "root", "admin", "a long test password")
        token = auth.create_token(session, "root", "t", "ingest")
    with TestClient(create_app(ctx)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield ctx, client
    ctx.close()


def scrape(client: TestClient) -> dict:
    res = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/plain")
    return samples(res.text)


def test_metrics_need_their_token_and_are_off_without_one(watched, client):
    _ctx, api = watched
    assert api.get("/metrics").status_code == 401  # (an API token is not the metrics token)
    wrong = api.get("/metrics", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "the metrics token is required"
    assert client.get("/metrics").status_code == 404  # no token configured: not served at all


def test_jobs_requests_refusals_and_searches_are_counted(watched):
    ctx, api = watched
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)  # (words are searched while on)
    before = scrape(api)
    ids = [Ingestor(ctx).ingest_file(EN, make_meta()).id for _ in range(2)]
    refused = api.post(
        "/api/v1/conversations",
        files={
            "metadata": (None, json.dumps({"external_id": ""}), "application/json"),
            "audio": ("a.wav", EN.read_bytes(), "audio/wav"),
        },
    )
    assert refused.status_code == 422
    assert api.get("/api/v1/conversations", params={"q": "refund"}).status_code == 200
    res = api.get(f"/api/v1/conversations/{ids[0]}/analysis")
    assert res.status_code == 200, res.text
    assert api.get("/no/such/page/4711").status_code == 404
    after = scrape(api)

    assert value(after, "callscope_jobs", kind="process", state="queued") == 2
    assert value(after, "callscope_jobs", kind="process", state="failed") == 0
    assert value(after, "callscope_job_oldest_queued_seconds") >= 0
    grew = lambda name, **labels: value(after, name, **labels) - value(before, name, **labels)  # noqa: E731
    assert grew("callscope_ingest_refusals_total", reason="invalid_metadata") == 1
    assert grew("callscope_search_duration_seconds_count") == 1
    template = "/api/v1/conversations/{conversation_id}/analysis"
    assert grew("callscope_http_requests_total", method="GET", route=template, status="200") == 1
    assert grew("callscope_http_request_duration_seconds_count", method="GET", route=template) == 1
    # a made-up path is counted as "unmatched", never under its own name
    assert grew("callscope_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert not any("4711" in str(labels) for _name, labels in after)


def test_made_up_methods_add_no_series(watched):
    """Anyone can send a request with any method: they are all counted as one "other"."""
    _ctx, api = watched
    api.request("BREW", "/api/v1/conversations")
    scrape(api)
    before = scrape(api)  # (the scrapes' own series are there now)
    for n in range(40):
        api.request(f"BREW{n}", "/api/v1/conversations")
    after = scrape(api)
    assert after.keys() == before.keys()
    assert not any("BREW" in str(labels) for _name, labels in after)
    counted = sum(
        v
        for (name, labels), v in after.items()
        if name == "callscope_http_requests_total" and ("method", "other") in labels
    )
    assert counted == 41


@pytest.mark.model
def test_processing_counts_its_seconds_and_the_audio(watched):
    ctx, api = watched
    result = Ingestor(ctx).ingest_file(SHORT, make_meta(mono=True))
    before = scrape(api)
    assert jobs.run_job(ctx, result.job, "test") == "processed"
    after = scrape(api)
    name = "callscope_job_processing_seconds"
    assert (
        value(after, f"{name}_count", kind="process", outcome="processed")
        - value(before, f"{name}_count", kind="process", outcome="processed")
        == 1
    )
    audio = value(after, "callscope_job_audio_seconds_total", kind="process") - value(
        before, "callscope_job_audio_seconds_total", kind="process"
    )
    assert audio == pytest.approx(2.03, abs=0.01)  # the recording's length
    assert value(after, "callscope_jobs", kind="process", state="processed") == 1
    waited = value(after, "callscope_job_queue_wait_seconds_count", kind="process") - value(
        before, "callscope_job_queue_wait_seconds_count", kind="process"
    )
    assert waited == 1


def test_a_request_id_is_kept_when_fair_and_made_when_not(client):
    fair = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42"})
    assert fair.headers["x-request-id"] == "lb-7f3a.42"
    for unfair in ("", "a" * 65, "two words", "<script>"):
        made = client.get("/healthz", headers={"X-Request-ID": unfair}).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The log lines of the test as JSON, in a buffer; the logging setup is restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    logs.configure("json", "DEBUG", stream)
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


def lines_of(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]  # each is one object


@pytest.mark.model
def test_json_logs_carry_ids_and_no_personal_data(watched, json_log):
    ctx, api = watched
    with ctx.db.session() as session:
        policy.set_value(session, "recordings.enabled", True)
    result = Ingestor(ctx).ingest_file(EN, make_meta())
    assert jobs.run_job(ctx, result.job, "test") == "processed"
    doc = api.get(f"/api/v1/conversations/{result.id}/analysis").json()
    words = [w["text"] for s in doc["transcript"]["segments"] for w in s["words"]]
    assert len(words) > 30
    query = " ".join(words[5:7])
    assert api.get("/api/v1/conversations", params={"q": query}).status_code == 200
    api.get(f"/api/v1/conversations/{result.id}/transcript.html")
    api.get(f"/api/v1/conversations/{result.id}/audio")
    refused = api.post(
        "/api/v1/conversations",
        files={
            "metadata": (None, json.dumps(make_meta(started_at="yesterday")), "text/plain"),
            "audio": ("Helen Brooks complaint.wav", EN.read_bytes(), "audio/wav"),
        },
    )
    assert refused.status_code == 422
    api.get("/no/such/page")
    with pytest.raises(RuntimeError):  # (a failing job logs its traceback)
        with logs.bound(job_id=999):
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                logging.getLogger("callscope.test").exception("a failure")
                raise

    # (the test's HTTP client logs the URLs it asks for; callscope's lines are the rest)
    found = [e for e in lines_of(json_log) if not e["logger"].startswith("httpx")]
    text = "\n".join(json.dumps(e, ensure_ascii=False) for e in found)
    access = [e for e in found if e["logger"] == "callscope.access"]
    assert len(access) >= 5
    assert all(re.fullmatch(r"[0-9a-f]{32}", e["request_id"]) for e in access)
    assert all(e["duration_ms"] >= 0 for e in access)
    assert all(e["user_id"] == 1 for e in access if e["route"] != "unmatched")
    assert {e["route"] for e in access} >= {
        "/api/v1/conversations",
        "/api/v1/conversations/{conversation_id}/analysis",
        "unmatched",
    }
    job_lines = [e for e in found if e.get("job_id") == result.job]
    assert job_lines and all(e["conversation_id"] == result.id for e in job_lines)
    assert any(e.get("error", "").startswith("Traceback") for e in found)

    customer, agent = EXAMPLE_META["customer"], EXAMPLE_META["sessions"][0]["agent"]
    for secret in (customer["name"], customer["phone"], customer["email"], agent["name"]):
        assert secret not in text
    assert query not in text and "q=" not in text
    lowered = text.lower()
    clean = [re.sub(r"[^\w']", "", w).lower() for w in words]
    runs = {" ".join(clean[i : i + 3]) for i in range(len(clean) - 2)}
    assert not [run for run in runs if run in lowered]  # no three words of the call in a row


def test_text_logs_are_the_default_and_name_the_ids(json_log):
    stream = io.StringIO()
    logs.configure("text", "INFO", stream)
    with logs.bound(request_id="r1", user_id=7):
        logging.getLogger("callscope.test").info("hello %s", "there")
    line = stream.getvalue().strip()
    assert line.endswith("callscope.test: hello there [request_id=r1 user_id=7]")


def test_workers_in_other_processes_are_added_up(tmp_path, model_dir):
    """Multiprocess mode: a `callscope` process counts into the shared folder, and the
    server's /metrics and its metrics port (no token there) both add it in."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    settings = make_settings(tmp_path / "data", model_dir=model_dir).model_copy(
        update={"metrics_token": TOKEN}
    )
    ctx = Context.open(settings)
    ctx.close()
    env = {
        **os.environ,
        **settings_env(settings),
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
        "CALLSCOPE_METRICS_TOKEN": TOKEN,
    }
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(make_meta(started_at="yesterday")))
    refused = subprocess.run(
        [sys.executable, "-m", "callscope", "ingest", str(EN), "--meta", str(meta)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1 and "started_at" in refused.stderr
    port, metrics_port = free_port(), free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "callscope", "serve", "--no-worker", "--port", str(port)],
        env={**env, "CALLSCOPE_METRICS_PORT": str(metrics_port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5) as res:  # noqa: S310 (local)
                    text = res.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline, server.stderr.read() if server.poll() else ""
                time.sleep(0.3)
        plain = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(plain, timeout=5) as res:
            on_port = res.read().decode()
        # the refusal was counted by the CLI process and is seen by the server's /metrics
        for exposed in (text, on_port):
            found = samples(exposed)
            assert value(found, "callscope_ingest_refusals_total", reason="invalid_metadata") == 1
            assert value(found, "callscope_jobs", kind="process", state="queued") == 0
    finally:
        server.terminate()
        server.wait(timeout=30)
