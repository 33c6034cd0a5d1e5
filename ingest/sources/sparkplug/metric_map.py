"""Which point code a Sparkplug metric's readings are stored under (docs/sparkplug.md, "Metric
map"). Real edge nodes name their metrics their own way (``CH4_T0``,
``Methane/UpperCorner``); a map file (TOML, ``MINEWATCH_GATEWAY__SPARKPLUG_MAP_FILE``) gives,
per edge node or device, metric name -> point code::

    ["141024010001/001"]                  # <group>/<edge node>: the node's own metrics
    "CH4_T0" = "14102401000101001A01"

    ["141024010001/001/bus-1"]            # <group>/<edge node>/<device>
    "Methane/UpperCorner" = "14102401000101001A02"

A metric named by alias in data is resolved to its birth name first, so a name maps its alias
too. A source with a table maps only what its table lists: any other metric is quarantined
(``unmapped_metric``). A source without a table keeps the metric name as the point code.
Pure: parsing and lookup, no I/O besides reading the file in :meth:`MetricMap.load`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

#: What :meth:`MetricMap.point_of` answers for a metric its source's table does not list.
UNMAPPED = object()


@dataclass(frozen=True)
class MetricMap:
    """``<group>/<edge node>[/<device>]`` -> {metric name: point code}."""

    tables: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> MetricMap:
        """A map from TOML text; ``ValueError`` names what is wrong."""
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"metric map: {error}") from None
        tables: dict[str, dict[str, str]] = {}
        for key, table in document.items():
            levels = key.split("/")
            if len(levels) not in (2, 3) or not all(levels):
                raise ValueError(f"metric map: table {key!r} is not <group>/<edge node>[/<device>]")
            if not isinstance(table, dict) or not all(
                isinstance(v, str) and v for v in table.values()
            ):
                raise ValueError(f"metric map: [{key!r}] must map metric names to point codes")
            tables[key] = dict(table)
        return cls(tables)

    @classmethod
    def load(cls, path: Path) -> MetricMap:
        return cls.parse(path.read_text(encoding="utf-8"))

    def point_of(self, group: str, edge_node: str, device: str | None, name: str) -> object:
        """The point code of metric ``name`` of a source: its table's entry, :data:`UNMAPPED`
        when the source has a table without it, else the name itself."""
        key = f"{group}/{edge_node}" if device is None else f"{group}/{edge_node}/{device}"
        table = self.tables.get(key)
        if table is None:
            return name
        return table.get(name, UNMAPPED)
