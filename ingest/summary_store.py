"""A level that receives summaries from below (``up = "alarms"``, docs/federation.md "A province
that stores summaries") stores them: the alarm, incident and pre-alarm changes the gateways
below publish on ``minewatch/v1/<mine>/alarms``, the 1- and 5-minute statistics and the
personnel head-counts per minute on ``.../statistics``, and the national files their drop
folders accepted on ``.../files`` (each byte for byte, ``federated_national_files``), each
acknowledged to the broker only once committed.

Idempotent by (source, sequence), as the gateway is for readings: a change is recorded once in
``federated_changes`` under its source's name and number, and a record (an alarm, an incident,
a statistic) is only ever replaced by a newer change of it at its source (a head-count by the
source's count of the same minute; a national file is never replaced: once per (source, seq)
and per mine and name), so a resend after a link flap or a bridge restart, in
whatever order, changes nothing. What this installation published itself (it hears its own
alarm topic) is left aside.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg

from minewatch.backoff import Backoff
from minewatch.feeds import TOPIC_ROOT, alarm_topic, files_topic, statistics_topic
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.repository import write_rejections
from minewatch.ingest.sources.mqtt_json.adapter import MqttJsonSource
from minewatch.ingest.summary_contract import (
    ChangeEvent,
    HeadcountBatch,
    NationalFile,
    StatisticsBatch,
    Summary,
    parse_summary,
)
from minewatch.retry import is_transient, stop_if_cancelled

log = logging.getLogger(__name__)

#: What a gateway subscribes to for summaries from below (its broker login limits the mines).
SUMMARY_SUBSCRIPTIONS = [
    f"{TOPIC_ROOT}/+/alarms", f"{TOPIC_ROOT}/+/statistics", f"{TOPIC_ROOT}/+/files",
]  # fmt: skip

#: The largest summary taken: a national file of the drop folder's largest size (64 MiB) in
#: base64, with room for its other fields.
MAX_SUMMARY_BYTES = 96 << 20

_CHANGE = """
INSERT INTO federated_changes (source, seq, mine_code, kind, event, subject_id, at)
VALUES (%(source)s, %(seq)s, %(mine)s, %(kind)s, %(event)s, %(id)s, coalesce(%(time)s, now()))
ON CONFLICT (source, seq) DO NOTHING
"""

_ALARM = """
INSERT INTO federated_alarms (source, source_id, last_seq, mine_code, point_code, rule,
    abnormal_type, classification, state, grade, started_at, ended_at, threshold, start_value,
    max_value, max_at, min_value, min_at, value_count, acknowledged_at, acknowledged_by, cause,
    measures, handled_by, disposed_at)
VALUES (%(source)s, %(id)s, %(seq)s, %(mine)s, %(point)s, %(rule)s, %(abnormal_type)s,
    %(classification)s, %(state)s, %(grade)s, %(started_at)s, %(ended_at)s, %(threshold)s,
    %(value)s, %(max_value)s, %(max_at)s, %(min_value)s, %(min_at)s, %(value_count)s,
    %(acknowledged_at)s, %(acknowledged_by)s, %(cause)s, %(measures)s, %(handled_by)s,
    %(disposed_at)s)
ON CONFLICT (source, source_id) DO UPDATE SET last_seq = EXCLUDED.last_seq,
    point_code = EXCLUDED.point_code, classification = EXCLUDED.classification,
    state = EXCLUDED.state, grade = EXCLUDED.grade, ended_at = EXCLUDED.ended_at,
    threshold = EXCLUDED.threshold, max_value = EXCLUDED.max_value, max_at = EXCLUDED.max_at,
    min_value = EXCLUDED.min_value, min_at = EXCLUDED.min_at,
    value_count = EXCLUDED.value_count, acknowledged_at = EXCLUDED.acknowledged_at,
    acknowledged_by = EXCLUDED.acknowledged_by, cause = EXCLUDED.cause,
    measures = EXCLUDED.measures, handled_by = EXCLUDED.handled_by,
    disposed_at = EXCLUDED.disposed_at, received_at = now()
WHERE federated_alarms.last_seq < EXCLUDED.last_seq
"""

_INCIDENT = """
INSERT INTO federated_incidents (source, source_id, last_seq, mine_code, root_point_code,
    root_rule, category, grade, state, started_at, ended_at, peak_value, members)
VALUES (%(source)s, %(id)s, %(seq)s, %(mine)s, %(root_point)s, %(root_rule)s, %(category)s,
    %(grade)s, %(state)s, %(started_at)s, %(ended_at)s, %(peak)s, %(members)s)
ON CONFLICT (source, source_id) DO UPDATE SET last_seq = EXCLUDED.last_seq,
    grade = EXCLUDED.grade, state = EXCLUDED.state, ended_at = EXCLUDED.ended_at,
    peak_value = EXCLUDED.peak_value, members = EXCLUDED.members, received_at = now()
WHERE federated_incidents.last_seq < EXCLUDED.last_seq
"""

_STATISTICS = """
INSERT INTO federated_statistics (mine_code, point_code, width_s, bucket, source, seq, n, min,
    max, mean, last, last_time)
SELECT %(mine)s, s.point, %(width_s)s, s.bucket, %(source)s, s.seq, s.n, s.min, s.max, s.mean,
       s.last, s.last_time
FROM unnest(%(seq)s::bigint[], %(point)s::text[], %(bucket)s::timestamptz[], %(n)s::int[],
            %(min)s::float8[], %(max)s::float8[], %(mean)s::float8[], %(last)s::float8[],
            %(last_time)s::timestamptz[])
     AS s(seq, point, bucket, n, min, max, mean, last, last_time)
ON CONFLICT (mine_code, point_code, width_s, bucket) DO UPDATE SET source = EXCLUDED.source,
    seq = EXCLUDED.seq, n = EXCLUDED.n, min = EXCLUDED.min, max = EXCLUDED.max,
    mean = EXCLUDED.mean, last = EXCLUDED.last, last_time = EXCLUDED.last_time,
    received_at = now()
WHERE federated_statistics.source <> EXCLUDED.source OR federated_statistics.seq < EXCLUDED.seq
"""

_FILE = """
INSERT INTO federated_national_files (source, seq, mine_code, name, file_type, uploaded_at,
    sha256, content)
VALUES (%(source)s, %(seq)s, %(mine)s, %(name)s, %(type)s, %(uploaded_at)s, %(sha256)s,
    %(content)s)
ON CONFLICT DO NOTHING
"""

_HEADCOUNTS = """
INSERT INTO federated_headcounts (mine_code, area_code, minute, source, count)
SELECT %(mine)s, h.area, h.minute, %(source)s, h.count
FROM unnest(%(minute)s::timestamptz[], %(area)s::text[], %(count)s::int[])
     AS h(minute, area, count)
ON CONFLICT (mine_code, area_code, minute) DO UPDATE SET source = EXCLUDED.source,
    count = EXCLUDED.count, received_at = now()
WHERE (federated_headcounts.source, federated_headcounts.count)
    IS DISTINCT FROM (EXCLUDED.source, EXCLUDED.count)
"""


async def store_summary(cur: psycopg.AsyncCursor, message: Summary) -> bool:
    """Apply one summary in the cursor's transaction; false: a change already recorded."""
    if isinstance(message, StatisticsBatch):
        await cur.execute(_STATISTICS, {
            "mine": message.mine, "width_s": message.width_s, "source": message.source,
            **message.rows.model_dump(),
        })  # fmt: skip
        return True
    if isinstance(message, NationalFile):
        # the bytes themselves (model_dump gives a Base64Bytes field in base64 again)
        await cur.execute(_FILE, {**message.model_dump(exclude={"content"}),
                                  "content": message.content})  # fmt: skip
        if cur.rowcount == 0:
            log.debug("%s (%s/%s) already stored", message.name, message.source, message.seq)
        return cur.rowcount == 1
    if isinstance(message, HeadcountBatch):
        await cur.execute(_HEADCOUNTS, {
            "mine": message.mine, "source": message.source, **message.rows.model_dump(),
        })  # fmt: skip
        return True
    row = message.model_dump()
    await cur.execute(_CHANGE, row)
    if cur.rowcount == 0:
        return False  # crossed twice
    if message.kind == "alarm":
        await cur.execute(_ALARM, row)
    elif message.kind == "incident":
        await cur.execute(_INCIDENT, row)
    return True


class SummaryStore:
    """Receives the summaries of the levels below and stores them."""

    def __init__(
        self, database_url: str, mqtt_url: str, client_id: str, own_sources: set[str],
        max_message_bytes: int = MAX_SUMMARY_BYTES,
    ) -> None:  # fmt: skip
        self._url = database_url
        self._own = own_sources
        self._source = MqttJsonSource(
            mqtt_url, client_id, SUMMARY_SUBSCRIPTIONS, max_message_bytes, parse=parse_summary
        )
        self.connected = self._source.connected

    async def run(self) -> None:
        """Run until cancelled."""
        conn: psycopg.AsyncConnection | None = None
        try:
            async for delivery in self._source.deliveries():
                message = delivery.message
                if isinstance(
                    message, ChangeEvent | StatisticsBatch | HeadcountBatch | NationalFile
                ) and (message.source in self._own):
                    delivery.ack()  # what this installation published itself
                    continue
                backoff = Backoff()
                while True:
                    try:
                        if conn is None or conn.closed:
                            conn = await psycopg.AsyncConnection.connect(self._url)
                        await self._store(conn, message)
                        break
                    except psycopg.Error as error:
                        stop_if_cancelled(error)
                        if conn is not None:
                            await conn.close()
                            conn = None
                        if not is_transient(error):
                            log.error("summary refused by the database: %s", error)
                            if isinstance(message, Rejection):
                                break  # the quarantine refused it too: nothing more to do
                            message = _refused(message, error)
                            continue  # kept in the quarantine, with the reason
                        delay = backoff.next_delay()
                        log.warning("storing a summary failed (%s); retry in %.1fs", error, delay)
                        await asyncio.sleep(delay)
                delivery.ack()
        finally:
            if conn is not None:
                await conn.close()

    @staticmethod
    async def _store(conn: psycopg.AsyncConnection, message: Summary | Rejection) -> None:
        async with conn.transaction(), conn.cursor() as cur:
            if isinstance(message, Rejection):
                await write_rejections(cur, [message])
                return
            if not await store_summary(cur, message):
                log.debug("change %s/%s already stored", message.source,
                          getattr(message, "seq", None))  # fmt: skip


def _refused(message: Summary, error: BaseException) -> Rejection:
    """A summary the database refused for good, as a quarantine record."""
    if isinstance(message, NationalFile):
        topic = files_topic(message.mine)
    else:
        topic = (alarm_topic if isinstance(message, ChangeEvent) else statistics_topic)(
            message.mine
        )
    return Rejection(topic, QuarantineReason.DATABASE_REJECTED, str(error)[:2000],
                     message.model_dump_json().encode())  # fmt: skip


__all__ = ["SUMMARY_SUBSCRIPTIONS", "SummaryStore", "store_summary"]
