"""Personnel head-counts of this installation's mines per whole minute, sent up on
``minewatch/v1/<mine>/statistics`` for a level that stores summaries (docs/federation.md).

For each minute ``t``: the people underground at ``t`` in the whole mine (``personnel_trips``
open at ``t``; area ``""``, zero included) and in each area with people
(``personnel_stays``). A minute is counted once ``settle_s`` has passed after it (the
personnel feed's lateness), and only then: a count is what the installation knew then. The
durable position is the last minute sent (``outbox_positions``, epoch seconds), moved once the
broker has acknowledged it; after a broker outage the minutes of the outage are counted from the
stored trips and stays and sent, so none is missing above. A new publisher starts at the
current minute.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from typing import Any

import aiomqtt
import orjson
import psycopg

from minewatch.backoff import Backoff
from minewatch.broker_auth import login_options
from minewatch.feeds import broker_address, statistics_topic
from minewatch.outbox import read_position, write_position
from minewatch.retry import resume_cancellation, stop_if_cancelled

log = logging.getLogger(__name__)

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


async def publish_headcounts(
    database_url: str, mqtt_url: str, client_id: str, source: str, settle_s: float,
    poll_s: float = 5.0,
) -> None:  # fmt: skip
    """Run until cancelled."""
    host, port = broker_address(mqtt_url)
    login: dict[str, Any] = login_options(mqtt_url)
    name = f"headcounts:{client_id}"
    backoff = Backoff()
    while True:
        try:
            async with (
                await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn,
                aiomqtt.Client(host, port, identifier=client_id, **login) as client,
            ):
                start = "(floor(extract(epoch FROM now()) / 60) * 60 - 60)::bigint"
                position = await read_position(conn, name, start)
                backoff.reset()
                while True:
                    resume_cancellation()
                    now = _epoch(dt.datetime.now(dt.UTC)) - settle_s
                    last = min(int(now // 60 * 60), position + 60 * MINUTES)
                    if last > position:
                        first = dt.datetime.fromtimestamp(position + 60, dt.UTC)
                        upto = dt.datetime.fromtimestamp(last, dt.UTC)
                        cur = await conn.execute(_COUNTS, {"first": first, "last": upto})
                        for topic, payload in batches(await cur.fetchall(), source):
                            await client.publish(topic, payload, qos=1)  # acknowledged
                        position = last
                        await write_position(conn, name, position)
                        if last < now // 60 * 60:
                            continue  # more minutes to catch up
                    await asyncio.sleep(poll_s)
        except (aiomqtt.MqttError, psycopg.Error, OSError) as error:
            stop_if_cancelled(error)
            delay = backoff.next_delay()
            log.warning("head-count publisher: %s; retry in %.1fs", error, delay)
            await asyncio.sleep(delay)
