"""Helpers shared by the federation tests that run real sockets."""

import asyncio
import time


async def until(condition, timeout_s: float = 5.0) -> None:
    """Wait for `condition()` to hold; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
