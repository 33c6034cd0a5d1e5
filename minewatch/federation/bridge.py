"""The Mosquitto ``connection`` bridge of one installation to its parent, written from the
hierarchy (pure: text in, text out).

No-loss choices, each needed: QoS 1 on every topic; ``cleansession false`` and
``local_cleansession false`` so that both brokers keep the bridge's session, and the lower
broker queues (and, with ``persistence true``, stores) what the link could not send yet;
queue limits on the lower broker sized for the outage the hierarchy names. What crosses twice
(a resend after a reconnect) is dropped by the upper gateway by the sender's (source, boot, seq),
as any redelivery, in whatever order it arrives (ingest/sequence.py). The same bridge carries the
directives of the levels above down to its mines (topic ``in``).
"""

from __future__ import annotations

from dataclasses import dataclass

from minewatch.broker_auth import TLS_SCHEMES, Account, Role
from minewatch.federation.hierarchy import Hierarchy, UpMode
from minewatch.feeds import (
    alarm_topic,
    broker_address,
    directive_topic,
    files_topic,
    meta_topic,
    personnel_meta_topic,
    personnel_topic,
    safety_topic,
    statistics_topic,
    video_meta_topic,
    video_topic,
)

BRIDGE_QOS = 1


@dataclass(frozen=True, slots=True)
class BridgeLogin:
    """The login the bridge uses on the parent's broker (``link_account`` there)."""

    username: str
    password: str


def link_account(hierarchy: Hierarchy, name: str) -> Account:
    """The account the parent's broker needs for the link coming up from ``name``."""
    return Account(f"link-{name}", Role.LINK, tuple(hierarchy.mines_below(name)))


def topics_up(mode: UpMode, mines: list[str]) -> list[str]:
    """The topic filters a link in ``mode`` carries for ``mines``."""
    out: list[str] = []
    for code in mines:
        if mode is UpMode.READINGS:
            # the definition and every substation's readings (not the whole tree: the mine's
            # alarm topic stays at its level)
            out += [meta_topic(code), safety_topic(code, "+")]
            out += [personnel_topic(code), personnel_meta_topic(code)]
            out += [video_topic(code), video_meta_topic(code)]
        else:
            # the definition, the alarm changes with their records and the statistics, which
            # the level above stores (ingest/summary_store.py)
            out += [meta_topic(code), alarm_topic(code), statistics_topic(code)]
        # in both modes, the national files the mine's drop folder accepted, byte for byte
        # (stored above as they are: docs/federation.md "National files up")
        out.append(files_topic(code))
    return out


def bridge_config(
    hierarchy: Hierarchy,
    name: str,
    login: BridgeLogin,
    restart_timeout: tuple[int, int] = (5, 30),
) -> str:
    """Mosquitto configuration lines for the bridge from ``name`` up to its parent."""
    item = hierarchy.get(name)
    if item.parent is None:
        raise ValueError(f"{name} is at the top: it has no link up")
    parent = hierarchy.get(item.parent)
    assert parent.broker is not None  # the hierarchy checks it
    host, port = broker_address(parent.broker)
    mines = hierarchy.mines_below(name)
    if not mines:
        raise ValueError(f"{name} serves no mine: its link would carry nothing")
    queued = hierarchy.queue.max_queued_messages
    lines = [
        f"# minewatch federation: {name} -> {parent.name}, up: {item.up.value}",
        "# written by `minewatch federation config`; it holds the link's password (mode 0600)",
        "# This broker also needs, in its main configuration (the embedded broker has them):",
        "#   persistence true",
        f"#   max_queued_messages {queued}   # {hierarchy.queue.outage_hours:g} h at "
        f"{hierarchy.queue.messages_per_s:g} messages/s",
        "#   max_queued_bytes 0",
        f"connection minewatch-{name}-to-{parent.name}",
        f"address {host}:{port}",
        "bridge_protocol_version mqttv311",
        f"remote_clientid minewatch-link-{name}",
        f"local_clientid minewatch-bridge-{name}",
        f"remote_username {login.username}",
        f"remote_password {login.password}",
        "cleansession false",
        "local_cleansession false",
        "start_type automatic",
        f"restart_timeout {restart_timeout[0]} {restart_timeout[1]}",
        "keepalive_interval 30",
        "notifications false",
        "try_private true",
    ]
    if parent.broker.split(":", 1)[0] in TLS_SCHEMES:
        if parent.ca_file is None:
            lines.append("bridge_capath /etc/ssl/certs")
        else:
            lines.append(f"bridge_cafile {parent.ca_file}")
        lines.append("bridge_insecure false")
    lines += [f"topic {topic} out {BRIDGE_QOS}" for topic in topics_up(item.up, mines)]
    # Directives of the levels above to the mines below (docs/federation.md "Directives down")
    lines += [f"topic {directive_topic(code)} in {BRIDGE_QOS}" for code in mines]
    return "\n".join(lines) + "\n"
