-- 0020: federation up the hierarchy (docs/federation.md).
--
-- Deduplication that does not need a source's messages in order (ingest/sequence.py): besides
-- the newest (boot, seq), the sequence numbers below it not yet arrived, the newest seq seen of
-- each earlier boot, and the boots up to `forgotten` that count as delivered. A broker bridge
-- resends out of order after a link outage; the plain watermark dropped the late messages.
ALTER TABLE source_watermarks
    ADD COLUMN missing   jsonb  NOT NULL DEFAULT '[]',  -- [[boot, seq], ...]
    ADD COLUMN earlier   jsonb  NOT NULL DEFAULT '[]',  -- [[boot, highest seq], ...]
    ADD COLUMN forgotten bigint NOT NULL DEFAULT -1;
-- What the plain watermark meant: every earlier boot is delivered.
UPDATE source_watermarks SET forgotten = boot - 1;
