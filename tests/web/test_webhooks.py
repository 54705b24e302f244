"""Alert webhooks: signed, retried with back-off, kept across restarts."""

import asyncio
import hashlib
import hmac
import json

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from koprogo_node.errors import ConfigError
from koprogo_node.web.webhooks import (
    DELIVERED,
    FAILED,
    Outbox,
    WebhookSender,
    check_urls,
    retry_delay_s,
)

SECRET = "s3cret"
EVENT = {"event": "alert_opened", "alert": {"id": "a1", "severity": "high"}}


class FakeClock:
    """Time that moves only when the sender sleeps; remembers each sleep."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.t = now
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


class Receiver:
    """A webhook endpoint answering from a script of statuses (then 200)."""

    def __init__(self, statuses=()) -> None:
        self.statuses = list(statuses)
        self.calls: list[tuple[str, int]] = []
        self.accepted: list[str] = []
        self.bodies: list[tuple[bytes, str]] = []
        self.got_one = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        delivery = request.headers["X-Koprogo-Delivery"]
        status = self.statuses.pop(0) if self.statuses else 200
        self.calls.append((delivery, status))
        self.bodies.append((body, request.headers["X-Koprogo-Signature"]))
        if status == 200:
            self.accepted.append(delivery)
            self.got_one.set()
        return web.Response(status=status)


async def serve(receiver: Receiver) -> TestServer:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = TestServer(app)
    await server.start_server()
    return server


async def run_until(sender: WebhookSender, done: asyncio.Event) -> None:
    """Run the sender until `done` is set, then stop it."""
    task = asyncio.create_task(sender.run())
    try:
        await asyncio.wait_for(done.wait(), 10)
        await asyncio.sleep(0.05)  # let the sender record the outcome
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_signature_verifies_with_the_shared_secret(tmp_path):
    """The receiver can recompute the HMAC of the raw body and match the header."""
    receiver = Receiver()
    server = await serve(receiver)
    outbox = Outbox(tmp_path / "outbox.db")
    sender = WebhookSender(outbox, [str(server.make_url("/hook"))], SECRET, FakeClock())

    await sender.enqueue(EVENT)
    await run_until(sender, receiver.got_one)

    body, header = receiver.bodies[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert expected == header
    assert EVENT == json.loads(body)
    await server.close()


async def test_flaky_receiver_gets_it_once_after_growing_delays(tmp_path):
    """Three failures, then success: one acceptance of one id, delays 5, 10, 20 s."""
    receiver = Receiver([500, 503, 502])
    server = await serve(receiver)
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.db")
    sender = WebhookSender(outbox, [str(server.make_url("/hook"))], SECRET, clock)

    [delivery_id] = await sender.enqueue(EVENT)
    await run_until(sender, receiver.got_one)

    assert [delivery_id] * 4 == [d for d, _ in receiver.calls]
    assert [delivery_id] == receiver.accepted
    assert [5.0, 10.0, 20.0] == clock.sleeps
    stored = outbox.get(delivery_id)
    assert (DELIVERED, 4) == (stored.delivered, stored.attempts)
    assert [] == outbox.pending()
    await server.close()


async def test_each_url_gets_its_own_delivery(tmp_path):
    """An event is stored once per configured URL, with distinct ids."""
    outbox = Outbox(tmp_path / "outbox.db")
    urls = ["http://a.example/hook", "https://b.example/hook"]
    sender = WebhookSender(outbox, urls, SECRET, FakeClock())

    ids = await sender.enqueue(EVENT)

    assert 2 == len(set(ids))
    assert sorted(urls) == sorted(d.url for d in outbox.pending())


async def test_restart_resumes_pending_deliveries(tmp_path):
    """A new Outbox on the same file delivers what the previous run left."""
    receiver = Receiver()
    server = await serve(receiver)
    url = str(server.make_url("/hook"))
    clock = FakeClock()
    first = Outbox(tmp_path / "outbox.db")
    failed_once = await WebhookSender(first, [url], SECRET, clock).enqueue(EVENT)
    first.retry_later(failed_once[0], clock.now() + 5)
    never_tried = await WebhookSender(first, [url], SECRET, clock).enqueue({"n": 2})
    first.close()

    second = Outbox(tmp_path / "outbox.db")
    sender = WebhookSender(second, [url], SECRET, clock)
    done = asyncio.Event()
    asyncio.get_running_loop().call_soon(_set_when, receiver, 2, done)
    await run_until(sender, done)

    assert sorted(failed_once + never_tried) == sorted(receiver.accepted)
    assert [] == second.pending()
    await server.close()


def _set_when(receiver: Receiver, count: int, done: asyncio.Event) -> None:
    if len(receiver.accepted) >= count:
        done.set()
    else:
        asyncio.get_running_loop().call_later(0.01, _set_when, receiver, count, done)


async def test_unreachable_receiver_is_given_up_after_the_deadline(tmp_path):
    """Connection errors are retried until the delivery is too old, then failed."""
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.db")
    sender = WebhookSender(
        outbox, ["http://127.0.0.1:9/hook"], SECRET, clock, give_up_after_s=60
    )
    [delivery_id] = await sender.enqueue(EVENT)

    async with aiohttp.ClientSession() as session:
        while outbox.pending():
            await sender.deliver_due(session)
            clock.t += 3600

    stored = outbox.get(delivery_id)
    assert (FAILED, 1) == (stored.delivered, stored.attempts)


def test_back_off_doubles_from_5_s_up_to_an_hour():
    """Delays grow 5, 10, 20 ... and stop growing at 3600 s."""
    delays = [retry_delay_s(n) for n in range(1, 12)]

    assert [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600] == delays


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/hook", "example.org/hook", "http://", "/hook", ""],
)
def test_bad_url_is_rejected_with_a_clear_error(url):
    """Anything but an absolute http(s) URL with a host is a ConfigError."""
    with pytest.raises(ConfigError, match="absolute http:// or https:// URL"):
        check_urls([url])


def test_missing_secret_is_rejected(tmp_path):
    """Unsigned webhooks are refused at start-up."""
    with pytest.raises(ConfigError, match="webhooks.secret"):
        WebhookSender(Outbox(tmp_path / "o.db"), ["https://a.example/"], "")
