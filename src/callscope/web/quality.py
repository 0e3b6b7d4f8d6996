"""The quality pages: *To evaluate* (the calls sampled for a supervisor, and sampling more),
evaluating a call from its page, the agent's acknowledgement or dispute, and scorecards
(charts, a table and a CSV download)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select

from callscope.db.models import Agent, Category, Conversation, Queue, User
from callscope.errors import CallscopeError
from callscope.governance import access, audit
from callscope.governance.access import Action, visible_conversations
from callscope.i18n import N_
from callscope.review import evaluations, exports, scorecards, themes
from callscope.web import charts, security
from callscope.web.deps import Id, SessionDep, actor, visible_conversation
from callscope.web.errors import status_of
from callscope.web.ui import PageUser, done, refused, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(security.csrf_protect)])


async def _filled(
    request: Request,
) -> tuple[str | int, dict[str, Any], dict[str, str], dict[str, str]]:
    """The Evaluation tab's form as sent: the form's id, and `answer-ID`, `comment-ID` and
    `reason-ID` per question."""
    fields = await request.form()
    form_id = str(fields.get("form_id", ""))
    answers: dict[str, Any] = {}
    comments: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for key, value in fields.items():
        if not isinstance(value, str) or "-" not in key:
            continue
        kind, question = key.split("-", 1)
        if kind == "answer" and value:
            answers[question] = int(value) if value.isdigit() else value
        elif kind == "comment" and value.strip():
            comments[question] = value
        elif kind == "reason" and value.strip():
            reasons[question] = value
    return (int(form_id) if form_id.isdigit() else form_id), answers, comments, reasons


def _control(exc: CallscopeError) -> str | None:
    """The field of the Evaluation tab's forms a refusal is about (`reasons.greet` is the
    control `reason-greet`)."""
    kind, _, question = (exc.field or "").partition(".")
    return f"{kind.removesuffix('s')}-{question}" if question else exc.field


@router.post("/conversations/{conversation_id}/evaluations")
async def evaluate(
    request: Request, conversation_id: Id, session: SessionDep, user: PageUser
) -> RedirectResponse:
    """The Evaluation tab's form, submitted."""
    conv = visible_conversation(session, user, conversation_id)
    target = f"/conversations/{conv.id}#evaluation"
    filled = await _filled(request)
    try:
        evaluations.evaluate(session, actor(request, user), user, conv.id, *filled)
    except CallscopeError as exc:
        session.rollback()
        try:  # what was typed is kept, as a draft, for the page to show again
            evaluations.save_draft(session, user, conv.id, *filled)
            session.commit()
        except CallscopeError:
            session.rollback()
        return refused(request, target, exc, _control(exc))
    return done(request, target, N_("Evaluation submitted."))


@router.post("/conversations/{conversation_id}/evaluations/draft")
async def save_draft(
    request: Request, conversation_id: Id, session: SessionDep, user: PageUser
) -> Response:
    """The Evaluation tab's form kept as a draft: as the supervisor goes (the page's script
    asks for JSON: the draft, or `{"detail"}` with the refusal's status), or by its button."""
    conv = visible_conversation(session, user, conversation_id)
    target = f"/conversations/{conv.id}#evaluation"
    script = "application/json" in request.headers.get("accept", "")
    try:
        kept = evaluations.save_draft(session, user, conv.id, *await _filled(request))
    except CallscopeError as exc:
        session.rollback()
        if script:
            return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))
        return refused(request, target, exc)
    if script:
        return JSONResponse(evaluations.draft_dict(kept))
    return done(request, target, N_("Draft saved."))


@router.post("/evaluations/{evaluation_id}/respond")
def respond(
    request: Request,
    evaluation_id: Id,
    session: SessionDep,
    user: PageUser,
    decision: Annotated[str, Form(pattern="^(acknowledge|dispute|answer)$")],
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> RedirectResponse:
    """The agent acknowledges or disputes; a supervisor answers a dispute."""
    evaluation = evaluations.find_visible(session, user, evaluation_id)
    target = f"/conversations/{evaluation.conversation_id}#evaluation"
    try:
        if decision == "answer":
            evaluations.answer(session, actor(request, user), user, evaluation, comment)
        else:
            evaluations.respond(
                session, actor(request, user), user, evaluation, decision == "dispute", comment
            )
    except CallscopeError as exc:
        session.rollback()
        return refused(request, target, exc, _control(exc))
    return done(request, target, N_("Saved."))


@router.post("/evaluations/{evaluation_id}/amend")
async def amend(
    request: Request, evaluation_id: Id, session: SessionDep, user: PageUser
) -> RedirectResponse:
    """An evaluation's Amend form: its evaluator's answers afresh, and why."""
    evaluation = evaluations.find_visible(session, user, evaluation_id)
    target = f"/conversations/{evaluation.conversation_id}#evaluation"
    _form, answers, comments, reasons = await _filled(request)
    why = str((await request.form()).get("why", ""))
    try:
        evaluations.amend(
            session, actor(request, user), user, evaluation, why, answers, comments, reasons
        )
    except CallscopeError as exc:
        session.rollback()
        return refused(request, target, exc, _control(exc))
    return done(request, target, N_("Evaluation amended."))


def require_reviewer(user: User) -> None:
    if not access.may(user, Action.EVALUATE):
        raise HTTPException(403, "only supervisors and administrators evaluate calls")


@router.get("/evaluations")
def to_evaluate(request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    """A supervisor's *To evaluate* list, and sampling more calls into it."""
    require_reviewer(user)
    return render(
        request,
        "evaluations.html",
        user,
        calls=evaluations.to_evaluate(session, user),
        queues=session.scalars(select(Queue.name).order_by(Queue.name)).all(),
        categories=session.scalars(select(Category.name).order_by(Category.name)).all(),
    )


@router.post("/evaluations/sample")
def sample(
    request: Request,
    session: SessionDep,
    user: PageUser,
    per_agent: Annotated[int, Form(ge=1, le=100)],
    days: Annotated[int, Form(ge=1, le=366)],
    queue: Annotated[str, Form(max_length=200)] = "",
    weighted: Annotated[bool, Form()] = False,
    risk: Annotated[list[str] | None, Form(max_length=50)] = None,
) -> RedirectResponse:
    require_reviewer(user)
    try:
        evaluations.sample(
            session, actor(request, user), per_agent, days, queue or None, weighted, None, risk
        )
    except CallscopeError as exc:
        session.rollback()
        return refused(request, "/evaluations", exc)
    return done(request, "/evaluations", N_("Calls sampled for evaluation."))


DAY = r"^(\d{4}-\d{2}-\d{2})?$"  # a day as a date field sends it, or nothing
NameText = Annotated[str, Query(max_length=200)]
FromText = Annotated[str, Query(alias="from", max_length=10, pattern=DAY)]
ToText = Annotated[str, Query(alias="to", max_length=10, pattern=DAY)]


def _asked(
    agent: NameText = "", queue: NameText = "", start: FromText = "", end: ToText = ""
) -> dict[str, str]:
    """What a scorecard page asks for, as its form sends it."""
    return {"agent": agent, "queue": queue, "start": start, "end": end}


Asked = Annotated[dict[str, str], Depends(_asked)]


def _card(
    session: SessionDep, user: User, agent: str, queue: str, start: str, end: str
) -> dict[str, Any]:
    """The scorecard a page asks for: an agent sees their own calls only."""
    if not access.may(user, Action.SEE_COLLEAGUES):
        agent, queue = (user.agent.external_id if user.agent else ""), ""
    try:
        first, last = (date.fromisoformat(d) if d else None for d in (start, end))
    except ValueError as exc:
        raise HTTPException(422, "from, to: a day as YYYY-MM-DD") from exc
    return scorecards.scorecard(session, user, agent or None, queue or None, first, last)


@router.get("/scorecards")
def scorecard(
    request: Request,
    session: SessionDep,
    user: PageUser,
    asked: Asked,
) -> Response:
    """An agent's (or a queue's, or every visible call's) weeks as charts and a table; an
    agent sees their own beside their team's."""
    try:
        card = _card(session, user, **asked)
    except CallscopeError as exc:
        return refused(request, "/scorecards", exc)
    team = None
    if not access.may(user, Action.SEE_COLLEAGUES):
        team = scorecards.team_weeks(
            session, user, date.fromisoformat(card["from"]), date.fromisoformat(card["to"])
        )
    seen = visible_conversations(user)
    return render(
        request,
        "scorecards.html",
        user,
        card=card,
        charts=charts.scorecard_charts(card, team),
        team_min_calls=scorecards.TEAM_MIN_CALLS,
        agents=session.execute(
            select(Agent.external_id, Agent.name)
            .where(Agent.id.in_(seen.with_only_columns(Conversation.primary_agent_id)))
            .order_by(Agent.name)
        ).all(),
        queues=session.scalars(
            select(Queue.name)
            .where(Queue.id.in_(seen.with_only_columns(Conversation.queue_id)))
            .order_by(Queue.name)
        ).all(),
        export=urlencode(
            {
                k: v
                for k, v in (
                    ("agent", asked["agent"]),
                    ("queue", asked["queue"]),
                    ("from", card["from"]),
                    ("to", card["to"]),
                )
                if v
            }
        ),
    )


@router.get("/themes")
def themes_page(request: Request, session: SessionDep, user: PageUser, asked: Asked) -> Response:
    """Why customers call: the themes of the calls the user may see, by queue and period."""
    try:
        first, last = (date.fromisoformat(d) if d else None for d in (asked["start"], asked["end"]))
    except ValueError as exc:
        raise HTTPException(422, "from, to: a day as YYYY-MM-DD") from exc
    seen = visible_conversations(user)
    queues = session.execute(
        select(Queue.id, Queue.name)
        .where(Queue.id.in_(seen.with_only_columns(Conversation.queue_id)))
        .order_by(Queue.name)
    ).all()
    queue_id = next((i for i, name in queues if name == asked["queue"]), None)
    withheld, found = None, None
    try:
        first, last = themes.period(first, last, date.today())
        found = themes.as_dict(themes.themes(session, user, queue_id, first, last))
    except themes.ThemesWithheld as exc:
        withheld = str(exc)
    except CallscopeError as exc:
        return refused(request, "/themes", exc)
    return render(
        request,
        "themes.html",
        user,
        found=found,
        withheld=withheld,
        queues=[name for _i, name in queues],
        queue=asked["queue"] if queue_id else "",
        start=first,
        end=last,
        export=urlencode(
            {
                k: v
                for k, v in (
                    ("queue", asked["queue"] if queue_id else ""),
                    ("from", str(first or "")),
                    ("to", str(last or "")),
                )
                if v
            }
        ),  # fmt: skip
    )


@router.get("/scorecards.csv")
def scorecard_csv(
    request: Request,
    session: SessionDep,
    user: PageUser,
    asked: Asked,
) -> Response:
    """The scorecard's weeks as a CSV download, written to the audit log."""
    try:
        card = _card(session, user, **asked)
    except CallscopeError as exc:
        raise HTTPException(422, str(exc)) from exc
    audit.record(
        session,
        actor(request, user),
        "scorecard.export",
        "scorecard",
        None,
        agent=card["agent"],
        queue=card["queue"],
        weeks=len(card["weeks"]),
    )
    name = f"{card['from']}-{card['to']}"
    return Response(
        exports.scorecard_csv(card),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="scorecard-{name}.csv"'},
    )
