"""Dashboard accounts: roles, validation, and the users.json store."""

from __future__ import annotations

import enum
import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

USERS_FILE = "users.json"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{2,31}")


class Role(enum.IntEnum):
    """What a caller may do; a higher role includes every lower one."""

    COOWNER = 1
    TECHNICIAN = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        """The role's name as the API spells it."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: object) -> Role:
        """The role named by `text`; raise InvalidInput if there is none."""
        for role in cls:
            if text == role.label:
                return role
        choices = ", ".join(role.label for role in cls)
        raise InvalidInput(f"role must be one of {choices}, got {text!r}")


class InvalidInput(ValueError):
    """A username, role or password given by a client breaks the rules."""


class Conflict(ValueError):
    """The change would clash with existing state (duplicate, last admin)."""


@dataclass(frozen=True)
class User:
    """One account; only the argon2id hash of its password is kept."""

    username: str
    role: Role
    password_hash: str
    created_ms: int

    def public(self) -> dict:
        """The account as the API shows it, without the hash."""
        return {"username": self.username, "role": self.role.label}


def normalize_name(text: object, what: str = "username") -> str:
    """A lower-cased account or token name; raise InvalidInput if malformed."""
    name = text.strip().lower() if isinstance(text, str) else ""
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(
            f"{what} must be 3-32 characters of a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def write_private_file(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, readable by the owner only."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class UserStore:
    """The accounts, held in memory and saved to DATA_DIR/users.json."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / USERS_FILE
        self._users = {user.username: user for user in self._load()}

    def _load(self) -> list[User]:
        if not self.path.exists():
            return []
        rows = json.loads(self.path.read_text(encoding="utf-8"))["users"]
        return [User(**{**row, "role": Role.parse(row["role"])}) for row in rows]

    def _save(self) -> None:
        rows = [
            {**asdict(user), "role": user.role.label} for user in self._users.values()
        ]
        write_private_file(self.path, json.dumps({"users": rows}, indent=1))

    def get(self, username: str) -> User | None:
        """The account named `username`, or None."""
        return self._users.get(username)

    def all(self) -> list[User]:
        """Every account, sorted by name."""
        return sorted(self._users.values(), key=lambda user: user.username)

    def has_admin(self) -> bool:
        """Whether at least one admin account exists."""
        return any(user.role is Role.ADMIN for user in self._users.values())

    def add(self, username: str, role: Role, password_hash: str) -> User:
        """Create an account; raise Conflict if the name is taken."""
        if username in self._users:
            raise Conflict(f"user {username} already exists")
        user = User(username, role, password_hash, int(time.time() * 1000))
        self._users[username] = user
        self._save()
        return user

    def set_password_hash(self, username: str, password_hash: str) -> None:
        """Replace an existing account's password hash."""
        user = self._users[username]
        self._users[username] = User(
            user.username, user.role, password_hash, user.created_ms
        )
        self._save()

    def remove(self, username: str) -> None:
        """Delete an account; raise Conflict if it is the last admin."""
        user = self._users[username]
        admins = [u for u in self._users.values() if u.role is Role.ADMIN]
        if user.role is Role.ADMIN and len(admins) == 1:
            raise Conflict("the last admin cannot be deleted; create another first")
        del self._users[username]
        self._save()
