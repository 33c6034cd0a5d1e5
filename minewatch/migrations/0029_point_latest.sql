-- The newest reading of every point, kept where the gateway writes (ingest/writer.py, one
-- upsert per write batch in the batch's transaction: ingest/repository.py write_latest), so
-- that the console's overviews read one row per point instead of probing `readings` per point
-- (docs/benchmarks.md, "Found: a plan that turns the last data time into a full scan").
-- A row only moves forward in time: a late or replayed reading older than the row leaves it.
-- Readings written outside the gateway (a restore, a bulk load, a test) are not seen until
-- refresh_point_latest() is run.
CREATE TABLE point_latest (
    point_id integer PRIMARY KEY,          -- points.id (no foreign key, like readings)
    time     timestamptz      NOT NULL,    -- the newest reading's time
    value    double precision NOT NULL,    -- its value
    status   smallint         NOT NULL     -- its status bits (测点状态)
);

-- (Re)fill from `readings`: per point, its newest reading. The probe orders by
-- (point_id, time): the lateral point_id is not a constant to the planner, so only the
-- (point_id, time DESC) index gives that order and each chunk is probed through it, never
-- through the chunk's time index (the plan that read whole chunks per point). Cost: one index
-- probe per point and chunk. Returns the rows inserted or moved forward.
CREATE FUNCTION refresh_point_latest() RETURNS bigint LANGUAGE sql AS $$
    WITH up AS (
        INSERT INTO point_latest (point_id, time, value, status)
        SELECT p.id, r.time, r.value, r.status FROM points p
        CROSS JOIN LATERAL (SELECT time, value, status FROM readings
            WHERE point_id = p.id ORDER BY point_id DESC, time DESC LIMIT 1) r
        ON CONFLICT (point_id) DO UPDATE SET time = EXCLUDED.time, value = EXCLUDED.value,
            status = EXCLUDED.status WHERE point_latest.time < EXCLUDED.time
        RETURNING 1)
    SELECT count(*) FROM up
$$;

SELECT refresh_point_latest();
