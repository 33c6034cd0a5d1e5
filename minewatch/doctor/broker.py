"""Checks of a running broker: minewatch's login connects, an anonymous client does not."""

from __future__ import annotations

import aiomqtt

from minewatch.broker_auth import login_options, redacted
from minewatch.doctor.findings import Finding, fail, ok
from minewatch.feeds import broker_address

TIMEOUT_S = 5.0


async def _connects(url: str, anonymous: bool) -> str | None:
    """None when a client connects; else why not."""
    host, port = broker_address(url)
    options = login_options(url)
    if anonymous:
        options.pop("username", None)
        options.pop("password", None)
    try:
        async with aiomqtt.Client(host, port, timeout=TIMEOUT_S, **options):
            return None
    except aiomqtt.MqttError as error:
        return str(error)


async def broker_findings(url: str) -> list[Finding]:
    refused = await _connects(url, anonymous=False)
    if refused is not None:
        return [fail("broker", f"{redacted(url)} refuses minewatch's login: {refused}")]
    out = [ok("broker", f"{redacted(url)} takes minewatch's login")]
    if await _connects(url, anonymous=True) is None:
        out.append(fail("broker access", "an anonymous client can connect: anyone who reaches "
                                         "the broker may publish for any mine"))  # fmt: skip
    return out
