"""The page kit every router of pages uses: the template environment (escaped, translated,
with the filters and values the templates share), rendering a page in the viewer's language and
zone, the signed-in user of a page, the answers after a form (done, refused), and the parsing
of what page forms send (a day, a list's links). Routers import it, never each other."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape

from callscope import errors, i18n
from callscope.db.models import User
from callscope.governance import access
from callscope.measures import sentiment
from callscope.vocabulary import UNSURE_BELOW, Status
from callscope.web import security
from callscope.web.deps import SessionDep, viewer_language, viewer_zone

# the templates of the pages and of the downloaded transcript: escaped, translated
TEMPLATE_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
    extensions=["jinja2.ext.i18n"],
)
# (install_gettext_callables is added by the i18n extension)
TEMPLATE_ENV.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.gettext, i18n.ngettext, newstyle=True
)


def clock(seconds: float | None) -> str:
    """Seconds as m:ss, or h:mm:ss from an hour on."""
    if seconds is None:
        return "–"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


TEMPLATE_ENV.filters["clock"] = clock

TEMPLATES = Jinja2Templates(env=TEMPLATE_ENV)


CODE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)+")  # a value's code, like "ivr_announcement"


def translated(value: object) -> str:
    """A value shown in the interface language where the catalog knows it, as plain text:
    unlike `_()` in a template, whose result is trusted markup, it is escaped, so a value that
    came from outside (a channel, a session role, an error naming input) can never be markup.
    A code the catalog does not know ("ivr_announcement") reads as words ("ivr announcement")."""
    if value is None:
        return ""
    shown = i18n.gettext(str(value))
    return shown.replace("_", " ") if shown == value and CODE.fullmatch(shown) else shown


TEMPLATES.env.filters.update(number=i18n.number, span=i18n.span, day=i18n.day, t=translated)
TEMPLATES.env.globals["faces"] = sentiment.EMOJI
TEMPLATES.env.globals["sentiment_label"] = sentiment.label
TEMPLATES.env.globals["unsure_below"] = UNSURE_BELOW


class SignInRequired(errors.NotAllowed):
    """The page needs a signed-in user."""


def page_user(request: Request, session: SessionDep) -> User:
    """The signed-in user of this browser session; otherwise off to the sign-in page."""
    user = security.session_user(request, session)
    if user is None:
        request.session.clear()
        raise SignInRequired()
    return user


PageUser = Annotated[User, Depends(page_user)]


def done(request: Request, target: str, message: str | None = None) -> RedirectResponse:
    """Back to TARGET, showing MESSAGE there once."""
    if message:
        request.session["flash"] = message
    return RedirectResponse(target, status_code=303)


def kept(error: Exception) -> Any:
    """ERROR's message as a page keeps it to say in the user's language (`in_language`): the
    catalogue message and its values where ERROR gives them, else its text."""
    if isinstance(error, errors.CallscopeError) and error.message:
        params = {k: v if isinstance(v, int | float) else str(v) for k, v in error.params.items()}
        return {"message": error.message, "params": params}
    return str(error)


def in_language(said: Any) -> str | None:
    """What `kept` kept (or catalogue messages, a list of them joined), in the current
    language; text that is not in the catalogue as it is."""
    if isinstance(said, list):
        return ", ".join(i18n.gettext(item) for item in said)
    if not isinstance(said, dict):
        return i18n.gettext(said) if said else None
    values = {k: i18n.gettext(v) if isinstance(v, str) else v for k, v in said["params"].items()}
    template: str = said["message"]
    message = i18n.gettext(template)
    return message % values if values else message


def refused(
    request: Request, target: str, error: Exception, control: str | None = None
) -> RedirectResponse:
    """Back to TARGET, showing why ERROR refused what was asked there once (as an error), in
    the user's language where ERROR gives its message from the catalogue; CONTROL, the form
    field it is about (by name, in the form the request came from), is marked there."""
    request.session["flash_error"] = kept(error)
    if control:
        request.session["flash_control"] = {"form": request.url.path, "name": control}
    return RedirectResponse(target, status_code=303)


JS_MESSAGES = (
    "Play",
    "Pause",
    "%(n)d of %(m)d",
    *(status.value for status in Status),
    "agent",
    "customer",
    "unknown",
    "positive",
    "neutral",
    "negative",
    "confidence",
    "Upper half and lane: the agent; lower: the customer.",
    "Sentiment by quarter of the call: %(list)s.",
    "Transferred to %(agent)s at %(time)s.",
    "%(what)s: %(n)d marked on the timeline",
    "uncertain: the words may be wrong, so their sentiment is not given",
    "uncertain: the line's sentiment is not clear enough to give",
    "reads like “%(text)s”",
    "Comment by %(author)s at %(time)s.",
    "Category %(name)s at %(time)s.",
    "Draft saved at %(time)s.",
    "The draft was not saved: %(why)s",
    "no connection",
    "Say why you change the automatic answer.",
)


def js_messages() -> dict[str, str]:
    """The strings the page's script shows, in the current language."""
    return {key: i18n.gettext(key) for key in JS_MESSAGES}


def render(
    request: Request, name: str, user: User | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A page in the user's language (their choice, else the browser's)."""
    language = viewer_language(request, user)
    i18n.activate(language)
    zone = viewer_zone(request, user)
    return TEMPLATES.TemplateResponse(
        request,
        name,
        {
            "user": user,
            "can": access.flags(user),
            "lang": language,
            "languages": i18n.LANGUAGES,
            "when": lambda value: i18n.when(value, zone),
            "zone": zone,
            "js_messages": js_messages,
            "csrf": security.csrf_token(request),
            "flash": request.session.pop("flash", None),
            "flash_error": in_language(request.session.pop("flash_error", None)),
            "in_language": in_language,
            "flash_control": request.session.pop("flash_control", None),
            **context,
        },
        status_code=status_code,
    )


def safe_next(target: str) -> str:
    """Only local paths are followed after sign-in."""
    return target if target.startswith("/") and not target.startswith("//") else "/conversations"


def speak_as_the_browser(request: Request) -> None:
    """Words made before the sign-in page is drawn (its error) in the language the browser asks
    for: nobody is signed in to have chosen one."""
    i18n.activate(i18n.choose(None, request.headers.get("accept-language")))


def login_page(
    request: Request, status_code: int = 200, next_page: str = "", error: str | None = None
) -> HTMLResponse:
    """The sign-in page: the company's sign-in where it is set up, the local form where local
    accounts may sign in."""
    settings = request.app.state.ctx.settings
    return render(
        request,
        "login.html",
        None,
        status_code,
        next=safe_next(next_page),
        error=error,
        sso=settings.single_sign_on,
        local=not settings.single_sign_on or settings.oidc_local_admins,
    )


def day(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise HTTPException(422, f"{field} must be a date (YYYY-MM-DD)") from exc


def list_link(filters: dict[str, Any], page: int) -> Callable[..., str]:
    """The query string of a list page with some parameters changed (for sort and page links)."""

    def link(**changes: Any) -> str:
        params = {**filters, "page": page, **changes}
        return urlencode({k: v for k, v in params.items() if v not in (None, "")})

    return link
