"""What every MQTT JSON message of the minewatch contracts shares (docs/feeds.md): the size
limit, the topic's source, the JSON object with ``"v": 1`` and aware ISO 8601 times. Pure.

The safety contract (:mod:`minewatch.ingest.contract`) and the personnel/video contract
(:mod:`minewatch.ingest.feeds.parsing`) route a topic to their body parsers through
:func:`parse_envelope`; a body parser refuses by raising :class:`Refused`, which becomes a
:class:`~minewatch.ingest.quarantine.Rejection` here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

import orjson

from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.timeutil import datetime_to_us

M = TypeVar("M")

#: A topic's levels and its source (levels after ``minewatch/v1``) -> a parsed message.
Route = Callable[[list[str], str], M]


class Refused(Exception):
    """A message refused whole, with its quarantine reason."""

    def __init__(self, reason: QuarantineReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def schema(detail: str) -> Refused:
    return Refused(QuarantineReason.SCHEMA_VIOLATION, detail)


def unknown_topic(topic: str) -> Refused:
    return Refused(QuarantineReason.UNKNOWN_TOPIC, f"topic {topic!r} is not in the contract")


def parse_envelope(topic: str, payload: bytes, max_bytes: int, route: Route[M]) -> M | Rejection:
    """``route`` the message, or refuse it (too large, or refused by ``route``); never raises
    on bad input. A refused message is kept whole, however large (docs/feeds.md)."""
    parts = topic.split("/")
    source = "/".join(parts[2:]) if len(parts) > 2 else topic
    try:
        if len(payload) > max_bytes:
            raise Refused(QuarantineReason.PAYLOAD_TOO_LARGE, f"{len(payload)} bytes > {max_bytes}")
        return route(parts, source)
    except Refused as refused:
        return Rejection(source, refused.reason, refused.detail, payload)


def load_object(payload: bytes) -> dict[str, object]:
    """The payload as a JSON object of contract version 1."""
    try:
        document = orjson.loads(payload)  # orjson refuses invalid UTF-8 too
    except orjson.JSONDecodeError as exc:
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as not_utf8:
            raise Refused(QuarantineReason.INVALID_UTF8, str(not_utf8)) from None
        raise Refused(QuarantineReason.MALFORMED_JSON, str(exc)) from None
    if not isinstance(document, dict):
        raise schema("payload is not a JSON object")
    if document.get("v") != 1:
        raise Refused(
            QuarantineReason.UNSUPPORTED_VERSION, f"contract version {document.get('v')!r}"
        )
    return document


def parse_time_us(text: str, name: str) -> int:
    """An ISO 8601 time with a UTC offset, in microseconds since the epoch; ``name`` is the
    field, for the reason."""
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        raise schema(f"{name} {text!r} is not ISO 8601") from None
    if stamp.tzinfo is None:
        raise schema(f"{name} {text!r} has no UTC offset")
    return datetime_to_us(stamp)
