"""Password policy and argon2id hashing, kept off the event loop."""

from __future__ import annotations

import asyncio

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id

from .users import InvalidInput

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


def check_password_policy(password: object, username: str) -> str:
    """The password if acceptable; raise InvalidInput saying what is wrong."""
    if not isinstance(password, str):
        raise InvalidInput("password must be a string")
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password must be {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters"
        )
    if password.strip().lower() == username:
        raise InvalidInput("password must differ from the username")
    return password


class PasswordHasher:
    """Hashes and verifies secrets with argon2id, a few at a time in threads."""

    def __init__(
        self,
        opslimit: int = argon2id.OPSLIMIT_INTERACTIVE,
        memlimit: int = argon2id.MEMLIMIT_INTERACTIVE,
        concurrency: int = 2,
    ) -> None:
        self.opslimit = opslimit
        self.memlimit = memlimit
        # Each hash takes memlimit bytes (64 MiB by default): a login flood
        # must not run enough of them at once to exhaust a Pi's memory.
        self._slots = asyncio.Semaphore(concurrency)
        self._dummy_hash = self.hash_sync("not a real password")

    def hash_sync(self, secret: str) -> str:
        """The argon2id hash string of `secret` (blocking)."""
        raw = argon2id.str(secret.encode(), self.opslimit, self.memlimit)
        return raw.decode("ascii")

    def verify_sync(self, stored_hash: str | None, secret: str) -> bool:
        """Whether `secret` matches; with no hash, spend the same time and fail."""
        try:
            matched = argon2id.verify(
                (stored_hash or self._dummy_hash).encode("ascii"), secret.encode()
            )
        except nacl.exceptions.InvalidkeyError:
            matched = False
        return matched and stored_hash is not None

    async def async_hash(self, secret: str) -> str:
        """Hash `secret` in a worker thread."""
        async with self._slots:
            return await asyncio.to_thread(self.hash_sync, secret)

    async def async_verify(self, stored_hash: str | None, secret: str) -> bool:
        """Verify `secret` in a worker thread (None: a decoy verify that fails)."""
        async with self._slots:
            return await asyncio.to_thread(self.verify_sync, stored_hash, secret)
