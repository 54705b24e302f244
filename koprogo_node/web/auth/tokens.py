"""API tokens for integrations, stored hashed in DATA_DIR/tokens.json."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .users import Conflict, Role, write_private_file

TOKENS_FILE = "tokens.json"
TOKEN_PREFIX = "kpn_"


@dataclass(frozen=True)
class ApiToken:
    """A named bearer token with a role; only its SHA-256 digest is kept."""

    name: str
    role: Role
    digest: str
    created_ms: int

    def public(self) -> dict:
        """The token as the API lists it, without the digest."""
        return {
            "name": self.name,
            "role": self.role.label,
            "created_ms": self.created_ms,
        }


def _digest(token: str) -> str:
    # A 32-byte random token cannot be guessed, so a fast unsalted hash is enough.
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """The API tokens, held in memory and saved to DATA_DIR/tokens.json."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / TOKENS_FILE
        self._tokens = {token.name: token for token in self._load()}

    def _load(self) -> list[ApiToken]:
        if not self.path.exists():
            return []
        rows = json.loads(self.path.read_text(encoding="utf-8"))["tokens"]
        return [ApiToken(**{**row, "role": Role.parse(row["role"])}) for row in rows]

    def _save(self) -> None:
        rows = [
            {**asdict(token), "role": token.role.label}
            for token in self._tokens.values()
        ]
        write_private_file(self.path, json.dumps({"tokens": rows}, indent=1))

    def create(self, name: str, role: Role) -> str:
        """Make a token; return it in clear (the only time it is shown)."""
        if name in self._tokens:
            raise Conflict(f"token {name} already exists")
        plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
        created_ms = int(time.time() * 1000)
        self._tokens[name] = ApiToken(name, role, _digest(plain), created_ms)
        self._save()
        return plain

    def find(self, plain: str) -> ApiToken | None:
        """The token whose clear text is `plain`, or None."""
        digest = _digest(plain)
        for token in self._tokens.values():
            if hmac.compare_digest(token.digest, digest):
                return token
        return None

    def all(self) -> list[ApiToken]:
        """Every token, sorted by name."""
        return sorted(self._tokens.values(), key=lambda token: token.name)

    def remove(self, name: str) -> bool:
        """Delete the named token; return whether it existed."""
        if self._tokens.pop(name, None) is None:
            return False
        self._save()
        return True
