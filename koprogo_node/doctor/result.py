"""What a check finds, and how findings add up to an exit code."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum


class Level(IntEnum):
    """How bad a finding is; SKIP means the check does not apply here."""

    SKIP = 0
    OK = 1
    WARN = 2
    FAIL = 3


@dataclass(frozen=True)
class Finding:
    """One check's verdict, in words a technician can act on."""

    check: str
    level: Level
    detail: str
    fix: str = ""

    def as_dict(self) -> dict:
        return {**asdict(self), "level": self.level.name}


def ok(check: str, detail: str) -> Finding:
    return Finding(check, Level.OK, detail)


def warn(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, Level.WARN, detail, fix)


def fail(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, Level.FAIL, detail, fix)


def skip(check: str, detail: str) -> Finding:
    return Finding(check, Level.SKIP, detail)


# doctor's exit codes: the worst finding decides.
EXIT_CODES = {Level.SKIP: 0, Level.OK: 0, Level.WARN: 4, Level.FAIL: 1}


def worst(findings: list[Finding]) -> Level:
    """The most serious level among `findings` (OK when there are none)."""
    return max((f.level for f in findings), default=Level.OK)
