-- 0014: retention as data, and the 1-minute and 5-minute statistics per point (rollups).
--
-- minewatch's maintenance task (ingest/maintenance/) drops the chunks of each hypertable older
-- than its `keep`, and fills the rollups from the raw readings (the Apache edition of
-- TimescaleDB has neither retention policies nor continuous aggregates).

CREATE TABLE retention_policies (
    hypertable text PRIMARY KEY,
    keep       interval NOT NULL CHECK (keep > INTERVAL '0'),
    -- the minimum AQ 6201 asks for; a `keep` below it is applied, and warned about
    floor      interval NOT NULL DEFAULT INTERVAL '0',
    note       text NOT NULL DEFAULT ''
);

-- AQ 6201: real-time values at least 7 days, statistics and alarms at least one year. Raw data
-- is kept 30 days by default: the gateway accepts readings up to 30 days late
-- (MINEWATCH_GATEWAY__MAX_PAST_AGE_S), so a chunk is never dropped while it can still grow.
-- Alarms and their records are ordinary tables and are never deleted by minewatch.
INSERT INTO retention_policies (hypertable, keep, floor, note) VALUES
    ('readings',                 '30 days',  '7 days', 'real-time values (实时数据)'),
    ('personnel_positions',      '30 days',  '7 days', 'real-time positions'),
    ('personnel_station_status', '30 days',  '7 days', 'station states'),
    ('video_heartbeats',         '30 days',  '7 days', 'camera heartbeats'),
    ('substation_status',        '30 days',  '7 days', 'substation states'),
    ('video_events',             '400 days', '1 year', 'AI analytic events'),
    ('reported_statistics',      '400 days', '1 year', 'statistics reported in national files'),
    ('readings_1m',              '400 days', '1 year', '1-minute statistics'),
    ('readings_5m',              '400 days', '1 year', '5-minute statistics');

-- One row per bucket and point: the readings of [bucket, bucket + 1 minute).
CREATE TABLE readings_1m (
    bucket    timestamptz      NOT NULL,
    point_id  integer          NOT NULL,
    n         integer          NOT NULL CHECK (n > 0),
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    mean      double precision NOT NULL,
    last      double precision NOT NULL,
    last_time timestamptz      NOT NULL,
    PRIMARY KEY (point_id, bucket)
);
SELECT create_hypertable('readings_1m', by_range('bucket', INTERVAL '7 days'));

CREATE TABLE readings_5m (LIKE readings_1m INCLUDING ALL);
SELECT create_hypertable('readings_5m', by_range('bucket', INTERVAL '30 days'));

-- What the rollup saw of each raw chunk at its last round (ingest/maintenance/rollups.py): its
-- insert count, and for a current chunk the recent window recomputed and the readings in it.
-- More inserts than the window gained mean readings arrived before it: the chunk is
-- recomputed whole (late or replayed data).
CREATE TABLE rollup_chunks (
    chunk       text PRIMARY KEY,          -- schema-qualified name of a `readings` chunk
    range_start timestamptz NOT NULL,
    range_end   timestamptz NOT NULL,
    inserted    bigint      NOT NULL,      -- pg_stat_user_tables.n_tup_ins then
    window_lo   timestamptz,               -- start of the recent window (current chunk only)
    window_rows bigint,                    -- readings in [window_lo, range_end) then
    rolled_at   timestamptz NOT NULL DEFAULT now()
);

-- Every maintenance action, for operators and for `minewatch doctor`.
CREATE TABLE maintenance_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    job        text NOT NULL CHECK (job IN ('retention', 'rollup')),
    hypertable text NOT NULL,
    detail     text NOT NULL,
    chunks     integer NOT NULL DEFAULT 0,
    range_start timestamptz,
    range_end   timestamptz
);
CREATE INDEX maintenance_log_at_idx ON maintenance_log (at DESC);
