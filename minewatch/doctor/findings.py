"""What ``minewatch doctor`` reports: one finding per check, in plain words."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"  # works, but something is at risk
    FAIL = "fail"  # data is lost, or will be, or something does not run


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    level: Level
    message: str


def ok(check: str, message: str) -> Finding:
    return Finding(check, Level.OK, message)


def warn(check: str, message: str) -> Finding:
    return Finding(check, Level.WARN, message)


def fail(check: str, message: str) -> Finding:
    return Finding(check, Level.FAIL, message)
