"""Personnel head-counts of this installation's mines per whole minute, sent up on
``minewatch/v1/<mine>/statistics`` for a level that stores summaries (docs/federation.md).

For each minute ``t``: the people underground at ``t`` in the whole mine (``personnel_trips``
open at ``t``; area ``""``, zero included) and in each area with people
(``personnel_stays``). A minute is counted once ``settle_s`` has passed after it (the
personnel feed's lateness), and only then: a count is what the installation knew then. The
durable position is the last minute sent (``outbox_positions``, epoch seconds), moved once the
broker has acknowledged it (:func:`minewatch.outbox.publish_outbox`); after a broker outage
the minutes of the outage are counted from the stored trips and stays and sent, so none is
missing above. A new publisher starts at the current minute.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import orjson
import psycopg

from minewatch.feeds import statistics_topic
from minewatch.outbox import Outbox, Round, publish_outbox

#: minutes counted in one round at most (a day after a long outage takes a few rounds)
MINUTES = 240

_COUNTS = """
WITH grid AS (
    SELECT g.t FROM generate_series(%(first)s::timestamptz, %(last)s::timestamptz,
                                    INTERVAL '1 minute') AS g(t)
), mines AS (SELECT DISTINCT mine_code FROM personnel_trips)
SELECT g.t, m.mine_code, '' AS area,
       (SELECT count(*) FROM personnel_trips t WHERE t.mine_code = m.mine_code
        AND t.entered_at <= g.t AND (t.left_at IS NULL OR t.left_at > g.t))::int
FROM grid g CROSS JOIN mines m
UNION ALL
SELECT g.t, s.mine_code, s.area_code, count(*)::int
FROM grid g JOIN personnel_stays s ON s.entered_at <= g.t AND (s.left_at IS NULL OR s.left_at > g.t)
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
"""


def batches(rows: list[tuple[Any, ...]], source: str) -> list[tuple[str, bytes]]:
    """(topic, payload) per mine of ``rows`` (minute, mine, area, count)."""
    groups: dict[str, dict[str, list[Any]]] = defaultdict(
        lambda: {"minute": [], "area": [], "count": []}
    )
    for minute, mine, area, count in rows:
        columns = groups[mine]
        columns["minute"].append(minute)
        columns["area"].append(area)
        columns["count"].append(count)
    return [
        (statistics_topic(mine),
         orjson.dumps({"v": 1, "kind": "headcount", "source": source, "mine": mine,
                       "rows": columns}))
        for mine, columns in groups.items()
    ]  # fmt: skip


def _epoch(t: dt.datetime) -> int:
    return int(t.timestamp())


class _HeadcountOutbox(Outbox):
    """The minutes after the position (epoch seconds of the last minute sent) that have
    settled."""

    what = "headcounts"
    start = "(floor(extract(epoch FROM now()) / 60) * 60 - 60)::bigint"

    def __init__(self, source: str, settle_s: float, poll_s: float) -> None:
        self._source = source
        self._settle_s = settle_s
        self.poll_s = poll_s

    async def next_round(self, conn: psycopg.AsyncConnection, position: int) -> Round:
        now = _epoch(dt.datetime.now(dt.UTC)) - self._settle_s
        last = min(int(now // 60 * 60), position + 60 * MINUTES)
        if last <= position:
            return Round([], position)
        first = dt.datetime.fromtimestamp(position + 60, dt.UTC)
        upto = dt.datetime.fromtimestamp(last, dt.UTC)
        cur = await conn.execute(_COUNTS, {"first": first, "last": upto})
        messages = batches(await cur.fetchall(), self._source)
        return Round(messages, last, more=last < now // 60 * 60)  # more minutes to catch up


async def publish_headcounts(
    database_url: str, mqtt_url: str, client_id: str, source: str, settle_s: float,
    poll_s: float = 5.0,
) -> None:  # fmt: skip
    """Run until cancelled."""
    outbox = _HeadcountOutbox(source, settle_s, poll_s)
    await publish_outbox(outbox, database_url, mqtt_url, client_id)
