"""The API on a Unix socket, for the technician's CLI on the same machine.

The socket is made mode 0660 and, when the group exists, owned by the
`koprogo` group: root and that group's members may use it, nobody else.
Requests that arrive on it act as the local administrator (see
`auth.middleware`), as whoever may open it could read and write the data
directory anyway.
"""

from __future__ import annotations

import grp
import os
import socket
from pathlib import Path

import structlog
from aiohttp import web

log = structlog.get_logger(__name__)

SOCKET_NAME = "control.sock"
SOCKET_MODE = 0o660
# The kernel's limit on a Unix socket's path (sun_path), less the final NUL.
MAX_PATH_BYTES = 107


class ControlSocketError(OSError):
    """The control socket cannot be made where configured."""


def socket_path(configured: str, data_dir: Path) -> Path:
    """The configured path, or `control.sock` in the data directory."""
    return Path(configured) if configured else data_dir / SOCKET_NAME


async def serve_on_socket(runner: web.AppRunner, path: Path, group: str) -> None:
    """Listen on `path` (replacing a stale socket) with the right permissions."""
    if len(os.fsencode(path.absolute())) > MAX_PATH_BYTES:
        raise ControlSocketError(
            f"{path} is longer than a Unix socket path may be"
            f" ({MAX_PATH_BYTES} bytes); set control.socket to a shorter path"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    site = web.UnixSite(runner, str(path))
    await site.start()
    os.chmod(path, SOCKET_MODE)
    owner = _give_to_group(path, group)
    log.info("control_socket_listening", path=str(path), group=owner)


def remove_socket(path: Path) -> None:
    """Take the socket away at shutdown, so no one dials a dead daemon."""
    try:
        if path.is_socket():
            path.unlink()
    except OSError as exc:
        log.warning("control_socket_not_removed", path=str(path), reason=str(exc))


def is_local(request: web.Request) -> bool:
    """Whether the request came in on the control socket."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    return sock is not None and sock.family == socket.AF_UNIX


def _remove_stale(path: Path) -> None:
    """Remove a socket left by a daemon that died (our writer lock is held)."""
    try:
        if path.is_socket():
            path.unlink()
    except OSError as exc:
        raise ControlSocketError(f"cannot replace {path}: {exc.strerror}") from exc


def _give_to_group(path: Path, group: str) -> str:
    """Hand the socket to `group` if it exists; return the group it has."""
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        # A development machine has no such group: the daemon's own stays.
        return grp.getgrgid(path.stat().st_gid).gr_name
    # Under the unit (Group=koprogo) the socket has the group already, and
    # the unit's system call filter would refuse the chown.
    if path.stat().st_gid == gid:
        return group
    try:
        os.chown(path, -1, gid)
    except PermissionError:
        log.warning("control_socket_group_refused", path=str(path), group=group)
        return grp.getgrgid(path.stat().st_gid).gr_name
    return group
