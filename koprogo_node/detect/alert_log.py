"""Alerts as the ledger keeps them.

Every alert transition is a chained ledger event (`alert_opened`,
`alert_updated`, `alert_acknowledged`, `alert_resolved`, `alert_noted`) whose
detail is the alert's whole JSON form, so the latest event per id is its
current state and the history cannot be edited unnoticed.

A person acknowledges or resolves an alert on the dashboard, through the API
or with the CLI; while the daemon runs, all three go through it, the only
writer of the ledger.
"""

from __future__ import annotations

EVENT_PREFIX = "alert_"
ACTIONS = ("acknowledge", "resolve", "note")


def fold(events: list[tuple]) -> dict[str, dict]:
    """Latest state of every alert, from (id, ts_ms, kind, sensor, detail) rows."""
    alerts: dict[str, dict] = {}
    for _, _, _, _, detail in events:
        if isinstance(detail, dict) and "id" in detail:
            alerts[detail["id"]] = detail
    return alerts


def listed(alerts: dict[str, dict], state: str | None = None) -> list[dict]:
    """Alerts newest first, optionally only those in `state` (or not resolved)."""
    chosen = [
        a
        for a in alerts.values()
        if state is None
        or a.get("state") == state
        or (state == "active" and a.get("state") != "resolved")
    ]
    return sorted(chosen, key=lambda a: a.get("start_ts", 0), reverse=True)
