"""Reading a Mosquitto configuration (with its ``include_dir``) for settings that lose data or
let anyone in. Pure: text in, findings out (the files are read by :func:`read_config`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from minewatch.doctor.findings import Finding, fail, ok, warn

#: Mosquitto's default max_queued_messages: a gateway or bridge away for longer loses the rest
MOSQUITTO_DEFAULT_QUEUE = 1000
#: below this a queue covers minutes, not hours, of a mine's traffic
SMALL_QUEUE = 100_000

_BRIDGE_KEYS = frozenset({
    "address", "addresses", "topic", "cleansession", "local_cleansession", "try_private",
    "notifications", "notifications_local_only", "start_type", "restart_timeout",
    "keepalive_interval", "local_clientid", "remote_clientid", "remote_username",
    "remote_password", "idle_timeout", "threshold", "round_robin",
})  # fmt: skip


@dataclass
class Bridge:
    name: str
    options: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        values = [v for k, v in self.options if k == key]
        return values[-1] if values else None


@dataclass
class BrokerConfig:
    options: dict[str, str] = field(default_factory=dict)
    bridges: list[Bridge] = field(default_factory=list)


def _lines(path: Path) -> list[str]:
    out: list[str] = []
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if key == "include_dir":
            for item in sorted(Path(value.strip()).glob("*.conf")):
                out += _lines(item)
        else:
            out.append(line)
    return out


def parse(lines: list[str]) -> BrokerConfig:
    config = BrokerConfig()
    for line in lines:
        key, _, value = line.partition(" ")
        value = value.strip()
        if key == "connection":
            config.bridges.append(Bridge(value))
        elif config.bridges and (key in _BRIDGE_KEYS or key.startswith("bridge_")):
            config.bridges[-1].options.append((key, value))
        else:
            config.options[key] = value
    return config


def read_config(path: Path) -> BrokerConfig:
    return parse(_lines(path))


def _local(address: str) -> bool:
    host = address.split(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bridge_findings(bridge: Bridge) -> list[Finding]:
    check = f"bridge {bridge.name}"
    out: list[Finding] = []
    if bridge.get("cleansession") == "true":
        out.append(fail(check, "cleansession true: the parent's broker forgets the link's "
                               "messages when the link drops"))  # fmt: skip
    if (bridge.get("local_cleansession") or bridge.get("cleansession")) == "true":
        out.append(fail(check, "local_cleansession true: what is published while the link is "
                               "down is never sent up"))  # fmt: skip
    for key, value in bridge.options:
        parts = value.split()
        if key == "topic" and (len(parts) < 3 or parts[2] == "0"):
            out.append(fail(check, f"topic {parts[0]} at QoS 0: messages may be lost on the way"))
    address = bridge.get("address") or bridge.get("addresses") or ""
    tls = bridge.get("bridge_cafile") or bridge.get("bridge_capath") or bridge.get("bridge_psk")
    if address and not _local(address) and not tls:
        out.append(fail(check, f"the link to {address} leaves the machine without TLS: its "
                               "password and readings cross the network in clear"))  # fmt: skip
    return out or [ok(check, "QoS 1, kept sessions" + (", TLS" if tls else ""))]


def findings(config: BrokerConfig) -> list[Finding]:
    o = config.options
    out: list[Finding] = []
    if o.get("persistence") != "true":
        out.append(fail("broker persistence", "persistence is off: queued messages are lost "
                                              "when the broker restarts"))  # fmt: skip
    else:
        out.append(ok("broker persistence", f"on, every {o.get('autosave_interval', '1800')} s"))
    queued = int(o.get("max_queued_messages", MOSQUITTO_DEFAULT_QUEUE))
    if 0 < queued <= MOSQUITTO_DEFAULT_QUEUE:
        out.append(fail("broker queue", f"max_queued_messages is {queued}: a gateway or bridge "
                        f"that is away loses every message past the {queued}th"))  # fmt: skip
    elif 0 < queued < SMALL_QUEUE:
        out.append(warn("broker queue", f"max_queued_messages is {queued}: minutes of a mine's "
                                        "traffic, not hours"))  # fmt: skip
    else:
        out.append(ok("broker queue", f"max_queued_messages {queued or 'unlimited'}"))
    if int(o.get("max_queued_bytes", "0")) > 0:
        out.append(warn("broker queue", f"max_queued_bytes {o['max_queued_bytes']} also drops "
                                        "queued messages"))  # fmt: skip
    if o.get("allow_anonymous") == "true":
        out.append(fail("broker access", "allow_anonymous true: anyone who reaches the broker "
                                         "may publish readings for any mine"))  # fmt: skip
    elif "password_file" not in o and "plugin" not in o and "auth_plugin" not in o:
        out.append(warn("broker access", "no password_file: only clients with certificates "
                                         "(or none) can connect"))  # fmt: skip
    elif "acl_file" not in o:
        out.append(warn("broker access", "no acl_file: every login may publish for any mine"))
    else:
        out.append(ok("broker access", "logins and an ACL"))
    for bridge in config.bridges:
        out += _bridge_findings(bridge)
    return out
