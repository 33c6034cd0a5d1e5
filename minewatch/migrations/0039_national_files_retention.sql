-- 0039: retention of the national files (migration 0032), in the same scheme as the
-- hypertables (docs/operations.md "Retention and statistics").
--
-- A policy may now name an ordinary table: `time_column` set, its rows older than `keep` by that
-- column are deleted (a hypertable's, `time_column` NULL, lose whole chunks with drop_chunks).
-- With `outbox` set too, a row is kept whatever its age until every publisher of that outbox
-- (the rows '<outbox>:<client id>' of outbox_positions) has passed its `seq`, and while no
-- publisher has run at all: what was not yet sent up is never dropped.
ALTER TABLE retention_policies
    ADD COLUMN time_column text,
    ADD COLUMN outbox text CHECK (outbox IS NULL OR time_column IS NOT NULL);

-- What a deletion of rows removed (a drop of chunks counts in `chunks`).
ALTER TABLE maintenance_log ADD COLUMN rows_deleted bigint NOT NULL DEFAULT 0;

-- The national files are what the mine reported to the regulator, byte for byte: its alarms
-- (YCBJ), statistics (TJSJ) and states (FZSS) as well as its real-time values (CDSS). AQ 6201
-- asks at least a year for statistics and alarms; one policy per table takes the longer floor,
-- and the same 400 days as the other tables of that floor. Counted from when the file arrived
-- at this level (`stored_at`, `received_at`), not from its header's upload time, so a file that
-- reaches a level late is kept there the whole period all the same.
INSERT INTO retention_policies (hypertable, keep, floor, note, time_column, outbox) VALUES
    ('national_files', '400 days', '1 year', 'national files received here, byte for byte',
     'stored_at', 'national-files'),
    ('federated_national_files', '400 days', '1 year', 'national files of the mines below',
     'received_at', NULL)
ON CONFLICT (hypertable) DO NOTHING;

CREATE INDEX national_files_stored_idx ON national_files (stored_at);
CREATE INDEX federated_national_files_received_idx ON federated_national_files (received_at);
