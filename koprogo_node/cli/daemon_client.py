"""The running daemon's API, reached through its control socket.

The daemon serves its API on a Unix socket as well as on TCP (see
`koprogo_node.web.control_socket`). Whoever may open that socket (root and
the `koprogo` group) acts with the technician's and admin's authority, so the
CLI needs no password or token: the file's permissions are the check.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path

from ..daemon.runfile import read_run_file
from ..ledger.lock import holder_pid

TIMEOUT_S = 5.0
# A stream sends an empty line every few seconds; this much silence means
# the daemon is gone.
STREAM_SILENCE_S = 30.0


class DaemonUnavailable(Exception):
    """No daemon answers on the control socket."""


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket (http.client only dials TCP by itself)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def control_socket(data_dir: Path) -> Path | None:
    """Where the daemon running on `data_dir` listens, or None if none runs."""
    if holder_pid(data_dir) is None:
        return None
    recorded = read_run_file(data_dir).get("control_socket")
    return Path(recorded) if recorded else None


def call(
    data_dir: Path, method: str, path: str, body: dict | None = None
) -> tuple[int, dict]:
    """Send one request to the daemon; return its status and JSON answer.

    Raises DaemonUnavailable when no daemon runs or its socket does not answer.
    """
    where = control_socket(data_dir)
    if where is None:
        raise DaemonUnavailable("the daemon is not running")
    conn = _UnixConnection(str(where), TIMEOUT_S)
    try:
        payload = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    except (OSError, http.client.HTTPException) as exc:
        raise DaemonUnavailable(f"no answer on {where}: {exc}") from exc
    except ValueError as exc:
        raise DaemonUnavailable(f"unreadable answer on {where}: {exc}") from exc
    finally:
        conn.close()


def get_json(data_dir: Path, path: str) -> dict | None:
    """GET `path` from the running daemon, or None when it does not answer."""
    try:
        status, answer = call(data_dir, "GET", path)
    except DaemonUnavailable:
        return None
    return answer if status == 200 else None


def live_status(data_dir: Path) -> dict | None:
    """The running daemon's /api/v1/status, or None when none answers."""
    return get_json(data_dir, "/api/v1/status")


def stream(data_dir: Path, path: str) -> Iterator[dict]:
    """Yield each JSON line the daemon streams from `path` until it ends.

    Raises DaemonUnavailable when no daemon answers, or it stops answering.
    """
    where = control_socket(data_dir)
    if where is None:
        raise DaemonUnavailable("the daemon is not running")
    conn = _UnixConnection(str(where), STREAM_SILENCE_S)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        if response.status != 200:
            raise DaemonUnavailable(f"{path} answered {response.status}")
        while line := response.readline():
            if line.strip():
                yield json.loads(line)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise DaemonUnavailable(f"the stream on {where} broke: {exc}") from exc
    finally:
        conn.close()
