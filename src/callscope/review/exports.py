"""Exports: a conversation's transcript as WebVTT or SRT, the metrics of many and a scorecard's
weeks as CSV.
(The JSON export is the analysis document itself.)

WebVTT cues carry the speaker as a voice span with its role as class, `<v.agent Daniel Reyes>`
or `<v.customer Customer>`, every word after the first its start time, `<00:01:02.500>`, and a
word followed by a pause its end time, so that an export imported again
(`transcripts.parse_vtt`) gives the same words at the same times.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import srt
import webvtt

from callscope.db.models import Conversation, ConversationAnalysis
from callscope.review import scorecards

FORMATS = {"vtt": "text/vtt", "srt": "application/x-subrip", "json": "application/json"}
LIST_LIMIT = 10_000  # rows of a CSV export


def _clock(seconds: float) -> str:
    """HH:MM:SS.mmm"""
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def speaker_name(segment: dict[str, Any]) -> str:
    """Who speaks a segment, as a person reads it: the agent's name, else the role."""
    return segment.get("agent") or segment["speaker"].capitalize()


def webvtt_text(doc: dict[str, Any]) -> str:
    """The transcript of an analysis document as WebVTT with voices and word times."""
    vtt = webvtt.WebVTT()
    for seg in doc["transcript"]["segments"]:
        voice = html.escape(speaker_name(seg), quote=False)
        vtt.captions.append(
            webvtt.Caption(
                _clock(seg["start_s"]),
                _clock(seg["end_s"]),
                f"<v.{seg['speaker']} {voice}>{_timed_words(seg)}",
            )
        )
    return vtt.content


def _timed_words(seg: dict[str, Any]) -> str:
    """A cue's words, each after the first led by its start time, and followed by its end
    time where a pause comes before the next word (WebVTT timestamps only ever increase)."""
    words = seg["words"] or [
        {"text": seg["text"], "start_s": seg["start_s"], "end_s": seg["end_s"]}
    ]
    parts, last = [], round(seg["start_s"], 3)
    for i, w in enumerate(words):
        start, end = round(w["start_s"], 3), round(w["end_s"], 3)
        if i:
            parts.append(" ")
            if start > last:
                parts.append(f"<{_clock(start)}>")
                last = start
        parts.append(html.escape(w["text"], quote=False))
        following = round(words[i + 1]["start_s"], 3) if i + 1 < len(words) else seg["end_s"]
        if last < end < following:
            parts.append(f"<{_clock(end)}>")
            last = end
    return "".join(parts)


def srt_text(doc: dict[str, Any]) -> str:
    """The transcript as SRT subtitles, each line led by its speaker."""
    return srt.compose(
        [
            srt.Subtitle(
                index,
                timedelta(seconds=seg["start_s"]),
                timedelta(seconds=seg["end_s"]),
                f"{speaker_name(seg)}: {seg['text']}",
            )
            for index, seg in enumerate(doc["transcript"]["segments"], start=1)
        ]
    )


CSV_COLUMNS = [
    "id",
    "external_id",
    "started_at",
    "duration_s",
    "agent",
    "queue",
    "customer",
    "status",
    "speaker_source",
    "sentiment_label",
    "sentiment_score",
    "talking_speed_agent_wpm",
    "talking_speed_customer_wpm",
    "agent_talk_pct",
    "customer_talk_pct",
    "average_pause_s",
    "agent_response_pause_s",
    "longest_customer_monologue_s",
    "switches",
    "switches_per_minute",
    "non_talk_s",
    "interruptions_agent",
    "interruptions_customer",
    "categories_matched",
    "categories",
]


def _metrics_row(conv: Conversation, result: ConversationAnalysis | None) -> dict[str, Any]:
    m = (result.metrics if result else None) or {}

    def get(*path: str) -> Any:
        value: Any = m
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    return {
        "id": conv.id,
        "external_id": conv.external_id,
        "started_at": conv.started_at.isoformat().replace("+00:00", "Z") if conv.started_at else "",
        "duration_s": conv.duration_s,
        "agent": conv.primary_agent.external_id if conv.primary_agent else "",
        "queue": conv.queue.name if conv.queue else "",
        "customer": conv.contact.external_id if conv.contact else "",
        "status": conv.processing_status,
        "speaker_source": get("speaker_source")
        or (conv.recording.speaker_source if conv.recording else ""),
        "sentiment_label": result.sentiment_label if result else "",
        "sentiment_score": result.sentiment_score if result else "",
        "talking_speed_agent_wpm": get("talking_speed_wpm", "agent"),
        "talking_speed_customer_wpm": get("talking_speed_wpm", "customer"),
        "agent_talk_pct": result.agent_talk_pct if result else None,
        "customer_talk_pct": get("talk_to_listen", "customer_pct"),
        "average_pause_s": get("average_pause_s"),
        "agent_response_pause_s": get("agent_response_pause_s"),
        "longest_customer_monologue_s": get("longest_customer_monologue", "duration_s"),
        "switches": get("switches", "count"),
        "switches_per_minute": get("switches", "per_minute"),
        "non_talk_s": get("non_talk", "total_s"),
        "interruptions_agent": get("interruptions", "agent", "count"),
        "interruptions_customer": get("interruptions", "customer", "count"),
    }


def metrics_csv(
    rows: Iterable[tuple[Conversation, ConversationAnalysis | None]],
    categories: Mapping[int, list[str]],
) -> str:
    """One CSV line of overview fields and metrics per conversation (empty where not known),
    with the number and the names of the CATEGORIES (by conversation id) it matched."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for conv, result in rows:
        names = categories.get(conv.id, [])
        row = {
            **_metrics_row(conv, result),
            "categories_matched": len(names),
            "categories": "; ".join(names),
        }
        writer.writerow({k: _cell("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


def scorecard_csv(card: dict[str, Any]) -> str:
    """A scorecard's weeks as CSV: a line per week, a column per figure and one per category
    matched in any of the weeks (the calls matching it)."""
    names = sorted({name for week in card["weeks"] for name in week["categories"]})
    columns = ["week_start", "calls", *scorecards.MEANS, "evaluations", "score_pct"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*columns, *(_cell(f"category: {name}") for name in names)])
    for week in card["weeks"]:
        writer.writerow(
            [
                *("" if week[c] is None else week[c] for c in columns),
                *(week["categories"].get(name, 0) for name in names),
            ]
        )
    return out.getvalue()


def themes_csv(found: dict[str, Any]) -> str:
    """Themes (themes.as_dict) as CSV: a line per theme."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    labels = ("positive", "neutral", "negative")
    writer.writerow(
        ["theme", "words", "calls", "share_pct", "previous_share_pct", "change_pct_points",
         *(f"customer_{label}" for label in labels), "example_conversations"]
    )  # fmt: skip
    for t in found["themes"]:
        before = t["previous_share"]
        writer.writerow(
            [
                _cell(t["name"]),
                _cell(" ".join(t["words"])),
                t["calls"],
                round(100 * t["share"], 1),
                "" if before is None else round(100 * before, 1),
                "" if t["change"] is None else round(100 * t["change"], 1),
                *(t["customer_sentiment"].get(label, 0) for label in labels),
                " ".join(str(e["conversation_id"]) for e in t["examples"]),
            ]
        )
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A value safe to open in a spreadsheet: text starting with = + - @ is not a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
