"""Quality evaluations (docs/metrics.md#evaluation-score): versioned forms of weighted
questions, some answered automatically from categories and conditions with their evidence;
evaluations by supervisors, every override of an automatic answer kept with who and why; the
agent's acknowledgement or dispute. Audited."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from callscope import errors
from callscope.db.models import (
    Category,
    CategoryMatch,
    Conversation,
    ConversationAnalysis,
    Evaluation,
    EvaluationAssignment,
    EvaluationForm,
    Queue,
    User,
    category_named,
    utcnow,
)
from callscope.governance import access, audit, policy
from callscope.governance.access import Action, visible_conversations
from callscope.i18n import N_
from callscope.measures.sentiment import TREND_STEP
from callscope.review import categories, scorecells
from callscope.vocabulary import UNSURE_BELOW, Review, Status

ANSWERS = {"yes_no": ("yes", "no", "na"), "scale_5": (1, 2, 3, 4, 5, "na")}


class EvaluationError(errors.Refused):
    """A form or an evaluation that cannot be kept; the message names the field."""


class UnknownForm(EvaluationError, errors.NotFound):
    """No evaluation form of that name or id."""


class UnknownEvaluation(EvaluationError, errors.NotFound):
    """No evaluation with that id that the caller may see."""


class NotYours(errors.NotAllowed):
    """What the caller's role or relation to the call does not allow."""


class Automatic(BaseModel):
    """How a question is answered without a person: a category matched (or absent), or a
    condition on metrics and sentiment (those of categories)."""

    model_config = ConfigDict(extra="forbid")
    category: str | None = Field(None, max_length=100)
    when: Literal["matched", "absent"] = "matched"
    condition: categories.Conditions | None = None

    @model_validator(mode="after")
    def _one(self) -> Automatic:
        if (self.category is None) == (self.condition is None):
            raise ValueError("give a category or a condition (one of them)")
        return self


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,50}$")
    text: str = Field(min_length=1, max_length=500)
    type: Literal["yes_no", "scale_5"]
    weight: float = Field(gt=0, le=1000)
    auto: Automatic | None = None


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    questions: list[Question] = Field(min_length=1, max_length=100)


class Form(BaseModel):
    """A form as imported (`callscope forms import`, `POST /api/v1/evaluation-forms`)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    sections: list[Section] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _unique_ids(self) -> Form:
        seen: set[str] = set()
        for i, section in enumerate(self.sections):
            for j, question in enumerate(section.questions):
                if question.id in seen:
                    raise ValueError(
                        f"sections[{i}].questions[{j}].id: duplicate question id {question.id!r}"
                    )
                seen.add(question.id)
        return self

    def questions(self) -> list[Question]:
        return [q for section in self.sections for q in section.questions]


def _problems(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]).lstrip(".")
        parts.append((f"{where}: " if where else "") + e["msg"].removeprefix("Value error, "))
    return "; ".join(parts)


def import_form(session: Session, actor: audit.Actor, raw: Any) -> EvaluationForm:
    """A new version of the form named in RAW (version 1 for a new name); refused whole, the
    field named, when anything is off. Audited."""
    try:
        form = Form.model_validate(raw)
    except ValidationError as exc:
        raise EvaluationError(f"invalid form: {_problems(exc)}") from exc
    for i, section in enumerate(form.sections):
        for j, question in enumerate(section.questions):
            named = question.auto.category if question.auto else None
            if named is not None and category_named(session, named) is None:
                raise EvaluationError(
                    f"invalid form: sections[{i}].questions[{j}].auto.category: "
                    f"no category named {named!r}"
                )
    version = (
        session.scalar(
            select(func.max(EvaluationForm.version)).where(EvaluationForm.name == form.name)
        )
        or 0
    ) + 1
    row = EvaluationForm(name=form.name, version=version, definition=form.model_dump())
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "evaluation_form.import",
        "evaluation_form",
        row.id,
        name=form.name,
        version=version,
    )
    return row


def latest_forms(session: Session) -> list[EvaluationForm]:
    """The newest version of every form, by name."""
    newest = (
        select(EvaluationForm.name, func.max(EvaluationForm.version).label("version"))
        .group_by(EvaluationForm.name)
        .subquery()
    )
    return list(
        session.scalars(
            select(EvaluationForm)
            .join(
                newest,
                (EvaluationForm.name == newest.c.name)
                & (EvaluationForm.version == newest.c.version),
            )
            .order_by(EvaluationForm.name)
        )
    )


def find_form(session: Session, ident: str | int) -> EvaluationForm:
    """The newest version of the form named IDENT, or the form version with that id."""
    if isinstance(ident, int):
        form = session.get(EvaluationForm, ident)
    else:
        form = session.scalar(
            select(EvaluationForm)
            .where(EvaluationForm.name == ident)
            .order_by(EvaluationForm.version.desc())
            .limit(1)
        )
    if form is None:
        raise UnknownForm(f"form: no evaluation form {ident!r}")
    return form


def form_dict(form: EvaluationForm) -> dict[str, Any]:
    return {"id": form.id, "version": form.version, **form.definition}


# --- answering ----------------------------------------------------------------------------


def automatic_answers(session: Session, form: Form, conversation_id: int) -> dict[str, Any]:
    """The questions the call answers by itself: {id: {"value", "evidence"}}, the evidence
    being the matched moments of the category (none for absence or a condition). Where the
    transcript is uncertain, what rests on its words (a category, the customer's sentiment) is
    left for the evaluator: a misheard word would decide it."""
    matched = {
        name.casefold(): moments  # (a form names a category in any case, as category_named)
        for name, moments in session.execute(
            select(Category.name, CategoryMatch.matches)
            .join(CategoryMatch, CategoryMatch.category_id == Category.id)
            .where(CategoryMatch.conversation_id == conversation_id)
        )
    }
    result = session.get(ConversationAnalysis, conversation_id)
    found: dict[str, Any] = {}
    for question in form.questions():
        auto = question.auto
        if auto is None or (unsure_of(result) and rests_on_words(auto)):
            continue
        if auto.category is not None:
            moments = matched.get(auto.category.strip().casefold())
            holds = (moments is not None) == (auto.when == "matched")
            evidence = moments or []
        else:
            assert auto.condition is not None
            holds = result is not None and categories.holds(
                auto.condition, result.metrics or {}, result.sentiment or {}
            )
            evidence = []
        if question.type == "yes_no":
            value: Any = "yes" if holds else "no"
        else:
            value = 5 if holds else 1
        found[question.id] = {"value": value, "evidence": evidence}
    return found


def unsure_of(result: ConversationAnalysis | None) -> bool:
    """The call's words were recognised with little confidence."""
    confidence = result.confidence if result is not None else None
    return confidence is not None and confidence < UNSURE_BELOW


def rests_on_words(auto: Automatic) -> bool:
    """AUTO decides from what was said (a category, or the customer's sentiment), not from
    timing alone."""
    condition = auto.condition
    return auto.category is not None or (
        condition is not None
        and (condition.customer_sentiment is not None or condition.customer_trend is not None)
    )


def points(question: Question, value: Any) -> float | None:
    """What an answer earns, 0–1 (None: not applicable)."""
    if value == "na":
        return None
    if question.type == "yes_no":
        return 1.0 if value == "yes" else 0.0
    return (int(value) - 1) / 4


def score(form: Form, answers: dict[str, Any]) -> float | None:
    """The weighted share of points earned over the questions answered (N/A and unanswered
    left out), in percent; None when none is answered."""
    earned = weights = 0.0
    for question in form.questions():
        if question.id not in answers:
            continue
        got = points(question, answers[question.id])
        if got is None:
            continue
        earned += question.weight * got
        weights += question.weight
    return round(100 * earned / weights, 1) if weights else None


def _checked(
    session: Session,
    user: User,
    conversation_id: int,
    form_ident: str | int,
    given: dict[str, dict[str, Any]],
) -> tuple[EvaluationForm, Form]:
    """The form USER evaluates the call against, once USER may evaluate it and every answer,
    comment and reason in GIVEN (by field) fits the form; refused naming the field if not."""
    if not access.may(user, Action.EVALUATE):
        raise NotYours("only supervisors and administrators evaluate calls")
    conv = session.get_one(Conversation, conversation_id)
    if took_part(user, conv):
        raise NotYours("nobody evaluates their own calls (nor one they took over or joined)")
    row = find_form(session, form_ident)
    form = Form.model_validate(row.definition)
    questions = {q.id: q for q in form.questions()}
    for field, values in given.items():
        for key in values:
            if key not in questions:
                raise EvaluationError(f"{field}.{key}: the form has no question {key!r}")
    for key, value in given["answers"].items():
        allowed = ANSWERS[questions[key].type]
        if isinstance(value, bool) or value not in allowed:
            raise EvaluationError(
                f"answers.{key}: {questions[key].type} takes "
                + ", ".join(map(str, allowed))
                + f", not {value!r}"
            )
    for key, text in {**given["comments"], **given["reasons"]}.items():
        if not isinstance(text, str) or len(text) > 2000:
            raise EvaluationError(f"{key}: a comment or reason is text of at most 2000 characters")
    return row, form


def _texts(values: dict[str, str]) -> dict[str, str]:
    return {k: v.strip() for k, v in values.items() if v.strip()}


def evaluate(
    session: Session,
    actor: audit.Actor,
    user: User,
    conversation_id: int,
    form_ident: str | int,
    answers: dict[str, Any],
    comments: dict[str, str] | None = None,
    reasons: dict[str, str] | None = None,
) -> Evaluation:
    """USER (a supervisor or administrator who may see the call) evaluates it against the
    form's newest version: the automatic answers filled in, each override of one kept with who
    and the reason given in REASONS; USER's draft of it is done with. Refused whole, the field
    named, when anything is off."""
    comments, reasons = comments or {}, reasons or {}
    row, form = _checked(
        session,
        user,
        conversation_id,
        form_ident,
        {"answers": answers, "comments": comments, "reasons": reasons},
    )
    automatic = automatic_answers(session, form, conversation_id)
    final, overrides = _final(form, automatic, answers, reasons, actor.name)
    session.execute(delete(Evaluation).where(_drafts_of(user, conversation_id)))
    evaluation = Evaluation(
        conversation_id=conversation_id,
        form_id=row.id,
        evaluator_id=user.id,
        evaluator=user.username,
        status=Review.SUBMITTED,
        answers=final,
        automatic=automatic,
        overrides=overrides,
        comments=_texts(comments),
        score_pct=score(form, final),
    )
    session.add(evaluation)
    session.flush()
    scorecells.mark(session, [conversation_id])  # the weeks it counts in (as refresh.counted)
    audit.record(
        session,
        actor,
        "evaluation.submit",
        "conversation",
        conversation_id,
        evaluation=evaluation.id,
        score_pct=evaluation.score_pct,
    )
    return evaluation


def _final(
    form: Form,
    automatic: dict[str, Any],
    answers: dict[str, Any],
    reasons: dict[str, str],
    by: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every question's answer (the AUTOMATIC ones where ANSWERS leaves them), and each
    override of an automatic answer with BY and its reason; refused naming the question when
    an override has no reason or a question has no answer."""
    questions = {q.id: q for q in form.questions()}
    overrides = {}
    final = {key: found["value"] for key, found in automatic.items()}
    for key, value in answers.items():
        if key in automatic and value != automatic[key]["value"]:
            why = reasons.get(key, "").strip()
            if not why:
                raise EvaluationError(
                    N_("say why the automatic answer “%(was)s” to “%(question)s” is changed"),
                    field=f"reasons.{key}",
                    was=automatic[key]["value"],
                    question=questions[key].text,
                )
            overrides[key] = {"automatic": automatic[key]["value"], "by": by, "why": why}
        final[key] = value
    for key, question in questions.items():
        if final.get(key) is None:
            raise EvaluationError(
                N_("answer “%(question)s”, or mark it N/A"),
                field=f"answers.{key}",
                question=question.text,
            )
    return final, overrides


def may_amend(session: Session, user: User, evaluation: Evaluation) -> bool:
    """Whether USER may amend the evaluation: its own evaluator, while it is disputed or
    within the days the `evaluations.amend_days` setting gives after submitting."""
    if evaluation.evaluator_id != user.id or not access.may(user, Action.EVALUATE):
        return False
    if evaluation.status == Review.DISPUTED:
        return True
    days = policy.get(session, "evaluations.amend_days")
    return evaluation.status != Review.DRAFT and utcnow() - evaluation.created_at <= timedelta(
        days=days
    )


def amend(
    session: Session,
    actor: audit.Actor,
    user: User,
    evaluation: Evaluation,
    why: str,
    answers: dict[str, Any],
    comments: dict[str, str] | None = None,
    reasons: dict[str, str] | None = None,
) -> Evaluation:
    """USER, the evaluation's evaluator, changes its answers, comments and override reasons
    (against the same form version and automatic answers) saying WHY: audited with the answers
    and score before and after, the scorecard's weeks counted again. A disputed evaluation is
    answered by it (WHY its answer); any other goes back to the agent to acknowledge or
    dispute. Refused whole, the field named."""
    if not may_amend(session, user, evaluation):
        days = policy.get(session, "evaluations.amend_days")
        raise NotYours(
            "only its evaluator amends an evaluation, while it is disputed or within "
            f"{days} days of submitting it"
        )
    why = why.strip()
    if not why or len(why) > 2000:
        raise EvaluationError(
            N_("say why you amend the evaluation (at most 2000 characters)"), field="why"
        )
    comments, reasons = comments or {}, reasons or {}
    _row, form = _checked(
        session,
        user,
        evaluation.conversation_id,
        evaluation.form_id,
        {"answers": answers, "comments": comments, "reasons": reasons},
    )
    final, overrides = _final(form, evaluation.automatic, answers, reasons, actor.name)
    before = {"answers": evaluation.answers, "score_pct": evaluation.score_pct}
    evaluation.answers, evaluation.overrides = final, overrides
    evaluation.comments = _texts(comments)
    evaluation.score_pct = score(form, final)
    evaluation.amended_at, evaluation.amended_why = utcnow(), why
    if evaluation.status == Review.DISPUTED:
        evaluation.status, evaluation.answer = Review.ANSWERED, why
        evaluation.answered_at = evaluation.amended_at
    else:
        evaluation.status = Review.SUBMITTED
    scorecells.mark(session, [evaluation.conversation_id])
    audit.record(
        session,
        actor,
        "evaluation.amend",
        "conversation",
        evaluation.conversation_id,
        evaluation=evaluation.id,
        why=why,
        before=before,
        after={"answers": final, "score_pct": evaluation.score_pct},
    )
    return evaluation


def _drafts_of(user: User, conversation_id: int) -> Any:
    return (
        (Evaluation.conversation_id == conversation_id)
        & (Evaluation.evaluator_id == user.id)
        & (Evaluation.status == Review.DRAFT)
    )


def draft(session: Session, user: User, conversation_id: int) -> Evaluation | None:
    """USER's draft evaluation of the call, if there is one."""
    return session.scalar(select(Evaluation).where(_drafts_of(user, conversation_id)))


def draft_dict(found: Evaluation) -> dict[str, Any]:
    """A draft as it was saved: the form, answers, comments and reasons by question."""
    return {
        "form_id": found.form_id,
        "answers": found.answers,
        "comments": found.comments,
        "reasons": {key: value["why"] for key, value in found.overrides.items()},
        "saved_at": _iso(found.created_at),
    }


def save_draft(
    session: Session,
    user: User,
    conversation_id: int,
    form_ident: str | int,
    answers: dict[str, Any],
    comments: dict[str, str] | None = None,
    reasons: dict[str, str] | None = None,
) -> Evaluation:
    """Keep what USER has filled in so far (checked as a submission is, but for the reasons
    an override needs): one draft per evaluator and call, replaced each time, seen by nobody
    else and counted nowhere until it is submitted."""
    comments, reasons = comments or {}, reasons or {}
    row, _form = _checked(
        session,
        user,
        conversation_id,
        form_ident,
        {"answers": answers, "comments": comments, "reasons": reasons},
    )
    found = draft(session, user, conversation_id) or Evaluation(
        conversation_id=conversation_id,
        evaluator_id=user.id,
        evaluator=user.username,
        status=Review.DRAFT,
    )
    found.form_id = row.id
    found.answers = dict(answers)
    found.comments = _texts(comments)
    found.overrides = {key: {"why": why} for key, why in _texts(reasons).items()}
    found.created_at = utcnow()
    session.add(found)
    session.flush()
    return found


def respond(
    session: Session,
    actor: audit.Actor,
    user: User,
    evaluation: Evaluation,
    disputed: bool,
    comment: str,
) -> Evaluation:
    """The evaluated agent acknowledges the evaluation, or disputes it with a comment."""
    conv = session.get_one(Conversation, evaluation.conversation_id)
    if user.agent_id is None or conv.primary_agent_id != user.agent_id:
        raise NotYours("only the agent of the call acknowledges or disputes its evaluation")
    comment = comment.strip()
    if disputed and not comment:
        raise EvaluationError(N_("say what is disputed"), field="comment")
    if len(comment) > 2000:
        raise EvaluationError("comment: at most 2000 characters")
    evaluation.status = Review.DISPUTED if disputed else Review.ACKNOWLEDGED
    evaluation.response = comment or None
    evaluation.responded_at = utcnow()
    audit.record(
        session,
        actor,
        "evaluation.dispute" if disputed else "evaluation.acknowledge",
        "conversation",
        conv.id,
        evaluation=evaluation.id,
    )
    return evaluation


def answer(
    session: Session, actor: audit.Actor, user: User, evaluation: Evaluation, comment: str
) -> Evaluation:
    """A supervisor or administrator answers the agent's dispute."""
    if not access.may(user, Action.ANSWER_DISPUTE):
        raise NotYours("only supervisors and administrators answer a dispute")
    if evaluation.status != Review.DISPUTED:
        raise EvaluationError(f"status: the evaluation is {evaluation.status}, not disputed")
    comment = comment.strip()
    if not comment or len(comment) > 2000:
        raise EvaluationError(N_("write the answer (at most 2000 characters)"), field="comment")
    evaluation.status, evaluation.answer = Review.ANSWERED, comment
    evaluation.answered_at = utcnow()
    audit.record(
        session,
        actor,
        "evaluation.answer",
        "conversation",
        evaluation.conversation_id,
        evaluation=evaluation.id,
    )
    return evaluation


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def unquoted(automatic: dict[str, Any]) -> dict[str, Any]:
    """Automatic answers without the words of their evidence (its moments stay): where the
    transcript is withheld or purged, what quotes it is too."""
    return {
        key: {**answer, "evidence": [{**m, "text": None} for m in answer.get("evidence") or []]}
        for key, answer in automatic.items()
    }


def as_dict(session: Session, evaluation: Evaluation, withheld: bool = False) -> dict[str, Any]:
    """An evaluation with its form's questions, answers, evidence, overrides and comments; when
    WITHHELD (the caller may not have the transcript's words), its evidence without words."""
    automatic = unquoted(evaluation.automatic) if withheld else evaluation.automatic
    row = session.get_one(EvaluationForm, evaluation.form_id)
    form = Form.model_validate(row.definition)
    return {
        "id": evaluation.id,
        "conversation_id": evaluation.conversation_id,
        "form": {"id": row.id, "name": row.name, "version": row.version},
        "evaluator": evaluation.evaluator,
        "status": evaluation.status,
        "score_pct": evaluation.score_pct,
        "answers": [
            {
                "id": q.id,
                "section": section.title,
                "text": q.text,
                "type": q.type,
                "weight": q.weight,
                "value": evaluation.answers.get(q.id),
                "automatic": automatic.get(q.id),
                "override": evaluation.overrides.get(q.id),
                "comment": evaluation.comments.get(q.id),
            }
            for section in form.sections
            for q in section.questions
        ],
        "response": evaluation.response,
        "answer": evaluation.answer,
        "created_at": _iso(evaluation.created_at),
        "responded_at": _iso(evaluation.responded_at),
        "answered_at": _iso(evaluation.answered_at),
        "amended_at": _iso(evaluation.amended_at),
        "amended_why": evaluation.amended_why,
    }


# --- sampling -------------------------------------------------------------------------------


def _weight(
    sentiment: dict[str, Any] | None, weighted: bool, risks: list[str]
) -> tuple[float, list[str]]:
    """How much likelier a call is drawn, and why: when sampling is WEIGHTED, a negative
    customer ("negative") and a falling trend ("falling") each make it more so; matching a risk
    category named in RISKS ("risk:NAME") more."""
    felt = sentiment or {}
    weight, why = 1.0, list[str]()
    if weighted and (felt.get("customer") or {}).get("label") == "negative":
        weight += 2.0
        why.append("negative")
    if weighted and (felt.get("trend") or 0.0) <= -TREND_STEP:
        weight += 1.0
        why.append("falling")
    if risks:
        weight += 3.0
        why += [f"risk:{name}" for name in risks]
    return weight, why


def took_part(user: User, conv: Conversation) -> bool:
    """USER, linked to an agent, was an agent of CONV: its first, or one it was transferred
    to or who joined it."""
    agents = {conv.primary_agent_id, *(s.agent_id for s in conv.sessions)}
    return user.agent_id is not None and user.agent_id in agents


def sample(
    session: Session,
    actor: audit.Actor,
    per_agent: int,
    days: int,
    queue: str | None = None,
    weighted: bool = False,
    rng: random.Random | None = None,
    risk: list[str] | None = None,
) -> dict[str, int]:
    """Assign PER_AGENT processed calls of each agent from the last DAYS days (of QUEUE, if
    named), not evaluated or assigned yet, drawn at random (WEIGHTED: towards negative customers
    and falling trends; and towards calls matching a category named in RISK), to a supervisor
    of each call's queue who took no part in it (the one with the fewest calls waiting).
    Returns how many each supervisor got; audited."""
    if not 1 <= per_agent <= 100:
        raise EvaluationError("per_agent: 1 to 100 calls")
    if not 1 <= days <= 366:
        raise EvaluationError("days: 1 to 366")
    rng = rng or random.Random()
    risk_ids = []
    for name in risk or []:
        found = session.scalar(select(Category.id).where(Category.name == name))
        if found is None:
            raise EvaluationError(f"risk: no category named {name!r}")
        risk_ids.append(found)
    risks: dict[int, list[str]] = {}
    for conv_id, name in session.execute(
        select(CategoryMatch.conversation_id, Category.name)
        .join(Category, Category.id == CategoryMatch.category_id)
        .where(CategoryMatch.category_id.in_(risk_ids))
        .distinct()
        .order_by(Category.name)
    ):
        risks.setdefault(conv_id, []).append(name)
    taken = select(Evaluation.conversation_id).union(select(EvaluationAssignment.conversation_id))
    query = (
        select(Conversation, ConversationAnalysis.sentiment)
        .join(ConversationAnalysis, ConversationAnalysis.conversation_id == Conversation.id)
        .where(
            Conversation.processing_status == Status.PROCESSED,
            Conversation.primary_agent_id.is_not(None),
            Conversation.started_at >= utcnow() - timedelta(days=days),
            Conversation.id.not_in(taken),
        )
    )
    if queue is not None:
        queue_id = session.scalar(select(Queue.id).where(Queue.name == queue))
        if queue_id is None:
            raise EvaluationError(f"queue: no queue named {queue!r}")
        query = query.where(Conversation.queue_id == queue_id)
    by_agent: dict[int, list[tuple[Conversation, tuple[float, list[str]]]]] = {}
    for conv, sentiment in session.execute(query):
        assert conv.primary_agent_id is not None
        by_agent.setdefault(conv.primary_agent_id, []).append(
            (conv, _weight(sentiment, weighted, risks.get(conv.id, [])))
        )
    supervisors: dict[int | None, list[User]] = {}
    waiting = Counter(session.scalars(select(EvaluationAssignment.supervisor_id)))
    given: Counter[str] = Counter()
    for agent_id in sorted(by_agent):
        pool = by_agent[agent_id]
        # (weighted drawing without replacement: each call's key is u^(1/weight))
        drawn = sorted(pool, key=lambda pair: rng.random() ** (1 / pair[1][0]), reverse=True)
        for conv, (_weight_of, why) in drawn[:per_agent]:
            if conv.queue_id not in supervisors:
                supervisors[conv.queue_id] = list(
                    session.scalars(access.supervisors_of(conv.queue_id))
                )
            candidates = [u for u in supervisors[conv.queue_id] if not took_part(u, conv)]
            if not candidates:
                given[
                    "(only a supervisor who took part in the call)"
                    if supervisors[conv.queue_id]
                    else "(no supervisor for the queue)"
                ] += 1
                continue
            supervisor = min(candidates, key=lambda u: (waiting[u.id], u.id))
            waiting[supervisor.id] += 1
            session.add(
                EvaluationAssignment(
                    conversation_id=conv.id, supervisor_id=supervisor.id, reasons=why
                )
            )
            given[supervisor.username] += 1
    audit.record(
        session,
        actor,
        "evaluation.sample",
        "list",
        None,
        per_agent=per_agent,
        days=days,
        queue=queue,
        weighted=weighted,
        risk=risk or [],
        assigned=sum(n for name, n in given.items() if not name.startswith("(")),
    )
    return dict(sorted(given.items()))


def to_evaluate(session: Session, user: User) -> list[tuple[Conversation, EvaluationAssignment]]:
    """The calls sampled for USER that USER has not evaluated yet and may still see, with
    their assignment (when, and why the call was drawn), oldest assignment first."""
    done = select(Evaluation.conversation_id).where(
        Evaluation.evaluator_id == user.id, Evaluation.status != Review.DRAFT
    )
    rows = session.execute(
        visible_conversations(user)  # (a queue taken from USER takes its calls too)
        .add_columns(EvaluationAssignment)
        .join(EvaluationAssignment, EvaluationAssignment.conversation_id == Conversation.id)
        .where(EvaluationAssignment.supervisor_id == user.id, Conversation.id.not_in(done))
        .order_by(EvaluationAssignment.id)
    )
    return [(conv, assigned) for conv, assigned in rows]


# --- who sees what ----------------------------------------------------------------------------


def _may_see(user: User, conv: Conversation) -> bool:
    """Whether USER may see the evaluations of CONV (a call USER may see): an agent only those
    of their own calls."""
    return access.may(user, Action.SEE_COLLEAGUES) or conv.primary_agent_id == user.agent_id


def visible(session: Session, user: User, conv: Conversation) -> list[Evaluation]:
    """The evaluations of CONV (a call USER may see) that USER may see."""
    if not _may_see(user, conv):
        return []
    return list(
        session.scalars(
            select(Evaluation)
            .where(Evaluation.conversation_id == conv.id, Evaluation.status != Review.DRAFT)
            .order_by(Evaluation.id)
        )
    )


def find_visible(session: Session, user: User, evaluation_id: int) -> Evaluation:
    """The evaluation if USER may see it (its call, and its agent's evaluations); as if it did
    not exist otherwise."""
    evaluation = session.get(Evaluation, evaluation_id)
    if evaluation is not None and evaluation.status != Review.DRAFT:
        conv = session.scalar(
            visible_conversations(user).where(Conversation.id == evaluation.conversation_id)
        )
        if conv is not None and _may_see(user, conv):
            return evaluation
    raise UnknownEvaluation(N_("evaluation %(id)s not found"), id=evaluation_id)


def panel(session: Session, user: User, conv: Conversation, form_id: int | None) -> dict:
    """What the conversation page's Evaluation tab shows USER: the call's evaluations, and for
    a supervisor or administrator the form to fill (FORM_ID, else the first), its automatic
    answers filled in."""
    withheld = not policy.get(session, "recordings.enabled")
    seen = visible(session, user, conv)
    shown = [as_dict(session, e, withheld) for e in seen]
    found: dict[str, Any] = {
        "evaluations": shown,
        "amendable": {e.id for e in seen if may_amend(session, user, e)},
        "forms": [],
        "form": None,
        "automatic": {},
        "unsure": [],
        "draft": None,
    }
    if access.may(user, Action.EVALUATE) and not took_part(user, conv):
        forms = latest_forms(session)
        found["forms"] = forms
        mine = draft(session, user, conv.id)
        wanted = form_id if form_id is not None else mine.form_id if mine else None
        chosen = next((f for f in forms if f.id == wanted), forms[0] if forms else None)
        if chosen is not None:
            form = Form.model_validate(chosen.definition)
            found["form"] = form_dict(chosen)
            automatic = automatic_answers(session, form, conv.id)
            found["automatic"] = unquoted(automatic) if withheld else automatic
            found["unsure"] = [
                q.id for q in form.questions() if q.auto is not None and q.id not in automatic
            ]
            if mine is not None and mine.form_id == chosen.id:
                found["draft"] = draft_dict(mine)
    found["agent_of_call"] = user.agent_id is not None and conv.primary_agent_id == user.agent_id
    # (USER's own evaluation stands above: a second one is asked for, not offered blank)
    found["evaluated"] = any(e["evaluator"] == user.username for e in shown)
    return found
