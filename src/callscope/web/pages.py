"""The review pages: sign-in, conversation list, conversation, contact, dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Select, select

from callscope import errors, i18n
from callscope.db.models import (
    Agent,
    Category,
    Contact,
    Conversation,
    ConversationAnalysis,
    Queue,
    User,
)
from callscope.governance import access, audit, auth, policy
from callscope.governance.access import Action, visible_conversations
from callscope.governance.audit import Actor
from callscope.i18n import N_
from callscope.review import comments, document, scorecards, search
from callscope.web import charts, security
from callscope.web.deps import (
    MAX_ID,
    ZONE_COOKIE,
    ContextDep,
    Id,
    PageNumber,
    SessionDep,
    actor,
    correct_speakers,
    visible_conversation,
)
from callscope.web.download import metrics_csv_response
from callscope.web.ui import (
    PageUser,
    day,
    done,
    list_link,
    login_page,
    refused,
    render,
    safe_next,
    speak_as_the_browser,
)

PAGE_SIZE = 25
SIGN_IN_WITH_COMPANY = N_("Sign in with your company account.")
DASHBOARD_DAYS = 30

router = APIRouter(include_in_schema=False, dependencies=[Depends(security.csrf_protect)])


@router.get("/login")
def login_form(
    request: Request,
    next: str = "/conversations",  # noqa: A002 (the query parameter's name)
) -> HTMLResponse:
    return login_page(request, next_page=next)


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    username: Annotated[str, Form(max_length=150)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=2000)] = "/conversations",  # noqa: A002 (the field's name)
) -> Response:
    source = security.client_address(request)
    recorded = security.name_to_record(ctx, session, username)
    wait = security.throttled_for(session, recorded, source)
    user = session.scalar(select(User).where(User.username == username))
    if wait is None and not auth.password_matches(user, password):
        wait, user = timedelta(0), None
    if wait is not None:
        audit.record(
            session,
            Actor(user.id if user else None, recorded, source),
            "sign_in_failed",
            "user",
            recorded,
            throttled=wait > timedelta(0),
        )
        session.commit()
        minutes = max(1, -(-int(wait.total_seconds()) // 60))
        speak_as_the_browser(request)
        error = (
            i18n.ngettext(
                "Too many failed sign-ins. Try again in %(num)d minute.",
                "Too many failed sign-ins. Try again in %(num)d minutes.",
                minutes,
            )
            % {"num": minutes}
            if wait > timedelta(0)
            else i18n.gettext("Wrong user name or password.")
        )
        status = 429 if wait > timedelta(0) else 401
        return login_page(request, status, next, error)
    assert user is not None  # (checked above: no user, no sign-in)
    if not auth.may_sign_in_locally(user, ctx.settings):
        audit.record(
            session, Actor.of(user, source), "sign_in_failed", "user", username, reason="local"
        )
        speak_as_the_browser(request)
        return login_page(request, 403, next, i18n.gettext(SIGN_IN_WITH_COMPANY))
    security.start_session(request, user)
    audit.record(session, Actor.of(user, source), "sign_in", "user", username)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/preferences/language")
def set_language(
    session: SessionDep,
    user: PageUser,
    language: Annotated[str, Form(pattern="^(en|id)$")],
    next: Annotated[str, Form()] = "/conversations",  # noqa: A002 (the form field's name)
) -> RedirectResponse:
    """Keep the user's choice of interface language."""
    session.get_one(User, user.id).language = language
    return RedirectResponse(safe_next(next), status_code=303)


@router.get("/preferences")
def preferences_form(request: Request, user: PageUser) -> HTMLResponse:
    """The user's own language and time zone."""
    browser = request.cookies.get(ZONE_COOKIE)
    return render(
        request,
        "preferences.html",
        user,
        zones=i18n.zones(),
        browser_zone=browser if i18n.known_zone(browser) else None,
        now=datetime.now(UTC),
    )


@router.post("/preferences")
def set_preferences(
    request: Request,
    session: SessionDep,
    user: PageUser,
    language: Annotated[str, Form(pattern="^(|en|id)$")] = "",
    time_zone: Annotated[str, Form(max_length=64)] = "",
) -> RedirectResponse:
    """Keep the user's language and time zone (empty: the browser's)."""
    if time_zone and not i18n.known_zone(time_zone):
        raise errors.Refused(f"unknown time zone {time_zone!r}: choose one from the list")
    stored = session.get_one(User, user.id)
    stored.language, stored.time_zone = language or None, time_zone or None
    return done(request, "/preferences", N_("Preferences saved."))


@router.post("/logout")
def logout(request: Request, session: SessionDep, user: PageUser) -> RedirectResponse:
    audit.record(session, actor(request, user), "sign_out")
    auth.end_sessions(user)  # (a copy of this session's cookie stops working too)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(request: Request) -> RedirectResponse:
    return RedirectResponse("/conversations" if request.session.get("user_id") else "/login")


NUMBER = r"^(\d{1,9}(\.\d{1,3})?)?$"  # an optional non-negative number, as typed in a form


def _number(value: str | None) -> float | None:
    return float(value) if value else None


@dataclass
class ListQuery:
    """The search, filters and sort of the conversation list, as typed in its form."""

    form: dict[str, Any]
    filters: search.Filters


def list_query(
    q: Annotated[str | None, Query(max_length=200)] = None,
    by: Annotated[str, Query(pattern="^(words|meaning|both)$")] = "words",
    agent: Annotated[str | None, Query(pattern=r"^\d{0,18}$")] = None,
    queue: Annotated[str | None, Query(pattern=r"^\d{0,18}$")] = None,
    sentiment: Annotated[str | None, Query(pattern="^(positive|neutral|negative)?$")] = None,
    start: str | None = None,
    end: str | None = None,
    min_minutes: Annotated[str | None, Query(pattern=NUMBER)] = None,
    max_minutes: Annotated[str | None, Query(pattern=NUMBER)] = None,
    min_talk: Annotated[str | None, Query(pattern=NUMBER)] = None,
    max_talk: Annotated[str | None, Query(pattern=NUMBER)] = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
    sort: Annotated[str, Query(pattern="^-?(started_at|duration|sentiment)$")] = "-started_at",
) -> ListQuery:
    low, high = _number(min_minutes), _number(max_minutes)
    return ListQuery(
        form={
            "q": q,
            "by": by if by != "words" else None,
            "agent": agent,
            "queue": queue,
            "sentiment": sentiment,
            "start": start,
            "end": end,
            "min_minutes": min_minutes,
            "max_minutes": max_minutes,
            "min_talk": min_talk,
            "max_talk": max_talk,
            "category": category,
            "sort": sort,
        },
        filters=search.Filters(
            q=q if by != "meaning" else None,
            like=((q or "").strip() or None) if by != "words" else None,
            agent_id=int(agent or 0),
            queue_id=int(queue or 0),
            sentiment=sentiment,
            start=day(start, "start"),
            end=day(end, "end"),
            min_duration_s=low * 60 if low is not None else None,
            max_duration_s=high * 60 if high is not None else None,
            min_agent_talk_pct=_number(min_talk),
            max_agent_talk_pct=_number(max_talk),
            category=category or None,
            sort=sort,
        ),
    )


ListQueryDep = Annotated[ListQuery, Depends(list_query)]


@router.get("/conversations")
def conversation_list(
    request: Request,
    session: SessionDep,
    user: PageUser,
    listed: ListQueryDep,
    page: PageNumber = 1,
) -> HTMLResponse:
    """Closed conversations the user may see: searched, filtered, sorted and paged."""
    words_off = None
    try:
        results = search.find(
            session, user, listed.filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
    except search.SearchWithheld:  # (a link from before viewing was switched off)
        results, words_off = search.Results(0), listed.form["q"]
    visible_ids = visible_conversations(user).with_only_columns(Conversation.id)
    agents = session.scalars(
        select(Agent)
        .where(
            Agent.id.in_(
                select(Conversation.primary_agent_id).where(Conversation.id.in_(visible_ids))
            )
        )
        .order_by(Agent.name)
    ).all()
    queues = session.scalars(
        select(Queue)
        .where(Queue.id.in_(select(Conversation.queue_id).where(Conversation.id.in_(visible_ids))))
        .order_by(Queue.name)
    ).all()
    filters = listed.form
    return render(
        request,
        "conversations.html",
        user,
        hits=results.hits,
        words_searchable=policy.get(session, "recordings.enabled"),
        words_off=words_off,
        agents=agents,
        queues=queues,
        categories=session.scalars(select(Category.name).order_by(Category.name)).all(),
        filters=filters,
        query=list_link(filters, page),
        total=results.total,
        total_is_exact=results.total_is_exact,
        page=page,
        pages=max(1, -(-results.total // PAGE_SIZE)) if results.total_is_exact else None,
        has_next=page * PAGE_SIZE < results.total
        if results.total_is_exact
        else len(results.hits) == PAGE_SIZE,
    )


@router.get("/conversations/export.csv")
def export_list(
    request: Request, session: SessionDep, user: PageUser, listed: ListQueryDep
) -> Response:
    """The listed conversations' metrics as CSV (the list's search and filters, ≤ 10 000)."""
    return metrics_csv_response(session, actor(request, user), user, listed.filters)


@router.get("/conversations/{conversation_id}")
def conversation_page(
    request: Request,
    conversation_id: Id,
    session: SessionDep,
    user: PageUser,
    form: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> HTMLResponse:
    """One conversation: overview, details (player and transcript), metrics, sessions."""
    conv = visible_conversation(session, user, conversation_id)
    shown = document.view(session, actor(request, user), user, conv, form)
    return render(request, "conversation.html", user, **shown)


@router.post("/conversations/{conversation_id}/played", status_code=204)
def played(request: Request, conversation_id: Id, session: SessionDep, user: PageUser) -> Response:
    """The page reports the first play of its view, for the audit log."""
    conv = visible_conversation(session, user, conversation_id)
    audit.record(session, actor(request, user), "recording.play", "conversation", conv.id)
    return Response(status_code=204)


@router.post("/conversations/{conversation_id}/swap-speakers")
def swap_speakers(
    request: Request, conversation_id: Id, session: SessionDep, user: PageUser
) -> RedirectResponse:
    """Supervisors and administrators correct a call whose agent and customer came out swapped."""
    conv = correct_speakers(request, session, user, conversation_id)
    return done(request, f"/conversations/{conv.id}", N_("Agent and customer swapped."))


@router.post("/conversations/{conversation_id}/comments")
def add_comment(
    request: Request,
    conversation_id: Id,
    session: SessionDep,
    user: PageUser,
    text: Annotated[str, Form(max_length=comments.MAX_CHARS)],
    at_s: Annotated[float, Form(ge=0)] = 0.0,
    reply_to: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
) -> RedirectResponse:
    """A comment at the player's current time, or a reply (anyone who may see the call)."""
    conv = visible_conversation(session, user, conversation_id)
    target = f"/conversations/{conv.id}#details"
    try:
        comments.add(session, actor(request, user), conv.id, at_s, text, reply_to)
    except errors.CallscopeError as exc:
        return refused(request, target, exc)
    return done(request, target, N_("Comment added."))


@router.post("/conversations/{conversation_id}/comments/{comment_id}/resolve")
def resolve_comment(
    request: Request,
    conversation_id: Id,
    comment_id: Id,
    session: SessionDep,
    user: PageUser,
    resolved: Annotated[bool, Form()] = True,
) -> RedirectResponse:
    """Resolve a comment's thread, or open it again."""
    conv = visible_conversation(session, user, conversation_id)
    target = f"/conversations/{conv.id}#details"
    try:
        comments.resolve(session, actor(request, user), user, conv.id, comment_id, resolved)
    except errors.CallscopeError as exc:
        return refused(request, target, exc)
    return done(request, target)


@router.get("/contacts/{contact_id}")
def contact_page(
    request: Request, contact_id: Id, session: SessionDep, user: PageUser
) -> HTMLResponse:
    """A customer and the timeline of their conversations the user may see."""
    conversations = session.execute(
        visible_conversations(user)
        .add_columns(ConversationAnalysis)
        .outerjoin(ConversationAnalysis, ConversationAnalysis.conversation_id == Conversation.id)
        .where(Conversation.contact_id == contact_id)
        .order_by(Conversation.started_at.desc())
    ).all()
    contact = session.get(Contact, contact_id)
    if contact is None or not conversations:
        raise errors.NotFound(N_("contact %(id)s not found"), id=contact_id)
    return render(request, "contact.html", user, contact=contact, conversations=conversations)


DASHBOARD_TRENDS = ("customer_sentiment", "average_handle_s", "agent_talk_pct")


def _with_results(query: Select[Any]) -> Select[Any]:
    """The latest 20 conversations of QUERY with their results."""
    return (
        query.add_columns(ConversationAnalysis)
        .outerjoin(ConversationAnalysis, ConversationAnalysis.conversation_id == Conversation.id)
        .order_by(Conversation.started_at.desc())
        .limit(20)
    )


@router.get("/dashboard")
def dashboard(request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    """An agent's recent calls and figures beside the team's; per agent for others. The figures
    are a scorecard's (the same sums), over the last DASHBOARD_DAYS days."""
    since = datetime.now(UTC) - timedelta(days=DASHBOARD_DAYS)
    recent = visible_conversations(user).where(Conversation.started_at >= since)
    shown: dict[str, Any] = {"days": DASHBOARD_DAYS, "agents": [], "trend": None, "mine": None}
    if access.may(user, Action.SEE_COLLEAGUES):
        names: dict[int, str] = {
            i: name for i, name in session.execute(select(Agent.id, Agent.name))
        }
        by_agent = scorecards.means(session, recent, Conversation.primary_agent_id)
        shown |= {
            "recent": session.execute(_with_results(recent)).all(),
            "team": scorecards.means(session, recent)[None],
            "agents": sorted((names[i], figures) for i, figures in by_agent.items() if i),
        }
    else:
        own = recent.where(Conversation.primary_agent_id == user.agent_id)
        card = scorecards.scorecard(session, user, user.agent.external_id if user.agent else None)
        weeks = (date.fromisoformat(card["from"]), date.fromisoformat(card["to"]))
        team_weeks = scorecards.team_weeks(session, user, *weeks)
        shown |= {
            "recent": session.execute(_with_results(own)).all(),
            "mine": scorecards.means(session, own)[None],
            "team": scorecards.team_means(session, user, since),
            "team_min_calls": scorecards.TEAM_MIN_CALLS,
            "trend": [
                c for c in charts.scorecard_charts(card, team_weeks) if c[0].key in DASHBOARD_TRENDS
            ],
        }
    return render(request, "dashboard.html", user, **shown)
