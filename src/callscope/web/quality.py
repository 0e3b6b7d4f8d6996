"""The quality pages: *To evaluate* (the calls sampled for a supervisor, and sampling more),
evaluating a call from its page, and the agent's acknowledgement or dispute."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from callscope import evaluations
from callscope.db.models import Queue, User
from callscope.errors import CallscopeError
from callscope.i18n import N_
from callscope.vocabulary import Role
from callscope.web import security
from callscope.web.deps import Id, SessionDep, actor, visible_conversation
from callscope.web.pages import PageUser, done, refused, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(security.csrf_protect)])


@router.post("/conversations/{conversation_id}/evaluations")
async def evaluate(
    request: Request, conversation_id: Id, session: SessionDep, user: PageUser
) -> RedirectResponse:
    """The Evaluation tab's form: `answer-ID`, `reason-ID` and `comment-ID` per question."""
    conv = visible_conversation(session, user, conversation_id)
    target = f"/conversations/{conv.id}#evaluation"
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
    try:
        evaluations.evaluate(
            session,
            actor(request, user),
            user,
            conv.id,
            int(form_id) if form_id.isdigit() else form_id,
            answers,
            comments,
            reasons,
        )
    except CallscopeError as exc:
        session.rollback()
        return refused(request, target, exc)
    return done(request, target, N_("Evaluation submitted."))


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
        return refused(request, target, exc)
    return done(request, target, N_("Saved."))


def require_reviewer(user: User) -> None:
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
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
) -> RedirectResponse:
    require_reviewer(user)
    try:
        evaluations.sample(session, actor(request, user), per_agent, days, queue or None, weighted)
    except CallscopeError as exc:
        session.rollback()
        return refused(request, "/evaluations", exc)
    return done(request, "/evaluations", N_("Calls sampled for evaluation."))
