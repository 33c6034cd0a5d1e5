-- Corrections by late readings (issue 15; docs/alarms.md "Batching and late data").
--
-- A stored episode that late readings change (an end or a peak moved, an interruption the
-- late readings fill) is corrected in place, so that the per-point record is what happened,
-- and the values it had before are kept here: one row per correction, never overwritten.
CREATE TABLE IF NOT EXISTS alarm_corrections (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alarm_id     bigint NOT NULL REFERENCES alarms (id) ON DELETE CASCADE,
    corrected_at timestamptz NOT NULL DEFAULT now(),
    reason       text NOT NULL,          -- 'late_readings' | 'late_readings_filled_interruption'
    previous     jsonb NOT NULL,         -- the fields changed, as they were
    corrected    jsonb NOT NULL          -- the same fields, as they are now
);
CREATE INDEX IF NOT EXISTS alarm_corrections_alarm_idx ON alarm_corrections (alarm_id, id);

-- The last correction of an episode (NULL: never corrected).
ALTER TABLE alarms ADD COLUMN IF NOT EXISTS corrected_at timestamptz;

-- An incident opened by episodes computed late only (history, not seen live).
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS computed_late boolean NOT NULL DEFAULT false;

-- The live change log (migration 0013) numbers a correction as an event of its own, so the SSE
-- stream shows it; the rest of the function is unchanged.
CREATE OR REPLACE FUNCTION minewatch_alarm_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        kind := 'raised';
    ELSIF NEW.state = 'disposed' AND OLD.state <> 'disposed' THEN
        kind := 'disposed';
    ELSIF NEW.corrected_at IS DISTINCT FROM OLD.corrected_at THEN
        kind := 'corrected';
    ELSIF NEW.ended_at IS NOT NULL AND OLD.ended_at IS NULL THEN
        kind := 'cleared';
    ELSIF NEW.acknowledged_at IS NOT NULL AND OLD.acknowledged_at IS NULL THEN
        kind := 'acknowledged';
    ELSIF NEW.escalated_at IS NOT NULL AND OLD.escalated_at IS NULL THEN
        kind := 'escalated';
    ELSIF NEW.shelved_until IS DISTINCT FROM OLD.shelved_until THEN
        kind := CASE WHEN NEW.shelved_until IS NULL THEN 'unshelved' ELSE 'shelved' END;
    ELSIF NEW.grade IS DISTINCT FROM OLD.grade THEN
        kind := 'regraded';
    ELSIF NEW.cause IS DISTINCT FROM OLD.cause OR NEW.measures IS DISTINCT FROM OLD.measures THEN
        kind := 'amended';
    ELSE
        RETURN NULL;  -- statistics only (max, mean): not an event of the live board
    END IF;
    INSERT INTO alarm_changes (alarm_id, mine_code, event) VALUES (NEW.id, NEW.mine_code, kind);
    RETURN NULL;
END
$$;
