"""Who may publish and subscribe on the broker: accounts, their roles and Mosquitto ACLs.

Pure logic, no I/O (``minewatch/broker_accounts.py`` keeps the files). Each client of the
broker has its own account: a mine publishes only under its own topics, a gateway reads
them, a simulator stands in for the mines it lists, a link (the bridge from a lower level)
writes the mines below it. Credentials travel inside the broker URL
(``mqtt://user:password@host:port``, ``mqtts://`` for TLS), so every client that takes a URL
takes its login with it; :func:`login_options` turns the URL into aiomqtt's arguments.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

import aiomqtt

from minewatch.feeds import (
    TOPIC_ROOT,
    alarm_topic,
    directive_topic,
    files_topic,
    statistics_topic,
)

SPARKPLUG_ROOT = "spBv1.0"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MINE_CODE = re.compile(r"^[0-9]{12}$")
TLS_SCHEMES = ("mqtts", "ssl")


class Role(StrEnum):
    MINE = "mine"
    GATEWAY = "gateway"
    SIMULATOR = "simulator"
    LINK = "link"
    SCREEN = "screen"


@dataclass(frozen=True, slots=True)
class Account:
    """One broker login. ``mines``: the 12-digit codes it covers; empty means every mine
    (allowed for a gateway, a screen and a simulator, never for a mine or a link)."""

    name: str
    role: Role
    mines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"account name {self.name!r}: letters, digits, '_', '.', '-'")
        for code in self.mines:
            if not _MINE_CODE.match(code):
                raise ValueError(f"mine code {code!r} is not 12 digits")
        if self.role in (Role.MINE, Role.LINK) and not self.mines:
            raise ValueError(f"a {self.role} account needs at least one mine code")


def _mine_roots(account: Account) -> list[str]:
    return [f"{TOPIC_ROOT}/{code}" for code in account.mines] or [f"{TOPIC_ROOT}/+"]


def acl_rules(account: Account) -> list[str]:
    """The Mosquitto ``acl_file`` lines of one account (after its ``user`` line).

    Mosquitto applies ``deny`` before any grant, so a mine may write under its own tree
    except the alarm topic that only the gateway (or a link, carrying the alarms of the level
    below) speaks on.
    """
    roots = _mine_roots(account)
    groups = account.mines or ("+",)
    match account.role:
        case Role.MINE | Role.SIMULATOR | Role.LINK:
            rules = [f"topic write {root}/#" for root in roots]
            rules += [f"topic write {SPARKPLUG_ROOT}/{group}/#" for group in groups]
            if account.role is Role.LINK:  # a link carries the alarms of the level below
                # and, the other way, the directives of the levels above to its mines
                return rules + [f"topic read {directive_topic(code)}" for code in groups]
            rules += [f"topic deny {alarm_topic(code)}" for code in groups]
            rules += [f"topic deny {statistics_topic(code)}" for code in groups]
            rules += [f"topic deny {files_topic(code)}" for code in groups]
            rules.append(f"topic read {SPARKPLUG_ROOT}/STATE/#")  # edge nodes wait for it
            rules += [f"topic read {SPARKPLUG_ROOT}/{group}/{kind}/#"  # rebirth requests
                      for group in groups for kind in ("NCMD", "DCMD")]  # fmt: skip
            return rules
        case Role.GATEWAY:
            rules = [f"topic read {root}/#" for root in roots]
            rules += [f"topic read {SPARKPLUG_ROOT}/{group}/#" for group in groups]
            rules += [f"topic write {alarm_topic(code)}" for code in groups]
            rules += [f"topic write {statistics_topic(code)}" for code in groups]
            rules += [f"topic write {files_topic(code)}" for code in groups]
            rules += [f"topic write {SPARKPLUG_ROOT}/{group}/{kind}/#"  # rebirth requests
                      for group in groups for kind in ("NCMD", "DCMD")]  # fmt: skip
            rules += [f"topic readwrite {SPARKPLUG_ROOT}/STATE/#"]
            rules += [f"topic readwrite {directive_topic(code)}" for code in groups]
            return rules
        case Role.SCREEN:
            return [f"topic read {alarm_topic(code)}" for code in groups]
    raise ValueError(f"unknown role {account.role!r}")


def acl_file(accounts: list[Account]) -> str:
    """A whole ``acl_file``: no topic lines before the first ``user``, so a client without an
    account (were anonymous access ever switched on) may do nothing."""
    lines = ["# written by minewatch (minewatch broker add); do not edit by hand", ""]
    for account in sorted(accounts, key=lambda a: a.name):
        lines.append(f"# {account.role}: {', '.join(account.mines) or 'every mine'}")
        lines.append(f"user {account.name}")
        lines.extend(acl_rules(account))
        lines.append("")
    return "\n".join(lines)


# -- broker URLs with their login ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Files for TLS: the CA that signed the broker's certificate; a client certificate and
    key where the broker asks for one."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


def with_login(
    url: str,
    username: str | None,
    password: str | None,
    tls: TlsFiles | None = None,
) -> str:
    """``url`` carrying ``username``/``password`` (kept as they are when None) and TLS files
    as query parameters (``ca``, ``cert``, ``key``)."""
    parts = urlsplit(url)
    user = username if username is not None else unquote(parts.username or "") or None
    secret = password if password is not None else unquote(parts.password or "") or None
    host = parts.hostname or "127.0.0.1"
    netloc = f"{host}:{parts.port}" if parts.port else host
    if user:
        login = quote(user, safe="")
        if secret:
            login += ":" + quote(secret, safe="")
        netloc = f"{login}@{netloc}"
    query = parse_qs(parts.query)
    if tls is not None:
        for key, value in (("ca", tls.ca_file), ("cert", tls.cert_file), ("key", tls.key_file)):
            if value:
                query[key] = [value]
    encoded = "&".join(f"{k}={quote(v[0], safe='/')}" for k, v in sorted(query.items()))
    return urlunsplit((parts.scheme, netloc, parts.path, encoded, ""))


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``, for printing and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def login_options(url: str) -> dict[str, Any]:
    """aiomqtt.Client keyword arguments for the login and TLS of ``url``: username, password,
    and for ``mqtts://`` the TLS parameters (the system's CAs unless ``?ca=`` names a file)."""
    parts = urlsplit(url)
    options: dict[str, Any] = {}
    if parts.username:
        options["username"] = unquote(parts.username)
        options["password"] = unquote(parts.password) if parts.password is not None else None
    if parts.scheme in TLS_SCHEMES:
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        options["tls_params"] = aiomqtt.TLSParameters(
            ca_certs=query.get("ca"),
            certfile=query.get("cert"),
            keyfile=query.get("key"),
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    return options
