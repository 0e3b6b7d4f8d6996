"""The standalone transcript file: HTML text only, every value escaped, no scripts or images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
)


def clock(seconds: float | None) -> str:
    """Seconds as m:ss, or h:mm:ss from an hour on."""
    if seconds is None:
        return "–"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


_env.filters["clock"] = clock


def transcript_html(doc: dict[str, Any]) -> str:
    """The transcript of an analysis document as a standalone HTML page."""
    return _env.get_template("transcript_download.html").render(doc=doc)
