"""Administration pages: users, API tokens, settings, the audit log, legal hold and erasure."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as FormFile  # (what a form read by hand holds)

from callscope import telemetry
from callscope.db.models import (
    ApiToken,
    Contact,
    Conversation,
    Queue,
    User,
    Webhook,
    WebhookDelivery,
)
from callscope.errors import CallscopeError, NotFound, Refused, TooLarge, read_json
from callscope.governance import access, admin, audit, auth, policy
from callscope.governance.access import Action
from callscope.i18n import N_
from callscope.processing import retention, transcripts, webhooks
from callscope.processing.ingest import Ingestor
from callscope.processing.metadata import MAX_METADATA_BYTES
from callscope.review import categories, evaluations, search
from callscope.vocabulary import Scope
from callscope.web import security
from callscope.web.deps import ContextDep, Id, PageNumber, SessionDep, actor
from callscope.web.ui import PageUser, day, done, list_link, refused, render
from callscope.web.upload import MAX_TRANSCRIPT_BYTES

AUDIT_PAGE_SIZE = 50


def admin_user(user: PageUser) -> User:
    """The signed-in user, who must be an administrator."""
    if not access.may(user, Action.ADMINISTER):
        raise HTTPException(403, "administrators only")
    return user


AdminUser = Annotated[User, Depends(admin_user)]
router = APIRouter(
    prefix="/admin", include_in_schema=False, dependencies=[Depends(security.csrf_protect)]
)


def outcome(
    request: Request, session: Session, target: str, action: Callable[[], object], message: str
) -> RedirectResponse:
    """Run an administrator ACTION; back to TARGET with MESSAGE, or with the reason it was
    refused and none of its changes kept."""
    try:
        action()
    except CallscopeError as exc:
        session.rollback()
        return refused(request, target, exc)
    return done(request, target, message)


# --- users ---------------------------------------------------------------------------------


@router.get("/users")
def users_page(request: Request, session: SessionDep, user: AdminUser) -> HTMLResponse:
    return render(
        request,
        "admin_users.html",
        user,
        users=session.scalars(select(User).order_by(User.username)).all(),
        queues=session.scalars(select(Queue).order_by(Queue.name)).all(),
        roles=auth.ROLES,
    )


@router.post("/users")
def create_user(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    username: Annotated[str, Form()],
    role: Annotated[str, Form()],
    password: Annotated[str, Form()],
    agent_id: Annotated[str, Form()] = "",
    queues: Annotated[list[int] | None, Form()] = None,
) -> RedirectResponse:
    return outcome(
        request,
        session,
        "/admin/users",
        lambda: admin.create_user(
            session, actor(request, user), username, role, password, agent_id, queues or []
        ),
        N_("User created."),
    )


def _account(session: Session, user_id: int) -> User:
    account = session.get(User, user_id)
    if account is None:
        raise NotFound(N_("user %(id)s not found"), id=user_id)
    return account


@router.get("/users/{user_id}")
def user_page(request: Request, user_id: Id, session: SessionDep, user: AdminUser) -> HTMLResponse:
    return render(
        request,
        "admin_user.html",
        user,
        account=_account(session, user_id),
        queues=session.scalars(select(Queue).order_by(Queue.name)).all(),
        roles=auth.ROLES,
    )


@router.post("/users/{user_id}")
def update_user(
    request: Request,
    user_id: Id,
    session: SessionDep,
    user: AdminUser,
    role: Annotated[str, Form()],
    agent_id: Annotated[str, Form()] = "",
    queues: Annotated[list[int] | None, Form()] = None,
) -> RedirectResponse:
    return outcome(
        request,
        session,
        f"/admin/users/{_account(session, user_id).id}",
        lambda: admin.update_user(
            session, actor(request, user), user_id, role, agent_id, queues or []
        ),
        N_("Saved."),
    )


@router.post("/users/{user_id}/password")
def set_password(
    request: Request,
    user_id: Id,
    session: SessionDep,
    user: AdminUser,
    password: Annotated[str, Form()],
) -> RedirectResponse:
    return outcome(
        request,
        session,
        f"/admin/users/{_account(session, user_id).id}",
        lambda: admin.set_password(session, actor(request, user), user_id, password),
        N_("Password set."),
    )


@router.post("/users/{user_id}/disabled")
def set_disabled(
    request: Request,
    user_id: Id,
    session: SessionDep,
    user: AdminUser,
    disabled: Annotated[bool, Form()],
) -> RedirectResponse:
    return outcome(
        request,
        session,
        f"/admin/users/{_account(session, user_id).id}",
        lambda: admin.set_disabled(session, actor(request, user), user_id, disabled),
        N_("User disabled.") if disabled else N_("User enabled."),
    )


# --- API tokens ----------------------------------------------------------------------------


@router.get("/tokens")
def tokens_page(request: Request, session: SessionDep, user: AdminUser) -> HTMLResponse:
    return render(
        request,
        "admin_tokens.html",
        user,
        tokens=session.scalars(select(ApiToken).order_by(ApiToken.id.desc())).all(),
        users=session.scalars(
            select(User).where(User.disabled.is_(False)).order_by(User.username)
        ).all(),
        new_token=request.session.pop("new_token", None),
    )


@router.post("/tokens")
def create_token(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    name: Annotated[str, Form()],
    username: Annotated[str, Form()],
    scope: Annotated[str, Form()] = Scope.READ,
) -> RedirectResponse:
    try:
        token = admin.create_token(session, actor(request, user), username, name, scope)
    except CallscopeError as exc:
        return refused(request, "/admin/tokens", exc)
    request.session["new_token"] = token  # shown once on the next page, then forgotten
    return done(request, "/admin/tokens")


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    request: Request, token_id: Id, session: SessionDep, user: AdminUser
) -> RedirectResponse:
    admin.revoke_token(session, actor(request, user), token_id)
    return done(request, "/admin/tokens", N_("Token revoked."))


# --- webhooks ------------------------------------------------------------------------------


@router.get("/webhooks")
def webhooks_page(request: Request, session: SessionDep, user: AdminUser) -> HTMLResponse:
    return render(
        request,
        "admin_webhooks.html",
        user,
        hooks=session.scalars(select(Webhook).order_by(Webhook.id)).all(),
        deliveries=session.scalars(
            select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(50)
        ).all(),
        new_secret=request.session.pop("new_secret", None),
    )


@router.post("/webhooks")
def add_webhook(
    request: Request, session: SessionDep, user: AdminUser, url: Annotated[str, Form()]
) -> RedirectResponse:
    try:
        _hook, secret = webhooks.add(session, actor(request, user), url)
    except CallscopeError as exc:
        return refused(request, "/admin/webhooks", exc)
    request.session["new_secret"] = secret  # shown once on the next page
    return done(request, "/admin/webhooks", N_("Webhook added."))


@router.post("/webhooks/{webhook_id}/delete")
def delete_webhook(
    request: Request, webhook_id: Id, session: SessionDep, user: AdminUser
) -> RedirectResponse:
    webhooks.remove(session, actor(request, user), webhook_id)
    return done(request, "/admin/webhooks", N_("Webhook removed."))


# --- importing a transcript ----------------------------------------------------------------


@router.get("/import")
def import_page(request: Request, user: AdminUser) -> HTMLResponse:
    return render(request, "admin_import.html", user)


@router.post("/import")
async def import_transcript(request: Request, user: AdminUser, ctx: ContextDep) -> RedirectResponse:
    """The page's way to `callscope import`: a transcript with its metadata and perhaps audio.
    The form is read once the administrator is known (nothing is read for anyone else)."""
    form = await request.form()
    metadata, transcript, audio = (form.get(name) for name in ("metadata", "transcript", "audio"))
    if not isinstance(metadata, FormFile) or not isinstance(transcript, FormFile):
        return refused(
            request,
            "/admin/import",
            Refused("the form needs a metadata file and a transcript file"),
        )
    upload = None
    try:
        ingestor = Ingestor(ctx)
        meta = ingestor.check_metadata(await metadata.read(MAX_METADATA_BYTES + 1))
        raw = await transcript.read(MAX_TRANSCRIPT_BYTES + 1)
        if len(raw) > MAX_TRANSCRIPT_BYTES:
            raise TooLarge(f"transcript is larger than {MAX_TRANSCRIPT_BYTES // 2**20} MiB")
        named = isinstance(audio, FormFile) and audio.filename
        if isinstance(audio, FormFile) and named:
            upload = await run_in_threadpool(ingestor.spool, audio.file, audio.filename)
        result = await run_in_threadpool(
            ingestor.import_transcript,
            raw,
            transcripts.format_of(transcript.filename),
            meta,
            upload,
            audio.filename if isinstance(audio, FormFile) and upload else None,
        )
    except CallscopeError as exc:  # (a refused import has removed its spooled audio)
        telemetry.refused(exc)
        return refused(request, "/admin/import", exc)
    return done(request, f"/conversations/{result.id}", N_("Transcript imported."))


# --- queues and their custom vocabulary ----------------------------------------------------


@router.get("/queues")
def queues_page(request: Request, session: SessionDep, user: AdminUser) -> HTMLResponse:
    return render(
        request,
        "admin_queues.html",
        user,
        queues=session.scalars(select(Queue).order_by(Queue.name)).all(),
        max_chars=admin.MAX_VOCABULARY_CHARS,
    )


@router.post("/queues")
def save_vocabulary(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    name: Annotated[str, Form(max_length=admin.MAX_QUEUE_NAME)],
    vocabulary: Annotated[str, Form(max_length=4 * admin.MAX_VOCABULARY_CHARS)] = "",
) -> RedirectResponse:
    return outcome(
        request,
        session,
        "/admin/queues",
        lambda: admin.set_vocabulary(session, actor(request, user), name, vocabulary),
        N_("Vocabulary saved."),
    )


# --- evaluation forms ----------------------------------------------------------------------

MAX_FORM_BYTES = 256 * 1024


@router.get("/forms")
def forms_page(request: Request, session: SessionDep, user: AdminUser) -> HTMLResponse:
    forms = evaluations.latest_forms(session)
    return render(
        request,
        "admin_forms.html",
        user,
        forms=[(form, json.dumps(form.definition, indent=2, ensure_ascii=False)) for form in forms],
    )


@router.post("/forms")
async def import_form(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    definition: Annotated[str, Form(max_length=MAX_FORM_BYTES)] = "",
    upload: Annotated[UploadFile | None, File()] = None,
) -> RedirectResponse:
    """A form's JSON, pasted or as a file: a new version when its name exists."""
    text = definition
    if upload is not None and upload.filename:
        data = await upload.read(MAX_FORM_BYTES + 1)
        if len(data) > MAX_FORM_BYTES:
            return refused(request, "/admin/forms", TooLarge("file: a form is at most 256 KiB"))
        text = data.decode("utf-8", errors="replace")

    def imported() -> None:
        raw = read_json(text, "definition", evaluations.EvaluationError)
        evaluations.import_form(session, actor(request, user), raw)

    return outcome(request, session, "/admin/forms", imported, N_("Form imported."))


# --- categories ----------------------------------------------------------------------------


@router.get("/categories")
def categories_page(request: Request, session: SessionDep, user: AdminUser) -> HTMLResponse:
    return render(
        request,
        "admin_categories.html",
        user,
        categories=categories.listing(session),
        default_similarity=categories.SIMILARITY,
    )


def _number(value: str) -> float | None:
    """A number typed in a form, or None for an empty field (a bad one is refused by name)."""
    return float(value) if value.strip() else None


def category_form(
    name: Annotated[str, Form(max_length=100)],
    phrases: Annotated[str, Form(max_length=20000)] = "",
    like: Annotated[str, Form(max_length=20000)] = "",
    similarity: Annotated[str, Form(pattern=r"^(\d{1,3}(\.\d{1,3})?)?$")] = "",
    speaker: Annotated[str, Form(max_length=20)] = "any",
    window: Annotated[str, Form(pattern="^(all|first|last)$")] = "all",
    seconds: Annotated[str, Form(pattern=r"^(\d{1,6}(\.\d{1,3})?)?$")] = "",
    absent: Annotated[bool, Form()] = False,
    non_talk_over_s: Annotated[str, Form(pattern=r"^(\d{1,6}(\.\d{1,3})?)?$")] = "",
    interruptions_at_least: Annotated[str, Form(pattern=r"^\d{0,4}$")] = "",
    customer_sentiment: Annotated[str, Form(pattern="^(|negative|neutral|positive)$")] = "",
    customer_trend: Annotated[str, Form(pattern="^(|falling|rising)$")] = "",
) -> tuple[str, dict[str, Any]]:
    """A category's name and definition from the page's form: one phrase, and one example,
    per line; the similarity in %."""
    conditions = {
        "non_talk_over_s": _number(non_talk_over_s),
        "interruptions_at_least": int(interruptions_at_least) if interruptions_at_least else None,
        "customer_sentiment": customer_sentiment or None,
        "customer_trend": customer_trend or None,
    }
    fields = {
        "phrases": [line.strip() for line in phrases.splitlines() if line.strip()],
        "like": [line.strip() for line in like.splitlines() if line.strip()],
        "speaker": speaker,
        "absent": absent,
        "conditions": {k: v for k, v in conditions.items() if v is not None},
    }
    if window != "all":
        fields[f"{window}_s"] = _number(seconds)
    if (percent := _number(similarity)) is not None:
        fields["similarity"] = percent / 100
    return name, fields


CategoryForm = Annotated[tuple[str, dict[str, Any]], Depends(category_form)]


@router.post("/categories")
def add_category(
    request: Request, session: SessionDep, user: AdminUser, form: CategoryForm
) -> RedirectResponse:
    """A new category from the page's form."""
    return outcome(
        request,
        session,
        "/admin/categories",
        lambda: categories.add(session, actor(request, user), *form),
        N_("Category added: the stored calls are being matched."),
    )


@router.post("/categories/{category_id}")
def change_category(
    request: Request, category_id: Id, session: SessionDep, user: AdminUser, form: CategoryForm
) -> RedirectResponse:
    """A category changed from its Edit form: the stored calls are matched again."""
    return outcome(
        request,
        session,
        "/admin/categories",
        lambda: categories.change(session, actor(request, user), category_id, *form),
        N_("Category changed: the stored calls are being matched again."),
    )


@router.post("/categories/{category_id}/delete")
def remove_category(
    request: Request, category_id: Id, session: SessionDep, user: AdminUser
) -> RedirectResponse:
    return outcome(
        request,
        session,
        "/admin/categories",
        lambda: categories.remove(session, actor(request, user), category_id),
        N_("Category removed."),
    )


@router.post("/categories/apply")
def reapply_categories(request: Request, session: SessionDep, user: AdminUser) -> RedirectResponse:
    categories.reapply(session)
    audit.record(session, actor(request, user), "category.apply", "list", None)
    return done(request, "/admin/categories", N_("Every category is being matched again."))


# --- settings ------------------------------------------------------------------------------


@router.get("/settings")
def settings_page(request: Request, session: SessionDep, user: AdminUser) -> HTMLResponse:
    return render(
        request,
        "admin_settings.html",
        user,
        specs=policy.SPECS,
        values=policy.all_values(session),
    )


@router.post("/settings")
async def save_settings(request: Request, session: SessionDep, user: AdminUser) -> RedirectResponse:
    form = await request.form()
    try:  # every value is checked before any is stored
        values = {
            key: key in form if spec.kind is bool else policy.parse_value(key, str(form.get(key)))
            for key, spec in policy.SPECS.items()
        }
    except CallscopeError as exc:
        return refused(request, "/admin/settings", exc)
    for key, value in values.items():
        admin.change_setting(session, actor(request, user), key, value)
    return done(request, "/admin/settings", N_("Settings saved."))


# --- audit log -----------------------------------------------------------------------------


@router.get("/audit")
def audit_page(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    actor_name: Annotated[str | None, Query(alias="actor", max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=50)] = None,
    object_type: Annotated[str | None, Query(max_length=50)] = None,
    object_id: Annotated[str | None, Query(max_length=200)] = None,
    start: str | None = None,
    end: str | None = None,
    page: PageNumber = 1,
) -> HTMLResponse:
    first, last = day(start, "start"), day(end, "end")
    query = audit.query(
        actor=actor_name,
        action=action,
        object_type=object_type,
        object_id=object_id,
        since=search.day_start(first) if first else None,
        until=search.day_end(last) if last else None,
    )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    events = session.scalars(
        query.limit(AUDIT_PAGE_SIZE).offset((page - 1) * AUDIT_PAGE_SIZE)
    ).all()
    filters = {
        "actor": actor_name,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "start": start,
        "end": end,
    }

    conversation_ids = {
        int(e.object_id)
        for e in events
        if e.object_type == "conversation" and e.object_id and e.object_id.isdigit()
    }
    external_ids = {
        str(conversation_id): external_id
        for conversation_id, external_id in session.execute(
            select(Conversation.id, Conversation.external_id).where(
                Conversation.id.in_(conversation_ids)
            )
        )
    }
    return render(
        request,
        "admin_audit.html",
        user,
        events=events,
        external_ids=external_ids,
        actions=audit.ACTIONS,
        actors=audit.actors(session),
        unknown=audit.UNKNOWN_NAME,
        filters=filters,
        link=list_link(filters, page),
        total=total,
        page=page,
        pages=max(1, -(-total // AUDIT_PAGE_SIZE)),
    )


# --- legal hold and erasure ----------------------------------------------------------------


@router.post("/conversations/{conversation_id}/legal-hold")
def legal_hold(
    request: Request,
    conversation_id: Id,
    session: SessionDep,
    user: AdminUser,
    hold: Annotated[bool, Form()],
) -> RedirectResponse:
    retention.set_legal_hold(session, actor(request, user), conversation_id, hold)
    message = N_("Legal hold set.") if hold else N_("Legal hold released.")
    return done(request, f"/conversations/{conversation_id}", message)


@router.post("/contacts/{contact_id}/erase")
def erase_contact(
    request: Request,
    contact_id: Id,
    session: SessionDep,
    user: AdminUser,
    confirm: Annotated[str, Form()],
) -> RedirectResponse:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(N_("contact %(id)s not found"), id=contact_id)
    if confirm.strip() != contact.external_id:
        return done(
            request,
            f"/contacts/{contact_id}",
            N_("Type the customer's external id to confirm the erasure."),
        )
    external_id = contact.external_id
    session.rollback()  # the erasure runs in its own transaction
    try:
        retention.erase_customer(request.app.state.ctx, actor(request, user), external_id)
    except CallscopeError as exc:
        return refused(request, f"/contacts/{contact_id}", exc)
    return done(request, "/conversations", N_("Customer erased."))
