"""Server-rendered SVG charts (pygal): no JavaScript library, no CDN.

pygal's default output loads a tooltip script from the internet; every chart
here sets `js=[]` so the dashboard works on a building network with no way
out.
"""

from __future__ import annotations

from typing import Callable

import pygal
from pygal.style import CleanStyle

from .history import Window
from .i18n import Translator

QUARTER_S = 900
LABEL_PATTERN = {"day": "HH:mm", "week": "EEE HH'h'", "month": "d MMM", "year": "MMM"}


def render_chart(
    series: dict[str, dict[int, float]], start_s: int, end_s: int, tr: Translator
) -> bytes:
    """Building power (kW) and water flow (L/min) per quarter hour."""
    starts = list(range(start_s // QUARTER_S * QUARTER_S, end_s, QUARTER_S))
    chart = pygal.Line(
        style=CleanStyle,
        width=900,
        height=320,
        js=[],
        show_dots=False,
        x_label_rotation=0,
        show_minor_x_labels=False,
        x_labels_major_every=max(1, len(starts) // 8),
        truncate_label=-1,
        legend_at_bottom=True,
        formatter=lambda v: "" if v is None else tr.number(v, 1),
        value_formatter=lambda v: "" if v is None else tr.number(v, 1),
        disable_xml_declaration=False,
    )
    chart.x_labels = [tr.pattern(s, "EEE HH:mm") for s in starts]
    electricity = series.get("electricity_import", {})
    water = series.get("water", {})
    chart.add(tr("electricity, kW"), [_per(electricity, s, 4.0) for s in starts])
    chart.add(
        tr("water, L/min"),
        [_per(water, s, 1000 / 15) for s in starts],
        secondary=True,
    )
    return chart.render()


def render_history(
    points: list[tuple[int, float | None]],
    view: Window,
    title: str,
    tr: Translator,
    zoom_link: Callable[[int], str] | None,
    bars: bool,
) -> str:
    """One meter over a window, as inline SVG; points link to `zoom_link`.

    Counters are drawn as bars (use per period), gauges as a line (the mean).
    """
    kind = pygal.Bar if bars else pygal.Line
    chart = kind(
        style=CleanStyle,
        width=900,
        height=340,
        js=[],
        show_legend=False,
        show_dots=len(points) < 60,
        x_label_rotation=0,
        show_minor_x_labels=False,
        x_labels_major_every=max(1, len(points) // 8),
        truncate_label=-1,
        title=title,
        value_formatter=lambda v: "" if v is None else tr.number(v, 3),
        disable_xml_declaration=True,
        no_data_text=tr("No data in this period"),
    )
    chart.x_labels = [
        tr.pattern(start, LABEL_PATTERN[view.tier]) for start, _ in points
    ]
    chart.add(title, [_point(start, value, zoom_link) for start, value in points])
    return chart.render(is_unicode=True)


def _point(start: int, value: float | None, zoom_link) -> dict | float | None:
    if value is None or zoom_link is None:
        return value
    return {"value": value, "xlink": {"href": zoom_link(start), "target": "_self"}}


def _per(values: dict[int, float], start: int, factor: float) -> float | None:
    found = values.get(start)
    return None if found is None else round(found * factor, 3)
