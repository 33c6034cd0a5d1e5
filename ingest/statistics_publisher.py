"""The 1- and 5-minute statistics of this installation's mines, sent up on
``minewatch/v1/<mine>/statistics`` for a level that stores summaries (docs/federation.md).

An outbox over the statistics' numbers (``change_seq``, migration 0024: every write of a
statistic by the rollups gets a new one, in commit order): every ``poll_s`` the statistics
written since the durable position go out at QoS 1, a batch per mine and width, and the
position moves once the broker has acknowledged them. A broker outage delays them, never
loses them; a resend carries the same numbers, by which the level above keeps the newest.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
import psycopg

from minewatch.feeds import statistics_topic
from minewatch.outbox import Outbox, Round, publish_outbox

BATCH = 2000

_WRITTEN = """
SELECT s.change_seq, p.mine_code, s.width_s, p.code, s.bucket, s.n, s.min, s.max, s.mean,
       s.last, s.last_time
FROM (SELECT change_seq, 60 AS width_s, point_id, bucket, n, min, max, mean, last, last_time
      FROM readings_1m WHERE change_seq > %(after)s
      UNION ALL
      SELECT change_seq, 300, point_id, bucket, n, min, max, mean, last, last_time
      FROM readings_5m WHERE change_seq > %(after)s) s
JOIN points p ON p.id = s.point_id
ORDER BY s.change_seq LIMIT %(limit)s
"""

_COLUMNS = ("seq", "point", "bucket", "n", "min", "max", "mean", "last", "last_time")


def batches(rows: list[tuple[Any, ...]], source: str) -> list[tuple[str, bytes]]:
    """(topic, payload) per mine and width of ``rows`` (as :data:`_WRITTEN` returns them)."""
    groups: dict[tuple[str, int], dict[str, list[Any]]] = defaultdict(
        lambda: {name: [] for name in _COLUMNS}
    )
    for seq, mine, width, point, bucket, n, low, high, mean, last, last_time in rows:
        columns = groups[(mine, width)]
        for name, value in zip(_COLUMNS, (seq, point, bucket, n, low, high, mean, last,
                                          last_time), strict=True):  # fmt: skip
            columns[name].append(value)
    return [
        (statistics_topic(mine),
         orjson.dumps({"v": 1, "source": source, "mine": mine, "width_s": width, "rows": cols}))
        for (mine, width), cols in groups.items()
    ]  # fmt: skip


class _StatisticsOutbox(Outbox):
    """The statistics written since the position, in the order of their numbers."""

    what = "statistics"
    start = "0"  # a new publisher sends every statistic this installation holds

    def __init__(self, source: str, poll_s: float) -> None:
        self._source = source
        self.poll_s = poll_s

    async def next_round(self, conn: psycopg.AsyncConnection, position: int) -> Round:
        cur = await conn.execute(_WRITTEN, {"after": position, "limit": BATCH})
        rows = await cur.fetchall()
        last = int(rows[-1][0]) if rows else position
        return Round(batches(rows, self._source), last, more=len(rows) == BATCH)


async def publish_statistics(
    database_url: str, mqtt_url: str, client_id: str, source: str, poll_s: float = 5.0
) -> None:
    """Run until cancelled. A new publisher starts at the beginning: the level above gets
    every statistic this installation holds."""
    outbox = _StatisticsOutbox(source, poll_s)
    await publish_outbox(outbox, database_url, mqtt_url, client_id)
