"""Server-side login sessions with idle and absolute expiry."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Callable

from .users import Role

COOKIE_NAME = "koprogo_session"


@dataclass
class Session:
    """One browser login; the id lives in the cookie, the rest stays here."""

    session_id: str
    username: str
    role: Role
    csrf_token: str
    created_s: float
    last_seen_s: float


class SessionStore:
    """The live sessions, in memory: a restart logs everybody out."""

    def __init__(
        self,
        clock: Callable[[], float],
        idle_timeout_s: float,
        absolute_timeout_s: float,
        max_sessions: int = 1000,
    ) -> None:
        self.clock = clock
        self.idle_timeout_s = idle_timeout_s
        self.absolute_timeout_s = absolute_timeout_s
        self.max_sessions = max_sessions
        self._sessions: dict[str, Session] = {}

    def create(self, username: str, role: Role) -> Session:
        """Start a session under a fresh random id."""
        self._drop_expired()
        if len(self._sessions) >= self.max_sessions:
            oldest = min(self._sessions.values(), key=lambda s: s.last_seen_s)
            del self._sessions[oldest.session_id]
        now = self.clock()
        session = Session(
            session_id=secrets.token_urlsafe(32),
            username=username,
            role=role,
            csrf_token=secrets.token_urlsafe(32),
            created_s=now,
            last_seen_s=now,
        )
        self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, its idle clock restarted; or None."""
        session = self._sessions.get(session_id or "")
        if session is None:
            return None
        now = self.clock()
        if self._expired(session, now):
            del self._sessions[session.session_id]
            return None
        session.last_seen_s = now
        return session

    def delete(self, session_id: str | None) -> None:
        """End the session with this id, if there is one."""
        self._sessions.pop(session_id or "", None)

    def delete_user(self, username: str, keep: str | None = None) -> None:
        """End every session of `username`, except the one with id `keep`."""
        for session in list(self._sessions.values()):
            if session.username == username and session.session_id != keep:
                del self._sessions[session.session_id]

    def _expired(self, session: Session, now: float) -> bool:
        return (
            now - session.last_seen_s >= self.idle_timeout_s
            or now - session.created_s >= self.absolute_timeout_s
        )

    def _drop_expired(self) -> None:
        now = self.clock()
        for session in list(self._sessions.values()):
            if self._expired(session, now):
                del self._sessions[session.session_id]
