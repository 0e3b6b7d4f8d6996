"""The review pages in a real browser (Debian's Chromium, driven by Playwright) against a real
`callscope serve` on a processed stereo call."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy import select

from callscope.context import Context
from callscope.db.models import AuditEvent, Conversation, LiveCall, LiveLine, User
from callscope.governance import auth, policy
from callscope.governance.audit import Actor
from callscope.processing import jobs, live
from callscope.processing.ingest import Ingestor
from callscope.processing.streams import Opened
from callscope.review import categories, comments, evaluations
from tests.support import (
    CHROMIUM,
    DEMO_CALLS,
    FORMATS,
    PAYLOAD,
    hostile_meta,
    launch_chromium,
    make_meta,
    make_settings,
    plant_transcript,
    serving,
)

pytestmark = pytest.mark.browser

PASSWORD = "a long test password"


def recent_meta(**changes) -> dict:
    """The example metadata, its call placed two days ago (the dashboard shows 30 days)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    meta = make_meta(started_at=start.isoformat(), **changes)
    meta["sessions"][0].update(
        started_at=start.isoformat(), ended_at=(start + timedelta(minutes=5)).isoformat()
    )
    return meta


def live_call(ctx: Context) -> int:
    """A live call of Marcus's going on, with lines heard (final and partial) and an alert."""
    with ctx.db.session() as session:
        token = auth.create_token(session, "boss", "pbx", "ingest")
    meta = {**recent_meta(), "external_id": "PBX-LIVE-1"}
    opened = Opened("site-live", meta, 2, 8000, {0: "agent", 1: "customer"}, token)
    call = live.Hub(ctx).open("generic", opened, None)
    heard = [  # channel, utterance, speaker, start, end, text, final, sentiment, alert
        (0, 0, "agent", 0.5, 4.0, "Thank you for calling, this is Marcus.", True, 0.4, None),
        (1, 0, "customer", 5.0, 9.0, "My speaker arrived damaged, I am disappointed.", True, -0.6,
         None),
        (-1, 1, "customer", 5.0, 9.0, "damaged", True, None, "Damaged goods"),
        (0, 1, "agent", 10.0, 12.0, "I am sorry to hear that, let me", False, None, None),
    ]  # fmt: skip
    with ctx.db.session() as session:
        row = session.get(LiveCall, call.id)
        for revision, line in enumerate(heard, 1):
            channel, utterance, speaker, start, end, text, final, sentiment, alert = line
            session.add(
                LiveLine(live_call_id=call.id, channel=channel, utterance=utterance,
                         speaker=speaker, start_s=start, end_s=end, text=text, final=final,
                         sentiment=sentiment, alert=alert, revision=revision)
            )  # fmt: skip
        row.revision, row.alerts, row.customer_sentiment = len(heard), 1, -0.6
    return call.id


@pytest.fixture(scope="module")
def site(tmp_path_factory, model_dir):
    data = tmp_path_factory.mktemp("site")
    ctx = Context.open(make_settings(data, model_dir=model_dir))
    with ctx.db.session() as session:
        auth.add_user(session, "boss", "admin", PASSWORD)
        auth.add_user(session, "marcus", "agent", PASSWORD, agent_external_id="AG-1")
        auth.add_user(session, "other", "agent", PASSWORD, agent_external_id="AG-2")
        policy.set_value(session, "recordings.enabled", True)
        categories.add(session, Actor.cli(), "Damaged goods", {"phrases": ["damage*"]})
        evaluations.import_form(session, Actor.cli(), EVALUATION_FORM)
    result = Ingestor(ctx).ingest_file(DEMO_CALLS / "synthetic_en_stereo.wav", recent_meta())
    assert jobs.run_job(ctx, result.job, "test") == "processed"
    with ctx.db.session() as session:  # (every page is checked with a comment and a category)
        comments.add(session, Actor.cli(), result.id, 30.0, "Asked for the order number first")
    live_id = live_call(ctx)
    with serving(ctx.settings, data / "server.log") as base:
        yield {"base": base, "ctx": ctx, "id": result.id, "live_id": live_id}
    ctx.close()


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "the test command installs Debian's chromium"
    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


def signed_in(browser, site, user: str = "boss", **options) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, **options)
    page.goto(site["base"] + "/conversations")
    expect(page).to_have_url(re.compile(r"/login\?next=/conversations"))
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/conversations$"))
    return page


def open_details(page: Page, site) -> None:
    page.goto(f"{site['base']}/conversations/{site['id']}#details")
    expect(page.locator("#details")).to_be_visible()
    page.wait_for_function("document.querySelector('#audio').readyState >= 1")


def current_time(page: Page) -> float:
    return page.evaluate("document.querySelector('#audio').currentTime")


def test_wrong_password_is_refused(browser, site):
    page = browser.new_page()
    page.goto(site["base"] + "/login")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", "not it")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    page.close()


def test_list_shows_the_call_and_filters(browser, site):
    page = signed_in(browser, site)
    expect(page.locator("table.list tbody .trend")).to_have_count(1)  # the customer's trend
    row = page.locator("table.list tbody tr").first
    expect(row).to_contain_text("Marcus Lee")
    expect(row).to_contain_text("Helen Brooks")
    expect(row).to_contain_text("5:00")
    page.select_option("select[name=sentiment]", "negative")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.list tbody")).to_contain_text("No conversations match.")
    page.close()


def test_searching_transcripts_shows_the_passage(browser, site):
    page = signed_in(browser, site)
    page.get_by_label("Search transcripts").fill('"wireless speaker"')
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("p.count")).to_have_text("1 conversation")
    snippet = page.locator("tr.snippet")
    expect(snippet.locator("mark")).to_have_text(["wireless", "speaker"])
    page.get_by_label("Search transcripts").fill("zeppelin")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.list tbody")).to_contain_text("No conversations match.")
    page.close()


def test_player_buttons_move_the_audio(browser, site):
    page = signed_in(browser, site)
    open_details(page, site)
    page.get_by_role("button", name="Forward 30 seconds").click()
    assert current_time(page) == pytest.approx(30, abs=0.01)
    page.get_by_role("button", name="Rewind 10 seconds").click()
    assert current_time(page) == pytest.approx(20, abs=0.01)
    page.get_by_role("combobox", name="Speed").select_option("1.5")
    assert page.evaluate("document.querySelector('#audio').playbackRate") == 1.5
    page.get_by_role("slider", name="Volume").fill("0.4")
    assert page.evaluate("document.querySelector('#audio').volume") == pytest.approx(0.4)
    page.locator("h1").click()  # keys on the page, not in the volume slider
    page.keyboard.press("ArrowRight")
    assert current_time(page) == pytest.approx(50, abs=0.01)
    page.keyboard.press("ArrowLeft")
    assert current_time(page) == pytest.approx(40, abs=0.01)
    page.keyboard.press("Space")
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    assert page.evaluate("document.querySelector('#audio').paused") is False
    page.keyboard.press("Space")
    expect(page.get_by_role("button", name="Play")).to_be_visible()
    page.close()


def test_clicking_a_line_seeks_and_seeking_highlights_the_line(browser, site):
    page = signed_in(browser, site)
    open_details(page, site)
    line = page.locator("#transcript .line").nth(5)
    start = float(line.get_attribute("data-start"))
    line.click()
    assert current_time(page) == pytest.approx(start, abs=0.01)
    expect(line).to_have_attribute("aria-current", "true")
    page.get_by_role("button", name="Forward 30 seconds").click()
    expected = page.locator("#transcript .line").evaluate_all(
        "(ls) => ls.filter((l) => Number(l.dataset.start) <= "
        "document.querySelector('#audio').currentTime + 0.05).pop().dataset.start"
    )
    current = page.locator("#transcript .line[aria-current=true]")
    expect(current).to_have_count(1)
    assert current.get_attribute("data-start") == expected
    assert float(expected) > start
    page.close()


def test_the_reader_can_scroll_away_while_the_audio_plays_and_come_back(browser, site):
    page = signed_in(browser, site)
    page.set_viewport_size({"width": 1280, "height": 600})
    open_details(page, site)
    page.evaluate(
        "(a => { a.muted = true; a.playbackRate = 2; })(document.querySelector('#audio'))"
    )
    page.locator("#transcript .line").nth(0).click()
    page.get_by_role("button", name="Play").click()
    back = page.get_by_role("button", name="Back to the current line")
    expect(back).to_be_hidden()
    page.mouse.move(640, 400)
    page.mouse.wheel(0, 1200)
    expect(back).to_be_visible()
    left_at = page.evaluate("scrollY")
    assert left_at > 600
    first = page.locator("#transcript .line[aria-current=true]").get_attribute("data-start")
    # the audio moves on to later lines (at double speed), and the page stays where the reader is
    playing = page.locator("#transcript .line[aria-current=true]")
    expect(playing).not_to_have_attribute("data-start", first, timeout=15000)
    page.wait_for_timeout(500)
    assert page.evaluate("scrollY") == left_at
    back.click()
    expect(back).to_be_hidden()
    expect(page.locator("#transcript .line[aria-current=true]")).to_be_in_viewport()
    page.get_by_role("button", name="Pause").click()
    page.close()


PHONE = {"width": 390, "height": 844}
EVALUATION_FORM = {
    "name": "Support call quality",
    "sections": [
        {
            "title": "Opening",
            "questions": [
                {
                    "id": "damage",
                    "text": "Agent asked about the damage",
                    "type": "yes_no",
                    "weight": 2,
                    "auto": {"category": "Damaged goods", "when": "matched"},
                },
                {"id": "empathy", "text": "Agent showed empathy", "type": "scale_5", "weight": 3},
            ],
        }
    ],
}


def every_page(site, user: str) -> list[str]:
    """Every page USER can reach from the menus, and an error page."""
    with site["ctx"].db.session() as session:
        conv = session.get(Conversation, site["id"])
        contact, me = conv.contact_id, session.scalar(select(User.id).where(User.username == user))
    paths = [
        "/conversations",
        "/conversations?q=%22two+days%22",
        "/conversations?q=customer+wants+a+refund&by=meaning",
        f"/conversations/{site['id']}",
        f"/conversations/{site['id']}#details",
        f"/conversations/{site['id']}#metrics",
        f"/conversations/{site['id']}#overview",
        f"/conversations/{site['id']}#evaluation",
        f"/contacts/{contact}",
        "/dashboard",
        "/scorecards?from=2026-01-01",
        "/themes?from=2026-01-01",
        "/live",
        f"/live/{site['live_id']}",
        "/preferences",
        "/conversations/999999",  # an error page
    ]
    if user == "boss":
        paths.append("/evaluations")
        paths += [
            f"/admin/{name}"
            for name in (
                "users",
                "tokens",
                "webhooks",
                "queues",
                "categories",
                "forms",
                "import",
                "settings",
                "audit",
            )
        ] + [f"/admin/users/{me}"]
    return paths


@pytest.mark.parametrize("user", ["boss", "marcus"])
def test_no_page_is_wider_than_a_phone(browser, site, user):
    page = signed_in(browser, site, user)
    page.set_viewport_size(PHONE)
    for path in every_page(site, user):
        page.goto(site["base"] + path)
        page.wait_for_load_state("load")
        wide = page.evaluate("document.documentElement.scrollWidth - innerWidth")
        assert wide <= 0, f"{path} is {wide} px wider than the phone"
    page.close()


def test_on_a_phone_the_list_shows_results_first_and_folds_its_filters(browser, site):
    page = signed_in(browser, site, "boss")
    page.set_viewport_size(PHONE)
    page.goto(f"{site['base']}/conversations?sentiment=")
    first = page.locator("table.list tbody tr").first
    assert first.bounding_box()["y"] + first.bounding_box()["height"] <= PHONE["height"]
    expect(page.locator("form.filters")).to_be_hidden()
    page.get_by_text("Filters", exact=True).click()
    expect(page.locator("form.filters")).to_be_visible()
    page.select_option("select[name=sentiment]", "neutral")
    page.click("form.filters button[type=submit]")
    expect(page.locator("details.filter-box summary")).to_contain_text("1")  # one filter on
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{site['base']}/conversations")
    expect(page.locator("form.filters")).to_be_visible()  # (a wide screen shows them open)
    page.close()


# the words of MAIN's text that the browser drew over more than one line (a word of up to 24
# letters fits any column; longer ones — addresses, ids — may break where they must)
BROKEN_WORDS = """() => {
  const broken = [];
  const walker = document.createTreeWalker(document.querySelector('main'), NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;  // (text for screen readers only is drawn nowhere)
    const box = parent.getBoundingClientRect();
    if (!parent.checkVisibility() || box.width < 2 || parent.closest('pre, code, .visually-hidden'))
      continue;
    for (const m of node.textContent.matchAll(/[\\p{L}\\p{N}]{2,24}/gu)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
      if (lines.size > 1) broken.push(m[0]);
    }
  }
  return broken.slice(0, 10);
}"""


@pytest.mark.parametrize("user", ["boss", "marcus"])
@pytest.mark.parametrize("size", [PHONE, {"width": 1440, "height": 900}], ids=["phone", "desktop"])
@pytest.mark.parametrize("locale", ["en-US", "id-ID"])  # (Indonesian words are longer)
def test_no_page_breaks_a_word_or_is_wider_than_the_window(browser, site, user, size, locale):
    page = signed_in(browser, site, user, locale=locale)
    page.set_viewport_size(size)
    found = {}
    for path in every_page(site, user):
        page.goto(site["base"] + path)
        page.wait_for_load_state("load")
        if broken := page.evaluate(BROKEN_WORDS):
            found[path] = broken
        if (wide := page.evaluate("document.documentElement.scrollWidth - innerWidth")) > 0:
            found[path] = f"{wide} px wider than the window"
    page.close()
    assert not found, found


@pytest.mark.parametrize("user", ["boss", "marcus"])
@pytest.mark.parametrize("size", [PHONE, {"width": 1440, "height": 900}], ids=["phone", "desktop"])
def test_axe_finds_nothing_serious_on_any_page(browser, site, user, size):
    """axe-core (from the axe-playwright-python package) on every page, signed out and in, on
    a phone and a desktop screen."""
    axe = Axe()
    page = browser.new_page(viewport=size)
    found = {}
    for path in ["/login", *every_page(site, user)]:
        if path == "/conversations":
            page.close()
            page = signed_in(browser, site, user)
            page.set_viewport_size(size)
        page.goto(site["base"] + path)
        page.wait_for_load_state("load")
        for violation in axe.run(page).response["violations"]:
            if violation["impact"] in ("serious", "critical"):
                targets = [node["target"] for node in violation["nodes"]][:3]
                found[f"{path} {violation['id']}"] = targets
    page.close()
    assert not found, json.dumps(found, indent=1)


def test_api_docs_render_with_no_other_host_reachable(browser, site):
    page = browser.new_page()
    elsewhere = []

    def only_this_server(route):
        if route.request.url.startswith(site["base"]) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(site["base"] + "/api/docs")
    expect(
        page.get_by_text("/api/v1/conversations/{conversation_id}/analysis").first
    ).to_be_visible()
    assert not elsewhere
    page.close()


def test_times_show_in_the_browsers_zone_until_the_user_chooses_one(browser, site):
    page = signed_in(browser, site, "other", timezone_id="Asia/Jakarta")
    page.goto(f"{site['base']}/preferences")
    expect(page.locator("#time-zone option").first).to_contain_text("Asia/Jakarta")
    expect(page.locator("main")).to_contain_text("UTC+07:00")
    page.locator("#time-zone").select_option("Asia/Makassar")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("main")).to_contain_text("UTC+08:00")
    page.locator("#time-zone").select_option("")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("main")).to_contain_text("UTC+07:00")
    page.close()


@pytest.mark.parametrize(
    "locale,title,back",
    [
        ("en-GB", "Not found", "Back to the conversations"),
        ("id-ID", "Tidak ditemukan", "Kembali ke percakapan"),
    ],
)
def test_an_error_is_a_page_in_the_browsers_language_with_a_way_back(
    browser, site, locale, title, back
):
    page = signed_in(browser, site, "other", locale=locale)
    res = page.goto(f"{site['base']}/conversations/{site['id']}")  # another agent's call
    assert res.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.get_by_role("navigation").first).to_be_visible()
    page.get_by_role("link", name=back).click()
    expect(page).to_have_url(re.compile(r"/conversations$"))
    page.close()


def test_the_transcript_reads_as_sentences_on_a_phone(browser, site):
    page = signed_in(browser, site)
    page.set_viewport_size(PHONE)
    open_details(page, site)
    text = page.locator("#transcript .line .text").nth(1)
    line = page.locator("#transcript .line").nth(1)
    assert text.bounding_box()["width"] >= 0.8 * line.bounding_box()["width"]
    player = page.locator("#player").bounding_box()
    assert player["height"] <= 0.35 * PHONE["height"]
    page.close()


def test_search_counts_highlights_and_steps_through_hits(browser, site):
    page = signed_in(browser, site)
    open_details(page, site)
    expected = page.locator("#transcript .w").evaluate_all(
        "(ws) => ws.filter((w) => (w.textContent.toLowerCase().match(/[a-z]+/g) || [])"
        ".includes('speaker')).length"
    )
    assert expected >= 2
    page.get_by_role("searchbox", name="Search transcript").fill("speaker")
    expect(page.locator("#hits")).to_have_text(f"1 of {expected}")
    expect(page.locator("#transcript mark")).to_have_count(expected)
    page.get_by_role("button", name="Next match").click()
    expect(page.locator("#hits")).to_have_text(f"2 of {expected}")
    expect(page.locator("#transcript mark.active")).to_have_count(1)
    page.get_by_role("searchbox", name="Search transcript").fill("speak")
    expect(page.locator("#hits")).to_have_text("0 of 0")  # whole words ...
    page.get_by_role("searchbox", name="Search transcript").fill("speak*")
    expect(page.locator("#hits")).to_have_text(re.compile(rf"^1 of ({expected}|[1-9]\d*)$"))
    page.get_by_role("searchbox", name="Search transcript").fill("zebra")
    expect(page.locator("#hits")).to_have_text("0 of 0")
    page.close()


def test_a_phrase_found_in_the_list_is_found_and_selected_in_the_call(browser, site):
    page = signed_in(browser, site)
    page.get_by_label("Search transcripts").fill('"wireless speaker"')
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tr.snippet mark")).to_have_text(["wireless", "speaker"])
    page.locator("table.list tbody a").first.click()
    expect(page).to_have_url(re.compile(r"\?q=%22wireless"))
    expect(page.locator("#details")).to_be_visible()
    expect(page.get_by_role("searchbox", name="Search transcript")).to_have_value(
        '"wireless speaker"'
    )
    expect(page.locator("#hits")).to_have_text(re.compile(r"^1 of [1-9]"))
    expect(page.locator("#transcript mark.active")).to_have_text(
        [re.compile("wireless", re.I), re.compile("speaker", re.I)]
    )
    expect(page.locator("#transcript mark.active").first).to_be_in_viewport()
    page.close()


def test_tabs_lines_and_timeline_answer_the_keyboard(browser, site):
    page = signed_in(browser, site)
    open_details(page, site)
    tab = page.get_by_role("tab", name="Details")
    tab.focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Metrics")).to_be_focused()
    expect(page.get_by_role("tab", name="Metrics")).to_have_attribute("aria-selected", "true")
    expect(page.locator('[role="tab"][tabindex="0"]')).to_have_count(1)
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#details")).to_be_visible()
    assert page.locator('#transcript .line[tabindex="0"]').count() == 1  # one tab stop
    first = page.locator("#transcript .line").first
    first.focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator("#transcript .line").nth(1)).to_be_focused()
    summary = page.locator("#timeline-summary")  # the canvas in words
    expect(summary).to_contain_text("Upper half and lane: the agent; lower: the customer.")
    expect(summary).to_contain_text(re.compile(r"Sentiment by quarter of the call: \w+, "))
    expect(page.locator("#timeline")).to_have_attribute("aria-describedby", "timeline-summary")
    page.locator("#timeline").focus()
    page.keyboard.press("End")
    assert current_time(page) > 30
    page.keyboard.press("Home")
    assert current_time(page) == 0
    page.close()


def test_downloads_are_an_aac_mp4_and_a_script_free_transcript(browser, site, tmp_path):
    page = signed_in(browser, site)
    open_details(page, site)
    with page.expect_download() as audio_download:
        page.get_by_role("link", name="Download audio").click()
    saved = tmp_path / "call.mp4"
    audio_download.value.save_as(saved)
    with av.open(str(saved)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
        assert container.duration / av.time_base == pytest.approx(163.09, abs=0.1)
    with page.expect_download() as transcript_download:
        page.get_by_role("link", name="Download transcript").click()
    html = Path(transcript_download.value.path()).read_text()
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "Thank you for calling" in html
    page.close()


def test_agent_cannot_open_someone_elses_call(browser, site):
    page = signed_in(browser, site, "other")
    expect(page.locator("table.list tbody")).to_contain_text("No conversations match.")
    response = page.goto(f"{site['base']}/conversations/{site['id']}")
    assert response.status == 404
    page.close()


def test_switched_off_recordings_say_so(browser, site):
    with site["ctx"].db.session() as session:
        policy.set_value(session, "recordings.enabled", False)
    try:
        page = signed_in(browser, site, "marcus")
        page.goto(f"{site['base']}/conversations/{site['id']}#details")
        expect(page.get_by_role("status")).to_contain_text("switched off")
        response = page.request.get(f"{site['base']}/api/v1/conversations/{site['id']}/audio")
        assert response.status == 403
        page.close()
    finally:
        with site["ctx"].db.session() as session:
            policy.set_value(session, "recordings.enabled", True)


def test_contact_timeline_opens_the_recording(browser, site):
    page = signed_in(browser, site)
    page.get_by_role("link", name="Helen Brooks").click()
    expect(page.get_by_role("heading", name="Helen Brooks")).to_be_visible()
    expect(page.locator("ol.timeline li")).to_have_count(1)
    expect(page.locator("ol.timeline li")).to_contain_text(re.compile(r"\d:\d\d · "))  # duration
    expect(page.locator("ol.timeline li .sentiment")).to_have_count(1)
    page.set_viewport_size({"width": 1280, "height": 500})
    page.get_by_role("link", name="Open recording").click()
    expect(page.locator("#details")).to_be_visible()
    expect(page.get_by_role("tab", name="Details")).to_have_attribute("aria-selected", "true")
    page.wait_for_load_state("load")
    expect(page.get_by_role("heading", level=1)).to_be_in_viewport()  # the title stays in view
    page.close()


def test_overview_and_sessions_show_the_metadata(browser, site):
    page = signed_in(browser, site)
    page.goto(f"{site['base']}/conversations/{site['id']}#overview")
    overview = page.locator("#overview")
    expect(overview).to_be_visible()
    for text in (
        "Marcus Lee",
        "Internet support",
        "Voice - Support",
        "resolved",
        "english, internet",
        "granted (ivr announcement)",
    ):
        expect(overview).to_contain_text(text)
    # sentiment per speaker, and by quarter with the customer's trend
    expect(overview.locator("#sentiment-overview")).to_contain_text(
        re.compile(r"; agent .+; customer ")
    )
    expect(overview.locator("#sentiment-quarters tbody tr")).to_have_count(2)
    expect(overview.locator("#sentiment-quarters tbody tr").first.locator("td")).to_have_count(4)
    expect(overview.locator("#sentiment-quarters caption .trend")).to_have_count(1)
    box = overview.get_by_role("region", name="Sentiment by quarter of the call")
    box.focus()  # (on a phone it scrolls sideways: the keyboard reaches it)
    expect(box).to_be_focused()
    expect(overview.get_by_role("link", name="Internet outage")).to_have_attribute(
        "href", "https://crm.example.com/cases/77"
    )
    page.get_by_role("tab", name="Sessions").click()
    expect(page.locator("#sessions tbody tr")).to_have_count(1)
    expect(page.locator("#sessions")).to_contain_text("5:00")
    page.close()


def test_metric_evidence_jumps_to_the_timeline(browser, site):
    page = signed_in(browser, site)
    page.goto(f"{site['base']}/conversations/{site['id']}")
    page.get_by_role("tab", name="Metrics").click()
    expect(page.locator("#metrics")).to_contain_text("The customer's longest uninterrupted turn.")
    button = page.get_by_role("button", name="Longest customer monologue")
    start = float(button.get_attribute("data-start"))
    page.wait_for_function("document.querySelector('#audio').readyState >= 1")
    button.click()
    expect(page.locator("#details")).to_be_visible()
    assert current_time(page) == pytest.approx(start, abs=0.01)
    evidence = json.loads(page.locator("#evidence").text_content())
    spans = {
        "Average pause": evidence["pauses"],
        "Non-talk time": evidence["non_talk"],
        "Interruptions": evidence["interruptions"],
        # (talk share, talking speed and talk time rest on each speaker's talk)
        "Talking speed, agent": evidence["talk"]["agent"],
        "Talk-to-listen, customer": evidence["talk"]["customer"],
    }
    assert evidence["pauses"], "the test call has pauses"
    assert evidence["talk"]["agent"] and evidence["talk"]["customer"]
    for name, found in spans.items():
        if found:
            page.get_by_role("tab", name="Metrics").click()
            page.get_by_role("button", name=name).click()
            expect(page.locator("#details")).to_be_visible()
            assert current_time(page) == pytest.approx(found[0]["start_s"], abs=0.01)
            expect(page.locator("#evidence-caption")).to_have_text(
                re.compile(rf"^{name}: {len(found)} marked on the timeline\s*Clear$")
            )
    page.get_by_role("button", name="Clear").click()
    expect(page.locator("#evidence-caption")).to_be_hidden()
    page.close()


def test_agent_dashboard_compares_with_the_team(browser, site):
    page = signed_in(browser, site, "marcus")
    page.goto(site["base"] + "/dashboard")
    you = page.locator("tr.mine")
    expect(you).to_contain_text("You")
    expect(you.locator("td").first).to_have_text("1")
    expect(you.locator("td").nth(2)).to_contain_text(
        re.compile(r"(positive|neutral|negative) \(-?\d")
    )
    # one call in the team: no figure of calls this agent may not open, and why
    expect(page.locator("tr.team td")).to_have_text(["–"] * 5)
    expect(page.locator("#team-too-few")).to_contain_text("5 calls")
    expect(page.locator("table.list").nth(1)).to_contain_text("Helen Brooks")
    page.close()


@pytest.mark.model
def test_processing_state_updates_live(browser, site):
    ctx = site["ctx"]
    result = Ingestor(ctx).ingest_file(FORMATS / "whatstheweatherlike.wav", recent_meta(mono=True))
    page = signed_in(browser, site)
    page.goto(f"{site['base']}/conversations/{result.id}")
    expect(page.locator("#state")).to_have_text("queued")
    page.evaluate("window.notReloaded = true")
    worker = threading.Thread(target=jobs.run_job, args=(ctx, result.job, "test"))
    worker.start()
    worker.join()
    expect(page.locator("#state")).to_have_text("processed", timeout=15000)
    page.get_by_role("tab", name="Details").click()
    expect(page.locator("#transcript")).to_contain_text("weather")
    page.get_by_role("tab", name="Metrics").click()
    expect(page.locator("#metrics")).to_contain_text("Talking speed")
    assert page.evaluate("window.notReloaded") is True
    page.close()


@pytest.mark.model
def test_indonesian_interface_from_the_browser_and_the_users_choice(browser, site):
    context = browser.new_context(locale="id-ID", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(site["base"] + "/login")
    expect(page.get_by_role("heading", name="Masuk")).to_be_visible()
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Masuk").click()
    expect(page.get_by_role("heading", name="Percakapan tertutup")).to_be_visible()
    expect(page.locator("table.list tbody tr").first).to_contain_text("selesai diproses")
    open_details(page, site)
    page.get_by_role("button", name="Maju 30 detik").click()
    assert current_time(page) == pytest.approx(30, abs=0.01)
    page.get_by_role("searchbox", name="Cari di transkrip").fill("speaker")
    expect(page.locator("#hits")).to_have_text(re.compile(r"^1 dari \d+$"))
    expect(page.get_by_role("link", name="Unduh audio")).to_be_visible()
    page.get_by_role("combobox", name="Bahasa").select_option("en")
    expect(page.get_by_role("tab", name="Details")).to_be_visible()
    page.goto(site["base"] + "/conversations")
    expect(page.get_by_role("heading", name="Closed conversations")).to_be_visible()
    page.get_by_role("combobox", name="Language").select_option("id")
    expect(page.get_by_role("heading", name="Percakapan tertutup")).to_be_visible()
    context.close()
    with site["ctx"].db.session() as session:
        session.query(User).update({"language": None})


def test_script_in_metadata_and_transcript_stays_text_in_the_browser(browser, site):
    ctx = site["ctx"]
    conv = Ingestor(ctx).ingest_file(FORMATS / "whatstheweatherlike.wav", hostile_meta())
    plant_transcript(ctx, conv.id, "</script><script>window.pwned=1</script>" + PAYLOAD)
    page = signed_in(browser, site)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{site['base']}/conversations/{conv.id}#details")
    expect(page.locator("#transcript .line")).to_have_count(1)
    expect(page.locator("#transcript .text")).to_have_text(
        "</script><script>window.pwned=1</script>" + PAYLOAD
    )
    page.get_by_role("tab", name="Overview").click()
    expect(page.locator("#overview")).to_contain_text(PAYLOAD)
    assert page.evaluate("window.pwned") is None
    with ctx.db.session() as session:
        contact_id = session.get(Conversation, conv.id).contact_id
    for path in ("/conversations", f"/contacts/{contact_id}"):
        page.goto(site["base"] + path)
        expect(page.locator("main")).to_contain_text(PAYLOAD)
        assert page.evaluate("window.pwned") is None
    assert dialogs == []
    page.close()


def audit_actions(site, action: str) -> list[str]:
    with site["ctx"].db.session() as session:
        return list(session.scalars(select(AuditEvent.actor).where(AuditEvent.action == action)))


def test_first_play_of_a_page_view_is_audited_once(browser, site):
    before = len(audit_actions(site, "recording.play"))
    page = signed_in(browser, site)
    open_details(page, site)
    play = page.get_by_role("button", name="Play")
    for _ in range(2):
        play.click()
        expect(page.get_by_role("button", name="Pause")).to_be_visible()
        page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Play")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert audit_actions(site, "recording.play")[before:] == ["boss"]
    page.close()


def test_administrator_runs_the_policy_from_the_pages(browser, site):
    page = signed_in(browser, site)
    page.get_by_role("link", name="Administration").click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    page.get_by_label("User name").fill("newsup")
    page.get_by_label("Role").select_option("supervisor")
    page.get_by_label("Password").fill("a fresh long password")
    page.get_by_label("Supervised queues (supervisors)").select_option(label="Internet support")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_have_text("User created.")
    expect(page.get_by_role("link", name="newsup")).to_be_visible()
    page.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="Settings"
    ).click()
    page.get_by_label("Who may download transcripts").select_option("administrators")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_have_text("Settings saved.")
    expect(page.get_by_label("Who may download transcripts")).to_have_value("administrators")
    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("table.audit tbody tr").first).to_contain_text("setting.change")
    with site["ctx"].db.session() as session:
        assert policy.get(session, "downloads.transcript") == "administrators"
        policy.set_value(session, "downloads.transcript", "everyone")
    page.close()


@pytest.mark.model
def test_a_mono_call_says_how_its_speakers_were_found_and_can_be_swapped(browser, site):
    ctx = site["ctx"]
    result = Ingestor(ctx).ingest_file(DEMO_CALLS / "commercial_mono.wav", recent_meta(mono=True))
    assert jobs.run_job(ctx, result.job, "test") == "processed"
    url = f"{site['base']}/conversations/{result.id}"

    agent = signed_in(browser, site, "marcus")
    agent.goto(url)
    expect(agent.locator("#speaker-source")).to_contain_text("told apart by voice")
    expect(agent.get_by_role("button", name="Swap agent and customer")).to_have_count(0)
    agent.close()

    page = signed_in(browser, site)
    page.goto(url)
    expect(page.locator("#speaker-source")).to_contain_text("what each speaker says")
    page.get_by_role("tab", name="Metrics").click()
    expect(page.locator("#metrics-source")).to_contain_text("single-channel recording")
    share = page.locator("table.metrics tr", has_text="Talk-to-listen").locator("td").first
    before = re.findall(r"[\d.]+ %", share.inner_text())
    assert len(before) == 2
    ratio = re.search(r"agent : customer ([\d.]+) : 1", share.inner_text())
    agent_pct, customer_pct = (float(x.split()[0]) for x in before)
    assert float(ratio.group(1)) == pytest.approx(agent_pct / customer_pct, abs=0.01)
    page.get_by_role("tab", name="Overview").click()
    page.get_by_role("button", name="Swap agent and customer").click()
    expect(page.get_by_role("status")).to_have_text("Agent and customer swapped.")
    expect(page.locator("#speaker-source")).to_contain_text("a correction by hand")
    page.get_by_role("tab", name="Metrics").click()
    assert re.findall(r"[\d.]+ %", share.inner_text()) == before[::-1]
    assert audit_actions(site, "conversation.swap_speakers") == ["boss"]
    page.close()


def test_a_transcript_imported_without_audio_reads_without_a_player(browser, site):
    ctx = site["ctx"]
    vtt = (
        "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\n<v.agent Marcus Lee>How can I help?\n\n"
        "00:00:04.000 --> 00:00:06.000\n<v.customer Helen>My router is broken.\n"
    )
    meta = Ingestor(ctx).check_metadata(recent_meta())
    result = Ingestor(ctx).import_transcript(vtt.encode(), "vtt", meta)
    page = signed_in(browser, site)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{site['base']}/conversations/{result.id}#details")
    expect(page.locator("#no-audio")).to_be_visible()
    expect(page.locator("#transcript li.line")).to_have_count(2)
    page.locator("#transcript li.line").first.click()
    page.get_by_role("searchbox", name="Search transcript").fill("router")
    expect(page.locator("#hits")).to_have_text("1 of 1")
    expect(page.get_by_role("link", name="Download transcript")).to_be_visible()
    expect(page.locator("#speaker-source")).to_have_count(1)
    page.get_by_role("tab", name="Overview").click()
    expect(page.locator("#speaker-source")).to_contain_text("as the imported transcript gives them")
    assert errors == []
    page.close()


def test_words_recognised_with_little_confidence_are_marked_with_their_value(browser, site):
    words = [
        {"text": "my", "start_s": 1.0, "end_s": 1.2, "confidence": 0.95},
        {"text": "ruter", "start_s": 1.3, "end_s": 1.7, "confidence": 0.31},
        {"text": "broke", "start_s": 1.8, "end_s": 2.2, "confidence": 0.88},
    ]
    transcript = {
        "language": "en",
        "segments": [{"speaker": "customer", "start_s": 1.0, "end_s": 2.2, "words": words}],
    }
    ingestor = Ingestor(site["ctx"])
    meta = ingestor.check_metadata(recent_meta())
    result = ingestor.import_transcript(json.dumps(transcript).encode(), "json", meta)
    page = signed_in(browser, site)
    page.goto(f"{site['base']}/conversations/{result.id}#details")
    unsure = page.locator("#transcript .w.unsure")
    expect(unsure).to_have_count(1)
    expect(unsure).to_have_text("ruter")
    expect(unsure).to_have_attribute("title", "confidence 31 %")
    page.close()


def test_administrator_imports_a_transcript_from_the_page(browser, site, tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(recent_meta()))
    vtt = tmp_path / "call.vtt"
    vtt.write_text(
        "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\n<v.agent Marcus Lee>Thank you for calling.\n\n"
        "00:00:04.000 --> 00:00:06.000\n<v.customer Helen>My parcel never came.\n"
    )
    bad = tmp_path / "bad.vtt"
    bad.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nno voice here\n")
    page = signed_in(browser, site)
    page.goto(site["base"] + "/admin/import")
    page.get_by_label("Metadata (JSON)").set_input_files(str(meta))
    page.get_by_label("Transcript (.json or .vtt)").set_input_files(str(bad))
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("has no voice (<v Name>)")
    expect(page.get_by_role("status")).to_have_count(0)  # not in the box that says "done"
    page.get_by_label("Metadata (JSON)").set_input_files(str(meta))
    page.get_by_label("Transcript (.json or .vtt)").set_input_files(str(vtt))
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Transcript imported.")
    expect(page).to_have_url(re.compile(r"/conversations/\d+$"))
    expect(page.locator("#speaker-source")).to_contain_text("as the imported transcript gives them")
    page.close()


def test_the_summary_opens_first_and_leads_to_its_moments(browser, site):
    page = signed_in(browser, site)
    page.goto(f"{site['base']}/conversations/{site['id']}")
    summary = page.locator("#summary")
    expect(summary).to_be_visible()  # the first tab, open by default
    expect(page.get_by_role("tab", name="Summary")).to_have_attribute("aria-selected", "true")
    expect(summary.locator("#reason")).to_contain_text(re.compile("speaker", re.I))
    expect(summary.locator("#questions-agent li")).not_to_have_count(0)
    expect(summary.locator("#categories")).to_contain_text("Damaged goods")
    reason = summary.locator("#reason .moment")
    start = float(reason.get_attribute("data-at"))
    expect(page.locator("#mini-player")).to_be_visible()  # (a small player under the summary)
    reason.click()  # it plays in place: the summary stays
    expect(summary).to_be_visible()
    page.wait_for_function("document.querySelector('#audio').readyState >= 1")
    page.evaluate("document.querySelector('#audio').pause()")
    assert abs(current_time(page) - start) < 1.5
    page.get_by_role("tab", name="Details").click()  # the player there, at the moment's line
    expect(page.locator("#mini-player")).to_be_hidden()
    expect(page.locator("#transcript .line.current")).to_contain_text(re.compile("damaged", re.I))
    # a comment at the player's current time, shown beside the transcript and on the timeline
    page.fill("#comment-text", "Empathy could come sooner here")
    page.get_by_role("button", name="Add comment").click()
    mine = page.locator("#comments .comment", has_text="Empathy could come sooner here")
    expect(mine).to_be_visible()
    at = float(mine.locator(".moment").get_attribute("data-at"))
    assert abs(at - start) < 2.0
    expect(page.locator("#timeline-summary")).to_contain_text("Comment by boss at")
    expect(page.locator("#timeline-summary")).to_contain_text("Category Damaged goods at")
    # the list shows the category and filters by it
    page.goto(f"{site['base']}/conversations")
    page.get_by_role("link", name="Damaged goods").first.click()
    expect(page).to_have_url(re.compile(r"category=Damaged\+goods"))
    rows = page.locator("table.list tbody tr")
    expect(rows.first.locator(".chip", has_text="Damaged goods")).to_be_visible()
    assert rows.count() == page.locator("tbody .chip", has_text="Damaged goods").count()
    page.close()


def test_a_supervisor_evaluates_a_call_from_its_page(browser, site):
    page = signed_in(browser, site)
    page.goto(f"{site['base']}/conversations/{site['id']}#evaluation")
    form = page.locator("#evaluate")
    expect(form).to_be_visible()
    # the automatic answer is filled in, with the moment that decided it
    expect(page.locator("#answer-damage")).to_have_value("yes")
    expect(form.locator(".moment").first).to_be_visible()
    form.locator(".moment").first.click()  # the evidence plays in place: the form stays
    expect(form).to_be_visible()
    expect(page.locator("#mini-player")).to_be_visible()
    page.evaluate("document.querySelector('#audio').pause()")
    page.select_option("#answer-empathy", "4")
    page.fill("input[name=comment-empathy]", "Apologised before asking")
    # kept as a draft as the supervisor goes: a reload finds the answers where they were left
    expect(page.locator("#draft-status")).to_contain_text("Draft saved at")
    page.reload()
    expect(page.locator("#answer-empathy")).to_have_value("4")
    expect(page.locator("input[name=comment-empathy]")).to_have_value("Apologised before asking")
    # changing an automatic answer without a reason is stopped before anything is sent
    page.select_option("#answer-damage", "no")
    page.get_by_role("button", name="Submit evaluation").click()
    reason = form.locator("input[name=reason-damage]")
    assert reason.evaluate("e => e.validationMessage") == "Say why you change the automatic answer."
    expect(page.locator("article.evaluation")).to_have_count(0)
    page.select_option("#answer-damage", "yes")
    page.get_by_role("button", name="Submit evaluation").click()
    expect(page.locator("#evaluation")).to_be_visible()
    card = page.locator("#evaluation article.evaluation").first
    expect(card).to_contain_text("Support call quality")
    expect(card).to_contain_text("85")  # (2 × 1 + 3 × 0.75) / 5 = 85 %
    expect(card).to_contain_text("Apologised before asking")
    # amended by its evaluator; a refusal the server makes marks the field and opens it
    card.get_by_text("Amend", exact=True).click()
    amend = card.locator("form.evaluation-form")
    amend.locator("select[name=answer-damage]").select_option("no")
    amend.locator("[name=why]").fill("Heard it again")
    amend.evaluate("f => f.submit()")  # (as a browser without the page's script sends it)
    expect(page.locator("#refusal")).to_contain_text("say why the automatic answer")
    marked = page.locator("article.evaluation form.evaluation-form [name=reason-damage]").first
    expect(marked).to_have_attribute("aria-invalid", "true")
    expect(marked).to_be_focused()
    amend = page.locator("article.evaluation form.evaluation-form").first
    amend.locator("select[name=answer-empathy]").select_option("5")
    amend.locator("[name=why]").fill("Heard it again: the apology came first")
    amend.get_by_role("button", name="Save the amendment").click()
    card = page.locator("#evaluation article.evaluation").first
    expect(card).to_contain_text("100")  # (2 × 1 + 3 × 1) / 5
    expect(card.locator(".amended")).to_contain_text("Heard it again: the apology came first")
    page.close()
