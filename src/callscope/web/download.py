"""Downloads: the standalone transcript file (HTML text only, every value escaped, no scripts
or images) and the CSV of a list's metrics."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from sqlalchemy.orm import Session

from callscope import i18n
from callscope.db.models import User
from callscope.governance import audit
from callscope.governance.audit import Actor
from callscope.review import exports, search
from callscope.web.ui import TEMPLATE_ENV


def transcript_html(doc: dict[str, Any], language: str, zone: str) -> str:
    """The transcript of an analysis document as a standalone HTML page in LANGUAGE, its times
    in ZONE."""
    i18n.activate(language)
    return TEMPLATE_ENV.get_template("transcript_download.html").render(
        doc=doc, lang=language, languages=i18n.LANGUAGES, when=lambda value: i18n.when(value, zone)
    )


def metrics_csv_response(
    session: Session, who: Actor, user: User, filters: search.Filters
) -> Response:
    """The metrics of the conversations USER may see that pass FILTERS, as a CSV download
    (at most exports.LIST_LIMIT rows), written to the audit log."""
    results = search.find(session, user, filters, exports.LIST_LIMIT)
    rows = [(hit.conversation, hit.analysis) for hit in results.hits]
    matched = {hit.conversation.id: hit.categories for hit in results.hits}
    audit.record(
        session, who, "conversation.export", "list", None, format="csv", conversations=len(rows)
    )
    return Response(
        exports.metrics_csv(rows, matched),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="conversations.csv"'},
    )
