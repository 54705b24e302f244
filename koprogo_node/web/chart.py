"""Server-rendered SVG charts (pygal): no JavaScript library, no CDN."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pygal
from pygal.style import CleanStyle

LOCAL = ZoneInfo("Europe/Brussels")
QUARTER_S = 900


def render_chart(
    series: dict[str, dict[int, float]], start_s: int, end_s: int
) -> bytes:
    """Building power (kW) and water flow (L/min) per quarter hour."""
    starts = list(range(start_s // QUARTER_S * QUARTER_S, end_s, QUARTER_S))
    chart = pygal.Line(
        style=CleanStyle,
        width=900,
        height=320,
        show_dots=False,
        x_label_rotation=0,
        show_minor_x_labels=False,
        x_labels_major_every=max(1, len(starts) // 8),
        truncate_label=-1,
        legend_at_bottom=True,
        formatter=_one_decimal,
        value_formatter=_one_decimal,
        disable_xml_declaration=False,
    )
    chart.x_labels = [_label(s) for s in starts]
    electricity = series.get("electricity_import", {})
    water = series.get("water", {})
    chart.add("electricity, kW", [_per(electricity, s, 4.0) for s in starts])
    chart.add(
        "water, L/min", [_per(water, s, 1000 / 15) for s in starts], secondary=True
    )
    return chart.render()


def _per(values: dict[int, float], start: int, factor: float) -> float | None:
    found = values.get(start)
    return None if found is None else round(found * factor, 3)


def _label(start_s: int) -> str:
    return datetime.fromtimestamp(start_s, LOCAL).strftime("%a %H:%M")


def _one_decimal(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"
