"""Scorecards: the database's weekly figures against a plain reference over the same calls,
weeks on Monday (UTC) on either database, a team's weeks shown to an agent only as means and
only when there are enough calls, and the page, its charts and its CSV."""

from __future__ import annotations

import csv
import io
import random
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from statistics import fmean

import pytest
from sqlalchemy import delete, func, select

from callscope.db.models import (
    Agent,
    Category,
    CategoryMatch,
    Conversation,
    ConversationAnalysis,
    ConversationSession,
    Evaluation,
    EvaluationForm,
    Queue,
    ScorecardWeek,
    User,
)
from callscope.governance import auth
from callscope.governance.access import visible_conversations
from callscope.governance.audit import Actor
from callscope.review import categories, evaluations, scorecards
from callscope.web import charts
from tests.support import PASSWORD, sign_in

FORM = {
    "name": "Q",
    "sections": [
        {"title": "A", "questions": [{"id": "q", "text": "Polite", "type": "yes_no", "weight": 1}]}
    ],
}
START, END = date(2026, 9, 1), date(2026, 11, 30)
# (a range is widened to whole weeks: Monday 31 August to Sunday 6 December)
FIRST, LAST = START - timedelta(days=START.weekday()), END + timedelta(days=6 - END.weekday())


@pytest.fixture
def calls(ctx):
    """120 processed calls of three agents (AG-1 and AG-2 in queue Support, AG-3 in Sales)
    over the quarter, some with an evaluation or a category; a few outside it, one failed."""
    rng = random.Random(3)
    made = []
    with ctx.db.session() as session:
        support, sales = Queue(name="Support"), Queue(name="Sales")
        agents = [Agent(external_id=f"AG-{i}", name=f"Agent {i}") for i in (1, 2, 3)]
        form = EvaluationForm(name="F", version=1, definition={"sections": []})
        angry = Category(name="Angry", definition={}, version=1, applied_version=1)
        session.add_all([support, sales, *agents, form, angry])
        session.flush()
        for i in range(130):
            agent = agents[i % 3]
            # a quarter of the calls start on a Sunday night or a Monday morning (UTC)
            started = datetime(2026, 8, 25, tzinfo=UTC) + timedelta(
                days=rng.randrange(100), seconds=rng.choice([0, 1, 86399, rng.randrange(86400)])
            )
            conv = Conversation(
                external_id=f"S-{i}",
                channel="voice",
                status="closed",
                primary_agent_id=agent.id,
                queue_id=(sales if agent.external_id == "AG-3" else support).id,
                started_at=started,
                duration_s=float(rng.randint(30, 900)),
                processing_status="failed" if i == 7 else "processed",
            )
            session.add(conv)
            session.flush()
            figures = {
                "agent_talk_pct": rng.uniform(20, 80),
                "customer_sentiment": rng.choice([None, rng.uniform(-1, 1)]),
                "customer_trend": rng.uniform(-1, 1),
                "non_talk_s": rng.uniform(0, 60),
            }
            session.add(ConversationAnalysis(conversation_id=conv.id, **figures))
            score = None
            if i % 4 == 0:
                score = rng.choice([None, rng.uniform(0, 100)])
                session.add(
                    Evaluation(
                        conversation_id=conv.id, form_id=form.id, evaluator="sup", score_pct=score
                    )
                )
            if i % 5 == 0:
                session.add(CategoryMatch(conversation_id=conv.id, category_id=angry.id))
            made.append((conv.id, agent.external_id, started, conv.duration_s, figures, i, score))
        auth.add_user(session, "admin", "admin", PASSWORD)
        auth.add_user(session, "one", "agent", PASSWORD, agent_external_id="AG-1")
    return made


def reference(calls, agents):
    """The weeks of AGENTS' processed calls from START to END, worked out plainly."""
    assert (FIRST.weekday(), LAST.weekday()) == (0, 6)
    weeks = defaultdict(list)
    for call in calls:
        _id, agent, started, duration, figures, i, score = call
        if agent in agents and i != 7 and FIRST <= started.date() <= LAST:
            day = started.date()
            weeks[(day - timedelta(days=day.weekday())).isoformat()].append(call)
    out = {}
    for monday, rows in weeks.items():
        sentiments = [r[4]["customer_sentiment"] for r in rows]
        scores = [r[6] for r in rows if r[5] % 4 == 0 and r[6] is not None]
        out[monday] = {
            "calls": len(rows),
            "average_handle_s": fmean(r[3] for r in rows),
            "agent_talk_pct": fmean(r[4]["agent_talk_pct"] for r in rows),
            "customer_sentiment": fmean(s for s in sentiments if s is not None)
            if any(s is not None for s in sentiments)
            else None,
            "evaluations": sum(r[5] % 4 == 0 for r in rows),
            "score_pct": fmean(scores) if scores else None,
            "categories": {"Angry": n} if (n := sum(r[5] % 5 == 0 for r in rows)) else {},
        }
    return out


def user(session, name):
    return session.scalars(select(User).where(User.username == name)).one()


def test_the_weeks_add_up_as_a_plain_count_of_the_same_calls_does(ctx, calls):
    with ctx.db.session() as session:
        card = scorecards.scorecard(session, user(session, "admin"), "AG-1", None, START, END)
        everyone = scorecards.scorecard(session, user(session, "admin"), None, None, START, END)
    expected = reference(calls, {"AG-1"})
    assert [w["week_start"] for w in card["weeks"]] == sorted(expected)
    for week in card["weeks"]:
        want = expected[week["week_start"]]
        assert date.fromisoformat(week["week_start"]).weekday() == 0
        for name, value in want.items():
            if isinstance(value, float):
                assert week[name] == pytest.approx(value, abs=0.01), (week["week_start"], name)
            else:
                assert week[name] == value, (week["week_start"], name)
    assert card["calls"] == sum(w["calls"] for w in expected.values())
    assert everyone["calls"] == sum(
        w["calls"] for w in reference(calls, {"AG-1", "AG-2", "AG-3"}).values()
    )
    scores = [
        c[6]
        for c in calls
        if c[1] == "AG-1" and c[5] % 4 == 0 and c[6] is not None and FIRST <= c[2].date() <= LAST
    ]
    assert card["score_pct"] == pytest.approx(fmean(scores), abs=0.01)


def test_an_agent_sees_their_team_only_as_means_of_weeks_with_enough_calls(ctx, calls):
    with ctx.db.session() as session:
        one = user(session, "one")
        own = scorecards.scorecard(session, one, None, None, START, END)
        team = scorecards.team_weeks(session, one, START, END)
    assert own["calls"] == sum(w["calls"] for w in reference(calls, {"AG-1"}).values())
    expected = reference(calls, {"AG-1", "AG-2"})  # Support; AG-3's Sales calls are no part
    shown = {m for m, w in expected.items() if w["calls"] >= scorecards.TEAM_MIN_CALLS}
    assert set(team) == shown and len(shown) < len(expected)  # some weeks have too few
    for monday in shown:
        assert set(team[monday]) == set(scorecards.MEANS)  # no counts, categories, scores
        assert team[monday]["average_handle_s"] == pytest.approx(
            expected[monday]["average_handle_s"], abs=0.01
        )


def test_the_page_draws_the_weeks_and_downloads_them_as_csv(ctx, client, calls):
    sign_in(client, "admin")
    params = {"agent": "AG-2", "from": START.isoformat(), "to": END.isoformat()}
    page = client.get("/scorecards", params=params)
    assert page.status_code == 200
    assert page.text.count('role="img"') == 5  # a chart per figure
    assert page.text.count("<polyline") >= 4
    handle = page.text.split('id="chart-average_handle_s"')[1].split("</svg>")[0]
    ticks = re.findall(rf'x="{charts.LEFT - 6}" [^>]*>([^<]+)</text>', handle)  # value axis
    assert len(ticks) == 3 and all(re.fullmatch(r"\d+:\d\d", t) for t in ticks), ticks
    expected = reference(calls, {"AG-2"})
    download = client.get("/scorecards.csv", params=params)
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [r["week_start"] for r in rows] == sorted(expected)
    assert [int(r["calls"]) for r in rows] == [expected[m]["calls"] for m in sorted(expected)]
    assert [int(r["category: Angry"]) for r in rows] == [
        expected[m]["categories"].get("Angry", 0) for m in sorted(expected)
    ]
    backwards = client.get("/scorecards", params={**params, "from": "2026-12-31"})
    assert "from:" in backwards.text  # refused, saying which field
    assert client.get("/scorecards", params={**params, "to": "30/11/2026"}).status_code == 422


def test_an_agents_page_and_dashboard_show_their_own_weeks_beside_the_teams(ctx, client, calls):
    sign_in(client, "one")
    page = client.get("/scorecards", params={"agent": "AG-2", "from": "2026-09-01"}).text
    own = reference(calls, {"AG-1"})
    assert f"<dd>{sum(w['calls'] for w in own.values())}</dd>" in page  # not AG-2's: their own
    assert 'class="line team"' in page and 'name="agent"' not in page
    with ctx.db.session() as session:  # (a call of yesterday: the dashboard's last 12 weeks)
        conv = Conversation(
            external_id="S-yesterday",
            channel="voice",
            status="closed",
            primary_agent_id=session.scalar(select(Agent.id).where(Agent.external_id == "AG-1")),
            started_at=datetime.now(UTC) - timedelta(days=1),
            duration_s=120.0,
            processing_status="processed",
        )
        session.add(conv)
        session.flush()
        session.add(
            ConversationAnalysis(conversation_id=conv.id, customer_sentiment=0.5, agent_talk_pct=50)
        )
    dashboard = client.get("/dashboard").text
    assert dashboard.count('role="img"') == 3 and "/scorecards" in dashboard


def test_the_weekly_cells_follow_every_change_to_their_calls(ctx, calls):
    """Cells made by a first read are made again where a call changed: after an evaluation,
    a category applied to the stored calls and one removed, the scorecard is what cells made
    from nothing give."""

    def card():
        with ctx.db.session() as session:
            return scorecards.scorecard(session, user(session, "admin"), None, None, START, END)

    def from_nothing():
        with ctx.db.session() as session:
            session.execute(delete(ScorecardWeek))
        return card()

    before = card()
    assert before == from_nothing()
    with ctx.db.session() as session:
        evaluations.import_form(session, Actor.cli(), FORM)
        admin = user(session, "admin")
        evaluations.evaluate(session, Actor.cli(), admin, calls[1][0], "Q", {"q": "no"})
    evaluated = card()
    assert evaluated["evaluations"] == before["evaluations"] + 1
    assert evaluated == from_nothing()
    with ctx.db.session() as session:
        categories.add(session, Actor.cli(), "Quiet", {"phrases": ["zzz"], "absent": True})
    categories.apply_step(ctx.db, batch=40)
    card()  # (read while the category is being applied: the cells of that moment are made)
    while categories.apply_step(ctx.db, batch=40) is not None:
        pass
    applied = card()
    assert sum(w["categories"].get("Quiet", 0) for w in applied["weeks"]) == applied["calls"]
    assert applied == from_nothing()
    with ctx.db.session() as session:
        quiet = session.scalars(select(Category.id).where(Category.name == "Quiet")).one()
        categories.remove(session, Actor.cli(), quiet)
    removed = card()
    assert removed == from_nothing()
    assert not any("Quiet" in week["categories"] for week in removed["weeks"])


def test_the_dashboards_figures_are_a_scorecards_sums_over_its_days(ctx, client, calls):
    """The dashboard adds up the last 30 days as a scorecard adds up a week; an agent's team
    shows its means only from TEAM_MIN_CALLS calls on."""
    since = datetime.now(UTC) - timedelta(days=30)

    def figures():
        with ctx.db.session() as session:
            recent = visible_conversations(user(session, "admin")).where(
                Conversation.started_at >= since
            )
            return (
                scorecards.means(session, recent)[None],
                scorecards.means(session, recent, Conversation.primary_agent_id),
                scorecards.team_means(session, user(session, "one"), since),
            )

    with ctx.db.session() as session:  # AG-1's call of yesterday, alone in the queue's days
        session.execute(delete(Conversation).where(Conversation.started_at >= since))
    calls = [c for c in calls if c[2] < since]
    add_call(ctx, "AG-1", 1, 300.0, 0.5)
    assert figures()[2] is None
    for n in range(scorecards.TEAM_MIN_CALLS):
        add_call(ctx, "AG-2", n, 60.0 * (n + 1), -0.5)
    everyone, by_agent, team = figures()
    assert (
        everyone["calls"]
        == 1 + scorecards.TEAM_MIN_CALLS
        == sum(f["calls"] for f in by_agent.values())
    )
    durations = [300.0] + [60.0 * (n + 1) for n in range(scorecards.TEAM_MIN_CALLS)]
    assert everyone["average_handle_s"] == pytest.approx(round(fmean(durations), 2))
    assert everyone["customer_sentiment"] == pytest.approx(round((0.5 - 2.5) / 6, 2))
    assert team is not None and "calls" not in team
    assert team["average_handle_s"] == everyone["average_handle_s"]
    sign_in(client, "admin")
    page = client.get("/dashboard").text
    assert '<tr class="team"><th>All visible calls</th><td>6</td>' in page.replace("\n", "")


def add_call(ctx, agent: str, n: int, duration: float, sentiment: float) -> None:
    """A processed call of AGENT in queue Support, started N hours ago."""
    with ctx.db.session() as session:
        conv = Conversation(
            external_id=f"D-{agent}-{n}",
            channel="voice",
            status="closed",
            primary_agent_id=session.scalar(select(Agent.id).where(Agent.external_id == agent)),
            queue_id=session.scalar(select(Queue.id).where(Queue.name == "Support")),
            started_at=datetime.now(UTC) - timedelta(hours=n + 1),
            duration_s=duration,
            processing_status="processed",
        )
        session.add(conv)
        session.flush()
        session.add(ConversationAnalysis(conversation_id=conv.id, customer_sentiment=sentiment))


def test_an_agent_reads_no_colleagues_evaluation_or_category_counts(ctx, client, calls):
    """A call AG-2 took and handed to AG-1 is AG-1's to see, but its evaluation is AG-2's:
    AG-1's scorecard filtered on AG-2 counts the call and none of AG-2's evaluations, and the
    categories' counts are of AG-1's calls only."""
    with ctx.db.session() as session:
        ag1, ag2 = (
            session.scalar(select(Agent).where(Agent.external_id == a)) for a in ("AG-1", "AG-2")
        )
        started = datetime(2026, 10, 14, 9, tzinfo=UTC)
        conv = Conversation(
            external_id="S-transfer",
            channel="voice",
            status="closed",
            primary_agent_id=ag2.id,
            started_at=started,
            duration_s=300.0,
            processing_status="processed",
            sessions=[
                ConversationSession(position=0, agent=ag2, started_at=started),
                ConversationSession(
                    position=1, agent=ag1, started_at=started + timedelta(minutes=2)
                ),
            ],
        )
        session.add(conv)
        session.flush()
        session.add(ConversationAnalysis(conversation_id=conv.id, customer_sentiment=0.1))
        form_id = session.scalar(select(EvaluationForm.id))
        session.add(
            Evaluation(conversation_id=conv.id, form_id=form_id, evaluator="sup", score_pct=90.0)
        )
        angry = session.scalar(select(Category).where(Category.name == "Angry"))
        total = session.scalar(select(func.count()).where(CategoryMatch.category_id == angry.id))
        seen = visible_conversations(user(session, "one")).with_only_columns(Conversation.id)
        own = session.scalar(
            select(func.count()).where(
                CategoryMatch.category_id == angry.id, CategoryMatch.conversation_id.in_(seen)
            )
        )
    sign_in(client, "one")
    with ctx.db.session() as session:
        token = auth.create_token(session, "one", "mine", "read")
    headers = {"Authorization": f"Bearer {token}"}
    card = client.get(
        "/api/v1/scorecards",
        params={"agent": "AG-2", "from": "2026-10-12", "to": "2026-10-18"},
        headers=headers,
    ).json()
    assert card["calls"] == 1 and card["evaluations"] == 0 and card["score_pct"] is None
    listed = client.get("/api/v1/categories", headers=headers).json()
    assert [c["calls"] for c in listed if c["name"] == "Angry"] == [own]
    assert own < total
