-- Pre-alarm events on the numbered change log the SSE stream reads (migrations 0013, 0017):
-- a row names an alarm, an incident or a pre-alarm (issue 17, docs/alarms.md "Pre-alarms"),
-- so a screen resuming with Last-Event-ID gets the pre-alarms raised and cleared meanwhile.
ALTER TABLE alarm_changes ADD COLUMN IF NOT EXISTS prealarm_id bigint;
ALTER TABLE alarm_changes DROP CONSTRAINT alarm_changes_one_subject;
ALTER TABLE alarm_changes ADD CONSTRAINT alarm_changes_one_subject CHECK (
    (alarm_id IS NOT NULL)::int + (incident_id IS NOT NULL)::int
    + (prealarm_id IS NOT NULL)::int = 1
);

CREATE FUNCTION minewatch_prealarm_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO alarm_changes (prealarm_id, mine_code, event)
        VALUES (NEW.id, NEW.mine_code, 'raised');
    ELSIF NEW.cleared_at IS NOT NULL AND OLD.cleared_at IS NULL THEN
        INSERT INTO alarm_changes (prealarm_id, mine_code, event)
        VALUES (NEW.id, NEW.mine_code, 'cleared');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER prealarms_changes AFTER INSERT OR UPDATE ON prealarms
    FOR EACH ROW EXECUTE FUNCTION minewatch_prealarm_change();
