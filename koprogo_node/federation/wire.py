"""Router frames: one CBOR map per frame, decoded with caps on everything.

Every key is optional; a frame carries whatever the router has for a peer:

    "s"  subscriptions   [[topic, subscribed: bool], ...]
    "m"  messages        [envelope wire bytes, ...]   (mesh / publish path)
    "mh" hop counts      [hops the sender's copy of "m"[i] travelled, ...]
    "ih" IHAVE           [[topic, [message id, ...]], ...]
    "iw" IWANT           [message id, ...]
    "g"  GRAFT           [topic, ...]
    "p"  PRUNE           [[topic, backoff_s: int, [address record, ...]], ...]
    "yf" fingerprint     [hash of the sender's summary, reply_wanted: bool]
    "yq" summary wanted  true
    "y"  sync summary    [reply_wanted: bool, [[origin, [[lo, hi], ...]], ...]]
    "f"  fetch request   [[origin, [[lo, hi], ...]], ...]
    "fm" fetched         [envelope wire bytes, ...]   (catch-up answers)

Decoding checks the size first, then the CBOR, then the type and length of
every field; anything else is "malformed" and never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cbor2

MAX_FRAME_BYTES = 1024 * 1024
MAX_TOPICS = 64
MAX_TOPIC_CHARS = 256
MAX_MESSAGES = 256
MAX_IDS = 5000
MAX_RECORDS = 32
MAX_RECORD_BYTES = 1024
MAX_ORIGINS = 10_000
MAX_RANGES = 64  # per origin
MAX_SEQ = 2**63 - 1
MAX_HOP = 255  # also "unknown": a hop count only steers fan-out
ID_BYTES = 32
KEY_BYTES = 32
FINGERPRINT_BYTES = 16

Ranges = tuple[tuple[int, int], ...]
Summary = tuple[tuple[bytes, Ranges], ...]


@dataclass(frozen=True)
class Prune:
    """A PRUNE for one topic: stay away `backoff_s`, maybe try these peers."""

    topic: str
    backoff_s: int
    records: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Frame:
    """Everything one frame can carry; empty fields are left off the wire."""

    subscribe: tuple[tuple[str, bool], ...] = ()
    messages: tuple[bytes, ...] = ()
    hops: tuple[int, ...] = ()  # empty, or one per message
    ihave: tuple[tuple[str, tuple[bytes, ...]], ...] = ()
    iwant: tuple[bytes, ...] = ()
    graft: tuple[str, ...] = ()
    prune: tuple[Prune, ...] = ()
    fingerprint: tuple[bytes, bool] | None = None
    want_summary: bool = False
    sync: tuple[bool, Summary] | None = None
    fetch: Summary = ()
    fetched: tuple[bytes, ...] = ()


class _Malformed(Exception):
    """A field has the wrong type or is over its cap."""


def encode_frame(frame: Frame) -> bytes:
    """The wire bytes of `frame`."""
    out: dict[str, Any] = {}
    if frame.subscribe:
        out["s"] = [[t, s] for t, s in frame.subscribe]
    if frame.messages:
        out["m"] = list(frame.messages)
    if frame.hops:
        out["mh"] = list(frame.hops)
    if frame.ihave:
        out["ih"] = [[t, list(ids)] for t, ids in frame.ihave]
    if frame.iwant:
        out["iw"] = list(frame.iwant)
    if frame.graft:
        out["g"] = list(frame.graft)
    if frame.prune:
        out["p"] = [[p.topic, p.backoff_s, list(p.records)] for p in frame.prune]
    if frame.fingerprint is not None:
        out["yf"] = list(frame.fingerprint)
    if frame.want_summary:
        out["yq"] = True
    if frame.sync is not None:
        out["y"] = [frame.sync[0], _summary_out(frame.sync[1])]
    if frame.fetch:
        out["f"] = _summary_out(frame.fetch)
    if frame.fetched:
        out["fm"] = list(frame.fetched)
    return cbor2.dumps(out)


def decode_frame(data: bytes, max_bytes: int = MAX_FRAME_BYTES) -> Frame | str:
    """The frame in `data`, or the reason it is refused."""
    if len(data) > max_bytes:
        return "too_large"
    try:
        raw = cbor2.loads(data)
    except (cbor2.CBORDecodeError, RecursionError, ValueError, TypeError):
        return "malformed"
    except Exception:  # cbor2 semantic tags can raise almost anything
        return "malformed"
    try:
        return _frame_of(raw)
    except _Malformed:
        return "malformed"


def _frame_of(raw: Any) -> Frame:
    _need(isinstance(raw, dict))
    messages = _blobs(raw.get("m"), MAX_MESSAGES)
    return Frame(
        subscribe=tuple(_subscription(x) for x in _list(raw.get("s"), MAX_TOPICS)),
        messages=messages,
        hops=_hops(raw.get("mh"), len(messages)),
        ihave=tuple(_ihave(x) for x in _list(raw.get("ih"), MAX_TOPICS)),
        iwant=_ids(raw.get("iw")),
        graft=tuple(_topic(x) for x in _list(raw.get("g"), MAX_TOPICS)),
        prune=tuple(_prune(x) for x in _list(raw.get("p"), MAX_TOPICS)),
        fingerprint=_fingerprint(raw.get("yf")),
        want_summary=_flag(raw.get("yq")),
        sync=_sync(raw.get("y")),
        fetch=_summary(raw.get("f")),
        fetched=_blobs(raw.get("fm"), MAX_MESSAGES),
    )


def _need(condition: bool) -> None:
    if not condition:
        raise _Malformed


def _list(value: Any, cap: int) -> list:
    if value is None:
        return []
    _need(isinstance(value, list) and len(value) <= cap)
    return value


def _topic(value: Any) -> str:
    _need(isinstance(value, str) and 0 < len(value) <= MAX_TOPIC_CHARS)
    return value


def _seq(value: Any) -> int:
    _need(type(value) is int and 0 <= value <= MAX_SEQ)
    return value


def _blobs(value: Any, cap: int) -> tuple[bytes, ...]:
    items = _list(value, cap)
    _need(all(isinstance(x, bytes) for x in items))
    return tuple(items)


def _hops(value: Any, messages: int) -> tuple[int, ...]:
    items = _list(value, MAX_MESSAGES)
    _need(len(items) in (0, messages))
    _need(all(type(x) is int and 0 <= x <= MAX_HOP for x in items))
    return tuple(items)


def _ids(value: Any) -> tuple[bytes, ...]:
    items = _list(value, MAX_IDS)
    _need(all(isinstance(x, bytes) and len(x) == ID_BYTES for x in items))
    return tuple(items)


def _subscription(value: Any) -> tuple[str, bool]:
    _need(isinstance(value, list) and len(value) == 2)
    _need(isinstance(value[1], bool))
    return _topic(value[0]), value[1]


def _ihave(value: Any) -> tuple[str, tuple[bytes, ...]]:
    _need(isinstance(value, list) and len(value) == 2)
    return _topic(value[0]), _ids(value[1])


def _prune(value: Any) -> Prune:
    _need(isinstance(value, list) and len(value) == 3)
    records = _blobs(value[2], MAX_RECORDS)
    _need(all(len(r) <= MAX_RECORD_BYTES for r in records))
    _need(type(value[1]) is int and 0 <= value[1] <= 86_400)
    return Prune(_topic(value[0]), value[1], records)


def _fingerprint(value: Any) -> tuple[bytes, bool] | None:
    if value is None:
        return None
    _need(isinstance(value, list) and len(value) == 2)
    _need(isinstance(value[0], bytes) and len(value[0]) == FINGERPRINT_BYTES)
    _need(isinstance(value[1], bool))
    return value[0], value[1]


def _flag(value: Any) -> bool:
    _need(value is None or isinstance(value, bool))
    return bool(value)


def _sync(value: Any) -> tuple[bool, Summary] | None:
    if value is None:
        return None
    _need(isinstance(value, list) and len(value) == 2)
    _need(isinstance(value[0], bool))
    return value[0], _summary(value[1])


def _summary(value: Any) -> Summary:
    return tuple(_origin_ranges(x) for x in _list(value, MAX_ORIGINS))


def _origin_ranges(value: Any) -> tuple[bytes, Ranges]:
    _need(isinstance(value, list) and len(value) == 2)
    origin = value[0]
    _need(isinstance(origin, bytes) and len(origin) == KEY_BYTES)
    ranges = tuple(_range(r) for r in _list(value[1], MAX_RANGES))
    return origin, ranges


def _range(value: Any) -> tuple[int, int]:
    _need(isinstance(value, list) and len(value) == 2)
    lo, hi = _seq(value[0]), _seq(value[1])
    _need(lo <= hi)
    return lo, hi


def _summary_out(summary: Summary) -> list:
    return [[origin, [[lo, hi] for lo, hi in ranges]] for origin, ranges in summary]
