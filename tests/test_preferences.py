"""Each user's language and time zone: their own choice, else the browser's, else the site's;
every time shown says its zone."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from callscope.context import Context
from callscope.db.models import User
from callscope.governance import auth, policy
from callscope.processing.ingest import Ingestor
from tests.support import FORMATS, PASSWORD, make_meta, plant_transcript, sign_in

# the example call starts at 2026-11-20 14:00 UTC
AT_UTC = "Nov 20, 2026, 2:00:00\u202fPM UTC"
AT_JAKARTA = "Nov 20, 2026, 9:00:00\u202fPM UTC+07:00"
AT_MAKASSAR = "Nov 20, 2026, 10:00:00\u202fPM UTC+08:00"


@pytest.fixture
def call(ctx: Context) -> int:
    with ctx.db.session() as session:
        auth.add_user(session, "sri", "admin", PASSWORD)
        policy.set_value(session, "recordings.enabled", True)
    conv = Ingestor(ctx).ingest_file(FORMATS / "whatstheweatherlike.wav", make_meta(mono=True))
    plant_transcript(ctx, conv.id, "Selamat pagi, ada yang bisa saya bantu?")
    return conv.id


def started(client: TestClient, call: int) -> str:
    page = client.get(f"/conversations/{call}").text
    return re.search(r"<dt>Started</dt><dd>([^<]+)</dd>", page).group(1)


def test_times_follow_the_users_zone_else_the_browsers_else_the_sites(
    client: TestClient, call: int
):
    csrf = sign_in(client, "sri")
    assert started(client, call) == AT_UTC  # the site's zone (CALLSCOPE_TIMEZONE: UTC)
    client.cookies.set("tz", "Asia/Jakarta")  # what the pages' script reports of the browser
    assert started(client, call) == AT_JAKARTA
    form = client.get("/preferences").text
    assert "(Asia/Jakarta)</option>" in form
    res = client.post(
        "/preferences", data={"csrf_token": csrf, "language": "", "time_zone": "Asia/Makassar"}
    )
    assert res.status_code == 200 and "Preferences saved." in res.text
    assert started(client, call) == AT_MAKASSAR  # the user's choice wins over the browser
    client.cookies.set("tz", "Mars/Olympus_Mons")  # a zone nobody knows is ignored
    client.post("/preferences", data={"csrf_token": csrf, "time_zone": ""})
    assert started(client, call) == AT_UTC


def test_an_unknown_zone_is_refused_and_nothing_changes(ctx: Context, client: TestClient, call):
    csrf = sign_in(client, "sri")
    client.post("/preferences", data={"csrf_token": csrf, "time_zone": "Asia/Jakarta"})
    res = client.post("/preferences", data={"csrf_token": csrf, "time_zone": "Asia/Atlantis"})
    assert res.status_code == 422
    assert "unknown time zone &#39;Asia/Atlantis&#39;" in res.text and "<html" in res.text
    with ctx.db.session() as session:
        assert session.query(User).filter_by(username="sri").one().time_zone == "Asia/Jakarta"


def test_the_downloaded_transcript_is_in_the_users_language_and_zone(client: TestClient, call):
    csrf = sign_in(client, "sri")
    client.post(
        "/preferences", data={"csrf_token": csrf, "language": "id", "time_zone": "Asia/Jakarta"}
    )
    page = client.get(f"/api/v1/conversations/{call}/transcript.html").text
    assert '<html lang="id">' in page
    assert "<h1>Transkrip " in page
    assert "20 Nov 2026 21.00.00 WIB" in page
    assert "2026-11-20T14:00" not in page
