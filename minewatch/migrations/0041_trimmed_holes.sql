-- 0041: the holes a source's mark no longer keeps (ingest/sequence.py, `SourceMark.trimmed`).
--
-- A mark keeps at most 10,000 holes (sequence numbers below its newest not yet arrived). The
-- holes pushed out, those of a jump of more than that many numbers, and the numbers of a boot
-- before the source's first message, used to count as delivered: their message, arriving
-- late, was dropped. (trimmed_boot, trimmed_seq) is the newest such number; a message at or
-- below it that is not a hole kept is asked of the database by the writer (stored: a
-- redelivery, dropped; not stored: new). (-1, -1): nothing trimmed.
ALTER TABLE source_watermarks
    ADD COLUMN trimmed_boot bigint NOT NULL DEFAULT -1,
    ADD COLUMN trimmed_seq  bigint NOT NULL DEFAULT -1;
-- A mark stored before this migration may have pushed holes out already, and which ones is not
-- known: everything up to its newest (boot, seq) that it calls delivered is asked.
UPDATE source_watermarks SET trimmed_boot = boot, trimmed_seq = seq;
