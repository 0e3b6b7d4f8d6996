"""Line charts drawn on the server as SVG (templates/_chart.html): the geometry of weekly
figures — lines broken where a week has no value, a dot per value, three grid lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callscope.i18n import N_

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28


@dataclass
class Series:
    name: str  # shown in the legend and on each dot
    values: list[float | None]  # one per week
    style: str = "own"  # a CSS class: "own" (solid) or "team" (dashed)


@dataclass
class Chart:
    key: str  # unique on the page: the SVG's title id
    series: list[Series]
    weeks: list[str]  # ISO Mondays, one per value
    lines: list[tuple[str, list[str]]] = field(default_factory=list)  # style, polylines
    dots: list[tuple[str, float, float, str, str, float]] = field(default_factory=list)
    ticks: list[tuple[float, float]] = field(default_factory=list)  # y, value
    labels: list[tuple[float, str, str]] = field(default_factory=list)  # x, week, text-anchor
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    bottom: int = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return not self.dots


def line_chart(
    key: str,
    weeks: list[str],
    series: list[Series],
    low: float | None = None,
    high: float | None = None,
) -> Chart:
    """A chart of SERIES over WEEKS; the value axis runs from LOW to HIGH where given (a
    sentiment's −1 to 1, a share's 0 to 100), else over the values shown."""
    chart = Chart(key, series, weeks)
    values = [v for s in series for v in s.values if v is not None]
    if not values:
        return chart
    bottom = min(values) if low is None else low
    top = max(values) if high is None else high
    if top - bottom < 1e-9:
        bottom, top = bottom - 1, top + 1
    plot_w, plot_h = chart.right - chart.left, chart.bottom - TOP

    def x(i: int) -> float:
        return round(
            chart.left + (plot_w * i / (len(weeks) - 1) if len(weeks) > 1 else plot_w / 2), 1
        )

    def y(value: float) -> float:
        return round(chart.bottom - plot_h * (value - bottom) / (top - bottom), 1)

    chart.ticks = [(y(v), v) for v in (bottom, (bottom + top) / 2, top)]
    shown = sorted({0, len(weeks) // 2, len(weeks) - 1})
    anchors = {0: "start", len(weeks) - 1: "end"} if len(weeks) > 1 else {}
    chart.labels = [(x(i), weeks[i], anchors.get(i, "middle")) for i in shown]
    for s in series:
        polylines: list[str] = []
        run: list[str] = []
        for i, value in enumerate(s.values):
            if value is None:
                if len(run) > 1:
                    polylines.append(" ".join(run))
                run = []
                continue
            run.append(f"{x(i)},{y(value)}")
            chart.dots.append((s.style, x(i), y(value), s.name, weeks[i], value))
        if len(run) > 1:
            polylines.append(" ".join(run))
        chart.lines.append((s.style, polylines))
    return chart


# what a scorecard draws: figure, title, value axis (low, high), digits (None: a duration, as
# m:ss like the table beside it), unit
FIGURES: list[tuple[str, str, float | None, float | None, int | None, str]] = [
    ("customer_sentiment", N_("Customer sentiment"), -1, 1, 2, ""),
    ("score_pct", N_("Evaluation score"), 0, 100, 0, " %"),
    ("average_handle_s", N_("Average handle time"), 0, None, None, ""),
    ("agent_talk_pct", N_("Agent talk"), 0, 100, 0, " %"),
    ("non_talk_s", N_("Non-talk time (seconds)"), 0, None, 0, ""),
]


def scorecard_charts(
    card: dict[str, Any], team: dict[str, dict[str, Any]] | None = None
) -> list[tuple[Chart, str, int | None, str]]:
    """A chart per figure of CARD's weeks — with TEAM's (team_weeks) beside the agent's own
    where given, for the figures a team has — as (chart, title, digits, unit)."""
    own = {week["week_start"]: week for week in card["weeks"]}
    weeks = sorted(own.keys() | (team or {}).keys())

    def values(by_week: dict[str, dict[str, Any]], figure: str) -> list[float | None]:
        return [by_week.get(w, {}).get(figure) for w in weeks]

    charts = []
    for figure, title, low, high, digits, unit in FIGURES:
        series = [Series(N_("You") if team is not None else title, values(own, figure))]
        if team is not None and figure != "score_pct":
            series.append(Series(N_("Your team"), values(team, figure), "team"))
        charts.append((line_chart(figure, weeks, series, low, high), title, digits, unit))
    return charts
