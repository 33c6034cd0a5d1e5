"""The gateway's sources, one line each: name -> factory.

A factory takes the gateway's settings and the servers (:class:`SourceContext`) and returns its
source, or None when the settings do not ask for it. The gateway builds every configured
source in this table's order; adding a protocol is one folder under ``ingest/sources/`` and
one line here (docs/architecture.md, "Adding a source").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from minewatch.ingest.sources.base import Source, SourceContext
from minewatch.ingest.sources.modbus import adapter as modbus
from minewatch.ingest.sources.mqtt_json import adapter as mqtt_json
from minewatch.ingest.sources.national import adapter as national
from minewatch.ingest.sources.sparkplug import adapter as sparkplug
from minewatch.settings import GatewaySettings

SourceFactory = Callable[[GatewaySettings, SourceContext], Source | None]

SOURCES: Mapping[str, SourceFactory] = MappingProxyType({
    "mqtt_json": mqtt_json.create,
    "sparkplug": sparkplug.create,
    "modbus": modbus.create,
    "national": national.create,
})  # fmt: skip


def configured_sources(
    settings: GatewaySettings, mqtt_url: str, database_url: str | None = None
) -> list[Source]:
    """The sources the settings ask for, in the order of :data:`SOURCES`. ``database_url``
    lets the Sparkplug source keep its births across restarts."""
    context = SourceContext(mqtt_url, database_url)
    return [
        source for factory in SOURCES.values() if (source := factory(settings, context)) is not None
    ]
