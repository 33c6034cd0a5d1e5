-- Late data and sequence gaps (issue 15; docs/alarms.md "Batching and late data",
-- docs/feeds.md "Delivery semantics").

-- An episode found by evaluating readings that arrived after newer readings of their point (a
-- mine catching up after an outage), in their own time order: the live engine had already
-- passed them. Regulators see it as computed late.
ALTER TABLE alarms ADD COLUMN IF NOT EXISTS computed_late boolean NOT NULL DEFAULT false;

-- Sequence numbers of a source that never arrived, recorded when the next one did, so that a
-- regulator sees what is missing (and for how long) and not only a counter.
CREATE TABLE IF NOT EXISTS sequence_gaps (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text NOT NULL,         -- <mine>/<substation> (the unit of sequence numbering)
    boot        bigint NOT NULL,
    first_seq   bigint NOT NULL,       -- the first number missing
    last_seq    bigint NOT NULL,       -- the last number missing
    missing     bigint GENERATED ALWAYS AS (last_seq - first_seq + 1) STORED,
    -- numbers of the range that arrived after all (a bridge resending after a link outage
    -- fills its hole: ingest/sequence.py); still missing = missing - filled
    filled      bigint NOT NULL DEFAULT 0,
    next_time   timestamptz,           -- event time of the message that came after the gap
    detected_at timestamptz NOT NULL DEFAULT now(),
    CHECK (first_seq <= last_seq)
);
CREATE INDEX IF NOT EXISTS sequence_gaps_source_idx ON sequence_gaps (source, detected_at DESC);

-- TimescaleDB's own "Job History Log Retention Policy" (job 3 in 2.19) runs a function of the
-- community licence; under the Apache licence minewatch's TimescaleDB is built with, it fails
-- at every start of the server and logs ERROR: functionality not supported under the current
-- "apache" license. minewatch runs no TimescaleDB job (retention and statistics are its own
-- maintenance task): unschedule it. alter_job() is community-licensed too, hence the catalog.
DO $$
BEGIN
    IF current_setting('timescaledb.license', true) = 'apache' THEN
        UPDATE _timescaledb_config.bgw_job SET scheduled = false
        WHERE proc_schema = '_timescaledb_functions'
          AND proc_name = 'policy_job_stat_history_retention';
    END IF;
EXCEPTION WHEN insufficient_privilege OR undefined_table OR undefined_column THEN
    RAISE NOTICE 'TimescaleDB job history retention left scheduled: %', SQLERRM;
END $$;
