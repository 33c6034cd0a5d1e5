"""The lines ``minewatch demo`` prints for the events of the alarm channel (rich markup): an
alarm as an alarm (rule, point, value), an incident as an incident (id, rule, grade, member
count, area), a pre-alarm as a pre-alarm.

The channel carries several shapes (alarms/store.py, subject_store.py, lifecycle.py,
incident_store.py, prealarm_store.py): an event without ``kind`` is an alarm's; a step of the
alarm or incident lifecycle (acknowledged, disposed...) names no point or rule, only the
record's id and state. Pure: an event and the points' places in, a line out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rich.markup import escape


@dataclass(frozen=True, slots=True)
class Place:
    """Where a point is: its location and its personnel area's code (if it has one)."""

    location: str
    area: str | None = None


def event_line(event: Mapping[str, object], places: Mapping[str, Place]) -> str:
    """One line for ``event``; ``places``: the points' places by code."""
    match event.get("kind"):
        case "incident":
            return _incident(event, places)
        case "prealarm":
            return _prealarm(event)
    if event.get("event") == "overflow":
        return "[yellow]the demo fell behind the alarm stream: events were skipped[/]"
    return _alarm(event)


def _text(value: object) -> str:
    return escape(str(value))


def _members(value: object) -> int:
    """A member list (the live channel) or count (the MQTT event)."""
    if isinstance(value, list):
        return len(value)
    return value if isinstance(value, int) else 0


def _incident(event: Mapping[str, object], places: Mapping[str, Place]) -> str:
    members = _members(event.get("members"))
    parts = [f"[bold magenta]INCIDENT {_text(event.get('event'))}[/] #{_text(event.get('id'))}"]
    if event.get("root_rule") is not None:
        parts.append(_text(event["root_rule"]))
    detail = [str(event["grade"])] if event.get("grade") else []
    if event.get("state"):
        detail.append(str(event["state"]))
    if detail:
        parts.append(f"({_text(', '.join(detail))})")
    parts.append(f"{members} alarm{'' if members == 1 else 's'}")
    root = event.get("root_point")
    if root is not None:
        place = places.get(str(root))
        if place is not None and place.area:
            parts.append(f"area {_text(place.area)}")
        where = f" ({_text(place.location)})" if place is not None else ""
        parts.append(f"from point {_text(root)}{where}")
    if event.get("peak") is not None:
        parts.append(f"peak {_text(event['peak'])}")
    if event.get("time") is not None:
        parts.append(f"at {_text(event['time'])}")
    return " ".join(parts)


def _alarm(event: Mapping[str, object]) -> str:
    parts = [f"[bold red]ALARM {_text(event.get('event'))}[/]"]
    if event.get("rule") is not None:
        parts.append(_text(event["rule"]))
    if event.get("point") is not None:
        parts.append(f"point {_text(event['point'])}")
    elif event.get("subject_code") is not None:  # a person, a station, a camera...
        parts.append(f"{_text(event.get('subject_kind'))} {_text(event['subject_code'])}")
    else:  # a lifecycle step: the record and its state
        parts.append(f"#{_text(event.get('id'))}")
        if event.get("state"):
            parts.append(f"({_text(event['state'])})")
    if event.get("value") is not None:
        parts.append(f"value {_text(event['value'])}")
    if event.get("time") is not None:
        parts.append(f"at {_text(event['time'])}")
    return " ".join(parts)


def _prealarm(event: Mapping[str, object]) -> str:
    parts = [f"[yellow]PRE-ALARM {_text(event.get('event'))}[/] point {_text(event.get('point'))}"]
    if event.get("level") is not None:
        parts.append(f"level {_text(event['level'])}")
    if event.get("forecast") is not None and event.get("predicted_at") is not None:
        parts.append(f"forecast {_text(event['forecast'])} by {_text(event['predicted_at'])}")
    if event.get("time") is not None:
        parts.append(f"at {_text(event['time'])}")
    return " ".join(parts)
