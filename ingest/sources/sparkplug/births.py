"""What a birth defined, as plain records: kept in the database (``sparkplug_births``) so that
a restarted gateway can map data that arrives before the next birth (docs/sparkplug.md,
"Births across gateway restarts"). No I/O here; the repository is :mod:`.store`.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class MetricDefinition:
    """One metric of a birth: how data names it and what its values are."""

    name: str
    alias: int | None
    datatype: int
    protocol: bool  # bdSeq, Node Control/*, Device Control/*: never a reading
    #: the point code from the metric map (metric_map.py); None: the metric name
    mapped: str | None = None
    unmapped: bool = False  # its source has a map table that does not list it: quarantined

    @property
    def point(self) -> str | None:
        """The point code its readings are stored under (the mapped code, else the metric
        name); None: none (a protocol metric, or one its source's map does not list)."""
        if self.protocol or self.unmapped:
            return None
        return self.mapped or self.name


@dataclass(frozen=True, slots=True)
class BirthRecord:
    """The birth in force of one source (an edge node, or a device of one).

    ``boot`` is the session's boot of the source (docs/sparkplug.md, "Deduplication");
    ``node_boot`` the boot of the edge node's session it belongs to (``boot`` itself for a
    node): a device's record is only valid under that node session. A dead source keeps its
    record (``alive`` False) so that a restarted gateway knows it is not to be trusted.
    """

    source: str
    group: str
    edge_node: str
    device: str | None
    bd_seq: int
    boot: int
    node_boot: int
    born_ms: int  # the birth's payload timestamp
    metrics: tuple[MetricDefinition, ...]
    alive: bool = True  # False once its death (NDEATH, DDEATH) was seen

    def metrics_json(self) -> bytes:
        return orjson.dumps(
            [
                {
                    "name": m.name,
                    "alias": m.alias,
                    "datatype": m.datatype,
                    "point": m.point,
                    "protocol": m.protocol,
                }
                for m in self.metrics
            ]
        )

    @staticmethod
    def metrics_from_json(data: object) -> tuple[MetricDefinition, ...]:
        """The metrics of a stored record (``jsonb`` arrives decoded; text or bytes too)."""
        items = orjson.loads(data) if isinstance(data, str | bytes) else data
        if not isinstance(items, list):
            raise ValueError(f"stored birth metrics are not a list: {items!r:.80}")
        out = []
        for item in items:
            name, point = str(item["name"]), item.get("point")
            protocol = bool(item.get("protocol", point is None))  # older rows: no "protocol"
            out.append(MetricDefinition(
                name=name,
                alias=None if item.get("alias") is None else int(item["alias"]),
                datatype=int(item["datatype"]),
                protocol=protocol,
                mapped=None if point is None or point == name else str(point),
                unmapped=point is None and not protocol,
            ))  # fmt: skip
        return tuple(out)


@dataclass(frozen=True, slots=True)
class StoredBirth:
    """A record as loaded, with the source's committed watermark ``(boot, seq)``, if any."""

    record: BirthRecord
    watermark: tuple[int, int] | None = None
