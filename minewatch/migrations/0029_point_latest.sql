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

-- (Re)fill from `readings`: per point, its newest reading. Each point is probed with its id as
-- a constant (EXECUTE plans each statement afresh): a shared plan with the id as a parameter
-- estimates every point at 1/(distinct points) of a chunk, and on a chunk dominated by a few
-- points that picks the chunk's time index and reads the whole chunk for every point absent
-- from it (a plan seen in docs/benchmarks.md). With the constant, the chunk's statistics say
-- how rare the point is there and its (point_id, time DESC) index is used. Cost: one index
-- probe per point and newest chunk holding it. Returns the rows inserted or moved forward.
CREATE FUNCTION refresh_point_latest() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    point integer;
    moved bigint := 0;
    n bigint;
BEGIN
    FOR point IN SELECT id FROM points ORDER BY id LOOP
        EXECUTE format(
            'INSERT INTO point_latest (point_id, time, value, status) '
            'SELECT point_id, time, value, status FROM readings WHERE point_id = %L '
            'ORDER BY time DESC LIMIT 1 '
            'ON CONFLICT (point_id) DO UPDATE SET time = EXCLUDED.time, '
            'value = EXCLUDED.value, status = EXCLUDED.status '
            'WHERE point_latest.time < EXCLUDED.time', point);
        GET DIAGNOSTICS n = ROW_COUNT;
        moved := moved + n;
    END LOOP;
    RETURN moved;
END
$$;

SELECT refresh_point_latest();
