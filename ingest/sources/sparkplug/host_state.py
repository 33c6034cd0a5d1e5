"""The Primary Host Application's STATE messages (Sparkplug 3.0, §4.2.3 and §5.3), without I/O.

Topic ``spBv1.0/STATE/<host id>``, QoS 1, retained, payload JSON (UTF-8)
``{"online": <bool>, "timestamp": <UTC ms>}``:

- the Will registered in CONNECT is ``online: false`` stamped with the time of the CONNECT;
- the birth, published right after subscribing (to the groups and to its own STATE topic), is
  ``online: true`` with the *same* timestamp as that Will;
- a clean disconnect publishes ``online: false`` stamped with the time of the disconnect, then
  sends DISCONNECT (so the broker discards the Will);
- an ``online: false`` delivered on its own topic while connected is answered at once with a
  new ``online: true`` stamped now. A retained one older than the current birth is the Will of
  an earlier session, already replaced by the birth: it needs no answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

STATE_QOS = 1
STATE_RETAIN = True


@dataclass(frozen=True, slots=True)
class HostState:
    online: bool
    timestamp_ms: int

    def payload(self) -> bytes:
        return orjson.dumps({"online": self.online, "timestamp": self.timestamp_ms})


def parse_state(data: bytes) -> HostState | None:
    """A STATE payload, or None if it is not one (never raises)."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    online, timestamp = document.get("online"), document.get("timestamp")
    if not isinstance(online, bool) or type(timestamp) is not int:  # bool is an int too
        return None
    return HostState(online, timestamp)


def must_answer(state: HostState | None, *, retained: bool, birth_ms: int) -> bool:
    """Whether a message on our own STATE topic asks us to publish our birth again."""
    if state is None or state.online:
        return False
    return not (retained and state.timestamp_ms < birth_ms)
