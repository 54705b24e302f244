"""Alerts as the ledger keeps them, and requests to change them.

Every alert transition is a chained ledger event (`alert_opened`,
`alert_updated`, `alert_acknowledged`, `alert_resolved`, `alert_noted`) whose
detail is the alert's whole JSON form, so the latest event per id is its
current state and the history cannot be edited unnoticed.

A person acknowledges or resolves an alert with the CLI. While the daemon
runs, only it may write the ledger, so the CLI drops a request file in
`DATA_DIR/alert-requests/`; the daemon applies it within a second and writes
the outcome next to it.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from ..files import replace_file

EVENT_PREFIX = "alert_"
REQUESTS_DIR = "alert-requests"
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


def submit(data_dir: Path, action: str, alert_id: str, note: str) -> Path:
    """Leave a request for the running daemon; return its file."""
    folder = data_dir / REQUESTS_DIR
    folder.mkdir(exist_ok=True)
    path = folder / f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.json"
    request = {"action": action, "id": alert_id, "note": note}
    replace_file(path, json.dumps(request))
    return path


def outcome(request: Path) -> dict | None:
    """The daemon's answer to a request, once it has written one."""
    try:
        return json.loads(request.with_suffix(".done").read_text())
    except (OSError, ValueError):
        return None


def pending(data_dir: Path) -> list[tuple[Path, dict]]:
    """Requests not yet answered, oldest first; unreadable ones are answered."""
    folder = data_dir / REQUESTS_DIR
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            request = json.loads(path.read_text())
        except (OSError, ValueError):
            answer(path, {"ok": False, "error": "unreadable request"})
            continue
        found.append((path, request))
    return found


def answer(request: Path, result: dict) -> None:
    """Write the outcome and drop the request."""
    replace_file(request.with_suffix(".done"), json.dumps(result))
    try:
        os.unlink(request)
    except FileNotFoundError:
        pass
