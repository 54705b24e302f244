"""The contents of a support bundle, made safe to send outside the building.

Nothing secret leaves: passwords, tokens, keys and webhook secrets are masked
in the configuration and scrubbed from every other member, and the data
directory's key, token, user and session files are never included. Nothing
personal leaves either: an apartment's meter (a channel matching
`federation.privacy.lot_pattern`, the dashboard's rule) keeps its name but
loses its figures, and logs lose IP addresses and user names.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import io
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import textwrap
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .. import __version__
from ..config import plain_data
from ..doctor.checks import run_all
from ..errors import KoprogoError
from ..ledger.verify import verify
from . import config_cmds, status_cmds
from .common import Context
from .doctor_cmds import situation
from .status_cmds import STALE_AFTER_S

SECRET = "********"
USER = "<user>"
IP = "<ip>"
LOT_VALUE = "<lot value>"
UNIT = "koprogo-node"
LOG_DAYS = 2
MAX_LOG_LINES = 50_000
NEVER_READ = (
    "node_key",
    "tls_key.pem",
    "local-api-token",
    "setup-code",
    "users.json",
    "tokens.json",
    "sessions",
)
# In a record about a lot meter, these say when and how often, not how much.
LOT_RECORD_KEEPS = frozenset(
    {"timestamp", "level", "event", "last_ts_ms", "last_ms", "age_s", "count"}
    | {"restarts", "failing_since", "height", "pid"}
)
USER_KEYS = frozenset({"user", "username", "login", "account"})

IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
IPV6 = re.compile(
    r"(?<![\w:])(?:(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}"
    r"|(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?::"
    r"(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?)(?![\w:])"
)
URL_USERINFO = re.compile(r"(\w+://)[^/\s@\"']+@")
USER_ASSIGNMENT = re.compile(r"\b(user|username|login)([=:]\s*\"?)[^\s\",}]+")
HOME_DIR = re.compile(r"/home/[^/\s\"']+")
FIGURE = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])")
# The dashboard's one-time setup code, as the daemon prints it at start.
SETUP_CODE = re.compile(r"\b[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}\b")
JOURNAL_PREFIX = re.compile(r"^(\S+ \S+ [^\s:]+: )(.*)$")


@dataclass(frozen=True)
class Member:
    """One file of the bundle: its name, its bytes and a line saying what it is."""

    name: str
    data: bytes
    about: str


class Redactor:
    """Removes secrets and personal data, counting what it removed."""

    def __init__(self, replacements: dict[str, str], lot_pattern: str) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self._replacements = sorted(
            ((k, v) for k, v in replacements.items() if len(k) >= 3),
            key=lambda kv: -len(kv[0]),
        )
        self._lot = re.compile(lot_pattern)
        self.counts: Counter[str] = Counter()

    def text(self, text: str) -> str:
        """Replace known secrets, user names in URLs, paths and assignments."""
        for secret, placeholder in self._replacements:
            pattern = rf"(?<![\w]){re.escape(secret)}(?![\w])"
            if placeholder == USER:
                text = self._sub(re.compile(pattern), placeholder, text, "user name")
            elif secret in text:
                self.counts["secret"] += text.count(secret)
                text = text.replace(secret, placeholder)
        text = self._sub(SETUP_CODE, SECRET, text, "secret")
        text = self._sub(URL_USERINFO, rf"\1{USER}@", text, "user name")
        text = self._sub(USER_ASSIGNMENT, rf"\1\2{USER}", text, "user name")
        return self._sub(HOME_DIR, f"/home/{USER}", text, "user name")

    def scrub(self, value):
        """A JSON-ready value with secrets and user names replaced."""
        if isinstance(value, dict):
            return {k: self._scrub_field(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        return self.text(value) if isinstance(value, str) else value

    def value(self, value, about_lot: bool = False):
        """Like `scrub`, and the figures of records about a lot meter removed."""
        if isinstance(value, dict):
            about_lot = about_lot or any(
                isinstance(v, str) and self._lot.search(v) for v in value.values()
            )
            return {k: self._field(k, v, about_lot) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, about_lot) for v in value]
        if isinstance(value, str):
            value = self.text(value)
            return self._hide_figures(value) if about_lot else value
        if about_lot and _is_number(value):
            self.counts["lot value"] += 1
            return LOT_VALUE
        return value

    def log_line(self, line: str) -> str:
        """A log line (JSON or text, journal prefix or not) without personal data."""
        prefix, message = "", line
        found = JOURNAL_PREFIX.match(line)
        if found and not line.startswith("{"):
            prefix, message = found.groups()
        line = self.text(prefix) + self._log_message(message)
        line = self._sub(IPV4, IP, line, "IP address")
        return self._sub(IPV6, IP, line, "IP address")

    def _log_message(self, message: str) -> str:
        try:
            record = json.loads(message)
        except ValueError:
            record = None
        if isinstance(record, dict):
            return json.dumps(self.value(record))
        message = self.text(message)
        return self._hide_figures(message) if self._lot.search(message) else message

    def _hide_figures(self, text: str) -> str:
        return self._sub(FIGURE, LOT_VALUE, text, "lot value")

    def _scrub_field(self, key: str, value):
        if key in USER_KEYS and isinstance(value, str) and value:
            self.counts["user name"] += 1
            return USER
        return self.scrub(value)

    def _field(self, key: str, value, about_lot: bool):
        if key in USER_KEYS and isinstance(value, str) and value:
            self.counts["user name"] += 1
            return USER
        if about_lot and key in LOT_RECORD_KEEPS:
            return self.value(value)
        return self.value(value, about_lot or bool(self._lot.search(str(key))))

    def _sub(self, pattern: re.Pattern, repl: str, text: str, what: str) -> str:
        text, n = pattern.subn(repl, text)
        self.counts[what] += n
        return text


def redactor_for(obj: Context) -> Redactor:
    """A redactor that knows this node's secrets and configured user names."""
    cfg = obj.config()
    replacements = {s: SECRET for s in _config_secrets(dataclasses.asdict(cfg))}
    for url in cfg.webhooks.urls:
        replacements[url] = _safe_url(url)
    for source in cfg.sources:
        if getattr(source, "username", ""):
            replacements[source.username] = USER
    token = _read_small(obj.data_dir() / "local-api-token")
    if token:
        replacements[token] = SECRET
    return Redactor(replacements, cfg.federation.privacy.lot_pattern)


def collect(obj: Context, redactor: Redactor, log_file: Path | None) -> list[Member]:
    """Every member but the README, each already redacted."""
    return [
        _json_member("status.json", _status(obj, redactor), "koprogo-node status"),
        _json_member("config.json", redactor.scrub(_config(obj)), "configuration"),
        _json_member("verify.json", redactor.scrub(_verdict(obj)), "ledger verify"),
        _json_member(
            "doctor.json", redactor.scrub(_doctor(obj)), "koprogo-node doctor"
        ),
        _json_member("versions.json", versions(), "package, Python and OS versions"),
        _json_member(
            "data-dir.json", redactor.scrub(_listing(obj.data_dir())), "file list"
        ),
        _logs(redactor, log_file),
    ]


def readme(members: list[Member], redactor: Redactor, obj: Context) -> Member:
    """The MANIFEST: what is inside and what was left out or replaced."""
    lines = [
        "koprogo-node support bundle",
        f"made {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
        f" on data directory {redactor.text(str(obj.data_dir()))}",
        "",
        "Contents:",
        *(f"  {m.name:<16} {m.about}" for m in members),
        "",
        *textwrap.wrap(
            "Never included: the ledger itself and its backups, and the data"
            f" directory's {', '.join(NEVER_READ)} files."
        ),
        f"Secrets (passwords, tokens, keys, webhook secrets) appear as {SECRET};",
        "webhook URLs keep only their scheme and host.",
        "Apartment (lot) meters keep their names; their figures appear as",
        f"{LOT_VALUE}.",
        f"In logs, IP addresses appear as {IP} and user names as {USER}.",
        "",
        "Replaced in this bundle:",
        *(f"  {what}: {n}" for what, n in sorted(redactor.counts.items()) if n),
    ]
    return Member("README.txt", ("\n".join(lines) + "\n").encode(), "this file")


def write_tarball(out: Path, top: str, members: list[Member]) -> None:
    """Write `members` under `top/` as a gzip tarball, readable by its owner only."""
    tmp = out.with_name(f".{out.name}.partial")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for member in members:
                info = tarfile.TarInfo(f"{top}/{member.name}")
                info.size, info.mtime, info.mode = len(member.data), time.time(), 0o600
                tar.addfile(info, io.BytesIO(member.data))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def versions() -> dict:
    """This program's, its dependencies', Python's, SQLite's and the OS's versions."""
    return {
        "koprogo_node": __version__,
        "python": sys.version,
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "os": _os_release(),
        "board": _read_small(Path("/proc/device-tree/model")).rstrip("\x00"),
        "packages": _package_versions(),
    }


# members


def _status(obj: Context, redactor: Redactor) -> dict:
    try:
        report = status_cmds.gather(obj)
    except KoprogoError as exc:
        return {"error": str(exc)}
    return redactor.value(report)


def _config(obj: Context) -> dict:
    data = config_cmds.masked(plain_data(obj.config()))
    path = obj.config_path()
    return {"file": str(path) if path else None, "config": data}


def _verdict(obj: Context) -> dict:
    try:
        return vars(verify(obj.db_path()))
    except KoprogoError as exc:
        return {"ok": False, "problem": str(exc)}


def _doctor(obj: Context) -> list[dict]:
    return [f.as_dict() for f in run_all(situation(obj, STALE_AFTER_S))]


def _listing(data_dir: Path) -> dict:
    """Names, sizes and modes of the data directory's entries; no contents."""
    try:
        entries = sorted(data_dir.iterdir())
    except OSError as exc:
        return {"path": str(data_dir), "error": exc.strerror}
    return {
        "path": str(data_dir),
        "entries": [_entry(p) for p in entries],
    }


def _entry(path: Path) -> dict:
    try:
        st = path.lstat()
    except OSError:
        return {"name": path.name}
    return {
        "name": path.name,
        "bytes": st.st_size,
        "mode": oct(st.st_mode & 0o7777),
        "dir": path.is_dir(),
    }


def _logs(redactor: Redactor, log_file: Path | None) -> Member:
    lines, why = _journal() if log_file is None else _file_tail(log_file)
    why = redactor.text(why)
    if lines is None:
        text = f"No logs are included: {why}.\n"
        return Member("NO-LOGS.txt", text.encode(), "why no logs are included")
    text = "".join(redactor.log_line(line) + "\n" for line in lines)
    return Member("logs.txt", text.encode(), f"recent logs, from {why}")


def _journal() -> tuple[list[str] | None, str]:
    """The unit's journal of the last days, or None and the reason why not."""
    if shutil.which("journalctl") is None:
        return None, "journalctl is not installed on this host"
    missing = _unit_missing()
    if missing:
        return None, missing
    command = [
        "journalctl",
        f"--unit={UNIT}",
        f"--since=-{LOG_DAYS}d",
        "--output=short-iso",
        "--no-pager",
        "--quiet",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"journalctl failed ({exc})"
    if done.returncode != 0:
        return None, f"journalctl failed: {_first_line(done.stderr)}"
    lines = deque(done.stdout.splitlines(), maxlen=MAX_LOG_LINES)
    return list(lines), f"journalctl -u {UNIT}, last {LOG_DAYS} days"


def _unit_missing() -> str:
    """Why the systemd unit cannot be asked for its logs, or '' if it can."""
    if shutil.which("systemctl") is None:
        return "systemctl is not installed on this host"
    try:
        done = subprocess.run(
            ["systemctl", "show", "--property=LoadState", "--value", f"{UNIT}.service"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"systemctl failed ({exc})"
    state = done.stdout.strip()
    if done.returncode != 0:
        return f"systemd is not available: {_first_line(done.stderr)}"
    if state != "loaded":
        return f"the systemd unit {UNIT}.service is not installed ({state})"
    return ""


def _file_tail(path: Path) -> tuple[list[str] | None, str]:
    """The last lines of a log file, or None and the reason why not."""
    try:
        with path.open(errors="replace") as lines:
            tail = deque((line.rstrip("\n") for line in lines), MAX_LOG_LINES)
    except OSError as exc:
        return None, f"the log file {path} cannot be read ({exc.strerror})"
    return list(tail), f"the log file {path}"


# helpers


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_member(name: str, data, about: str) -> Member:
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    return Member(name, text.encode(), about)


def _config_secrets(value) -> list[str]:
    """Every non-empty value under a key `config show` masks."""
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            if any(s in key for s in config_cmds.SECRET_KEYS) and item:
                found.append(str(item))
            else:
                found += _config_secrets(item)
        return found
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _config_secrets(item)]
    return []


def _safe_url(url: str) -> str:
    """A webhook URL reduced to scheme and host: paths often carry a token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/{SECRET}"


def _read_small(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _os_release() -> str:
    for line in _read_small(Path("/etc/os-release")).splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def _package_versions() -> dict:
    try:
        required = importlib.metadata.requires("koprogo-node") or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    found = {}
    for requirement in required:
        name = re.split(r"[^A-Za-z0-9._-]", requirement, maxsplit=1)[0]
        try:
            found[name] = importlib.metadata.version(name)
        except (importlib.metadata.PackageNotFoundError, ValueError):
            continue
    return found


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or ["no message"])[0]
