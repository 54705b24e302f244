"""A Board on the stand-in modules with a test-driven clock and broker."""

import json

from kpsat.errors import LinkError

START_S = 1_700_000_000


class FakeBroker:
    """Records what it is sent; refuses everything while `down`."""

    def __init__(self) -> None:
        self.down = False
        self.sent: list[tuple[str, bytes, bool]] = []
        self.connections = 0

    def publish(self, topic: str, payload, retain: bool) -> None:
        if self.down:
            raise LinkError("broker went away")
        if isinstance(payload, str):
            payload = payload.encode()
        self.sent.append((topic, payload, retain))

    def close(self) -> None:
        pass

    def states(self) -> list[dict]:
        """The state messages received, decoded, in order."""
        return [json.loads(p) for t, p, _ in self.sent if t.endswith("/state")]


def clocked_board(config: dict, root: str, broker: FakeBroker):
    """A Board whose time moves only when the firmware sleeps or a test says so.

    kpsat.board imports the hardware modules, which exist only once the
    conftest fixture has put the stand-ins in place, hence the late import.
    """
    from kpsat.board import Board

    class ClockedBoard(Board):
        def __init__(self, config: dict, root: str, broker: FakeBroker) -> None:
            super().__init__(config, root)
            self.broker = broker
            self.ms = 0
            self.now_s = START_S
            self.lines: list[str] = []

        def connect(self):
            if self.broker.down:
                raise LinkError("broker 127.0.0.1:1883 unreachable")
            self.broker.connections += 1
            return self.broker

        def ticks_ms(self) -> int:
            return self.ms

        def sleep_ms(self, ms: int) -> None:
            self.ms += ms
            self.now_s = START_S + self.ms // 1000

        def seconds(self) -> int:
            return self.now_s

        def unix_time(self) -> int:
            return self.now_s

        def log(self, event: str, **values) -> None:
            self.lines.append(event)

    return ClockedBoard(config, root, broker)
