"""Alert webhooks, delivered at least once from a persistent outbox.

Every event is written to the outbox (one row per configured URL) before any
attempt to send it, so a crash or restart loses nothing: the sender reads the
outbox again when it starts. A delivery is a JSON POST signed with
HMAC-SHA256 of the body (`X-Koprogo-Signature: sha256=<hex>`) and carries its
outbox id (`X-Koprogo-Delivery`), which receivers use to drop duplicates.
A 2xx answer marks it delivered; errors, timeouts and other statuses are
retried with doubling delays until the delivery is too old and is given up.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp
import structlog
from yarl import URL

from ..errors import ConfigError

log = structlog.get_logger(__name__)

PENDING, DELIVERED, FAILED = 0, 1, -1
FIRST_DELAY_S = 5.0
MAX_DELAY_S = 3600.0
GIVE_UP_AFTER_S = 3 * 86_400.0
REQUEST_TIMEOUT_S = 10.0
BATCH = 50

SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try_s REAL NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,  -- 0 pending, 1 delivered, -1 failed
    created_s REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_outbox_due
    ON webhook_outbox (delivered, next_try_s);
"""


@dataclass(frozen=True)
class Delivery:
    """One event bound for one URL, as the outbox holds it."""

    id: str
    url: str
    body: str
    attempts: int
    next_try_s: float
    delivered: int
    created_s: float


class Outbox:
    """The SQLite table of deliveries; methods block, so call them off the loop."""

    def __init__(self, db_path: Path | str) -> None:
        self._conn = sqlite3.connect(str(db_path), check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._conn:
            self._conn.executescript(SCHEMA)

    def add(self, url: str, body: str, now_s: float) -> str:
        """Store a delivery due now; return its id."""
        delivery_id = uuid.uuid4().hex
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT INTO webhook_outbox (id, url, body, next_try_s, created_s)"
                " VALUES (?, ?, ?, ?, ?)",
                (delivery_id, url, body, now_s, now_s),
            )
        return delivery_id

    def due(self, now_s: float, limit: int = BATCH) -> list[Delivery]:
        """Pending deliveries whose time has come, oldest first."""
        return self._select(
            "delivered = ? AND next_try_s <= ? ORDER BY next_try_s LIMIT ?",
            (PENDING, now_s, limit),
        )

    def pending(self) -> list[Delivery]:
        """Every delivery not yet delivered nor given up."""
        return self._select("delivered = ? ORDER BY next_try_s", (PENDING,))

    def get(self, delivery_id: str) -> Delivery | None:
        """One delivery by id, in any state."""
        found = self._select("id = ?", (delivery_id,))
        return found[0] if found else None

    def next_try_s(self) -> float | None:
        """When the earliest pending delivery is due, or None if none is."""
        with self._lock:
            row = self._conn.execute(
                "SELECT min(next_try_s) FROM webhook_outbox WHERE delivered = ?",
                (PENDING,),
            ).fetchone()
        return row[0]

    def retry_later(self, delivery_id: str, next_try_s: float) -> None:
        """Count a failed attempt and set the time of the next one."""
        self._update(
            "attempts = attempts + 1, next_try_s = ?", (next_try_s, delivery_id)
        )

    def mark_delivered(self, delivery_id: str) -> None:
        """Record that the receiver accepted the delivery."""
        self._update("attempts = attempts + 1, delivered = ?", (DELIVERED, delivery_id))

    def mark_failed(self, delivery_id: str) -> None:
        """Record that the delivery was given up."""
        self._update("delivered = ?", (FAILED, delivery_id))

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def _select(self, where: str, params: tuple) -> list[Delivery]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, url, body, attempts, next_try_s, delivered, created_s"
                f" FROM webhook_outbox WHERE {where}",
                params,
            ).fetchall()
        return [Delivery(*row) for row in rows]

    def _update(self, assignments: str, params: tuple) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                f"UPDATE webhook_outbox SET {assignments} WHERE id = ?", params
            )


class Clock(Protocol):
    """Wall time and sleeping, injected so tests need not wait."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        """Unix time in seconds."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(seconds)


def check_urls(urls: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The URLs, if each is absolute http(s) with a host; ConfigError if not."""
    for text in urls:
        try:
            url = URL(text)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"webhooks.urls: {text!r} is not a URL ({exc})") from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(
                f"webhooks.urls: {text!r} must be an absolute http:// or https:// URL"
                " with a host, e.g. https://example.org/koprogo-hook"
            )
    return tuple(urls)


def signature(secret: str, body: bytes) -> str:
    """The `X-Koprogo-Signature` header value for `body`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def retry_delay_s(attempts: int) -> float:
    """Delay before the next try after `attempts` failed ones (5 s doubling to 1 h)."""
    return min(FIRST_DELAY_S * 2 ** max(attempts - 1, 0), MAX_DELAY_S)


class WebhookSender:
    """Posts the outbox's due deliveries; `run` is the long-lived task."""

    def __init__(
        self,
        outbox: Outbox,
        urls: list[str] | tuple[str, ...],
        secret: str,
        clock: Clock | None = None,
        give_up_after_s: float = GIVE_UP_AFTER_S,
    ) -> None:
        if not secret:
            raise ConfigError("webhooks.secret must be set when webhooks.urls is")
        self.outbox = outbox
        self.urls = check_urls(urls)
        self.secret = secret
        self.clock = clock or SystemClock()
        self.give_up_after_s = give_up_after_s
        self._wake = asyncio.Event()

    async def enqueue(self, event: dict) -> list[str]:
        """Store `event` for every URL and wake the sender; return the ids."""
        body = json.dumps(event, sort_keys=True, separators=(",", ":"))
        now = self.clock.now()
        ids = [
            await asyncio.to_thread(self.outbox.add, url, body, now)
            for url in self.urls
        ]
        self._wake.set()
        return ids

    async def run(self) -> None:
        """Deliver until cancelled, starting with what the outbox already holds."""
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                self._wake.clear()
                await self.deliver_due(session)
                await self._wait_for_work()

    async def deliver_due(self, session: aiohttp.ClientSession) -> int:
        """Try every due delivery once; return how many were delivered."""
        due = await asyncio.to_thread(self.outbox.due, self.clock.now())
        delivered = 0
        for delivery in due:
            delivered += await self._attempt(session, delivery)
        return delivered

    async def _wait_for_work(self) -> None:
        """Sleep until the next delivery is due or a new event arrives."""
        next_try = await asyncio.to_thread(self.outbox.next_try_s)
        waits = [asyncio.ensure_future(self._wake.wait())]
        if next_try is not None:
            delay = max(next_try - self.clock.now(), 0.0)
            waits.append(asyncio.ensure_future(self.clock.sleep(delay)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def _attempt(
        self, session: aiohttp.ClientSession, delivery: Delivery
    ) -> bool:
        """POST one delivery and record the outcome; True if it was accepted."""
        error = await self._post(session, delivery)
        if error is None:
            await asyncio.to_thread(self.outbox.mark_delivered, delivery.id)
            log.debug("webhook_delivered", delivery=delivery.id, url=delivery.url)
            return True
        now = self.clock.now()
        if now - delivery.created_s >= self.give_up_after_s:
            await asyncio.to_thread(self.outbox.mark_failed, delivery.id)
            log.warning(
                "webhook_given_up", delivery=delivery.id, url=delivery.url, error=error
            )
            return False
        delay = retry_delay_s(delivery.attempts + 1)
        await asyncio.to_thread(self.outbox.retry_later, delivery.id, now + delay)
        # The first failure of a delivery is worth a line; its retries are not.
        emit = log.info if delivery.attempts == 0 else log.debug
        emit(
            "webhook_retry",
            delivery=delivery.id,
            url=delivery.url,
            error=error,
            in_s=delay,
        )
        return False

    async def _post(
        self, session: aiohttp.ClientSession, delivery: Delivery
    ) -> str | None:
        """Send one delivery; None if the receiver took it, else why not."""
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json",
            "X-Koprogo-Signature": signature(self.secret, body),
            "X-Koprogo-Delivery": delivery.id,
        }
        try:
            async with session.post(delivery.url, data=body, headers=headers) as answer:
                if 200 <= answer.status < 300:
                    return None
                return f"HTTP {answer.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return repr(exc)
