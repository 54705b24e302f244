"""The overview page: live totals and a chart of recent hours.

Plain HTML (templates/overview.html) with a few lines of JavaScript that poll
the JSON API; works with no internet access (no CDN, no external fonts).
"""

from __future__ import annotations

import functools
from html import escape
from importlib import resources
from string import Template

from ..config.model import NodeConfig


@functools.cache
def _template() -> Template:
    text = (resources.files(__package__) / "templates" / "overview.html").read_text()
    return Template(text)


def render_page(node: NodeConfig) -> str:
    """The overview page for this building."""
    title = escape(node.name or node.building_id)
    return _template().substitute(title=title, building=escape(node.building_id))
