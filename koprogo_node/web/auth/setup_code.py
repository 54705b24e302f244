"""The one-time code that lets the first admin be created (no default password)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from .users import UserStore, write_private_file

CODE_FILE = "setup-code"
# Shown on the console's login screen: the Pi image links
# /etc/issue.d/koprogo-node.issue to this file in the service's runtime
# directory, which systemd names in $RUNTIME_DIRECTORY.
CONSOLE_FILE = "setup-code.issue"
# No 0/O, 1/I/L: the code is read off a console and typed by hand.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 12


def ensure_setup_code(data_dir: Path) -> str | None:
    """Make a fresh setup code if no admin exists and return it; else None.

    Only the code's hash is written (DATA_DIR/setup-code, mode 0600); the
    caller prints the returned code once. Each call replaces the previous code.
    """
    data_dir = Path(data_dir)
    if UserStore(data_dir).has_admin():
        discard_setup_code(data_dir)
        return None
    code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    write_private_file(data_dir / CODE_FILE, _digest(code) + "\n")
    return format_code(code)


def format_code(code: str) -> str:
    """The code in groups of four, easier to read aloud: ABCD-EFGH-JKMN."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def setup_pending(data_dir: Path) -> bool:
    """Whether a setup code is waiting to be used."""
    return (Path(data_dir) / CODE_FILE).exists()


def check_setup_code(data_dir: Path, given: str) -> bool:
    """Whether `given` is the pending setup code (dashes, spaces, case ignored)."""
    path = Path(data_dir) / CODE_FILE
    if not path.exists():
        return False
    expected = path.read_text(encoding="ascii").strip()
    return hmac.compare_digest(_digest(_normalize(given)), expected)


def discard_setup_code(data_dir: Path) -> None:
    """Delete the setup code once it has been used (or is no longer needed)."""
    (Path(data_dir) / CODE_FILE).unlink(missing_ok=True)
    console = console_file()
    if console is not None:
        console.unlink(missing_ok=True)


def console_file() -> Path | None:
    """Where the console's copy of the code goes; None outside systemd."""
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(runtime) / CONSOLE_FILE if runtime else None


def show_on_console(code: str, port: int) -> Path | None:
    """Write the code for the console's login screen (agetty's issue file).

    agetty replaces \\n with the host name and \\4 with its IPv4 address.
    Only the service's user and root can read it (mode 0600).
    """
    path = console_file()
    if path is None:
        return None
    text = (
        "KoproGo node \\n: no dashboard administrator yet.\n"
        f"  Open http://\\4:{port}/ and enter the one-time setup code {code}\n\n"
    )
    write_private_file(path, text)
    return path


def _normalize(text: str) -> str:
    return "".join(text.split()).replace("-", "").upper()


def _digest(code: str) -> str:
    # 12 characters from 31 give ~59 bits: attempts are rate limited online,
    # and the file is 0600, so a salted slow hash would add little.
    return hashlib.sha256(code.encode()).hexdigest()
