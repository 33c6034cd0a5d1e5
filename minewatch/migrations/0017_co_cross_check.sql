-- Issue 13, second step: CO classes, sensor cross-checks, incidents on the live stream
-- (docs/alarms.md "CO: exhaust is not fire", "Sensors checked against each other", "Incidents").

-- CO classes (alarms/rules/co.py). co_puff_max_s: on a CO point where vehicles pass, a CO
-- alarm that ends within this is a suspected exhaust puff (NULL: no vehicles here, never a
-- puff); co_fire_after_s: CO at the alarm level this long is a fire candidate (NULL: 180 s).
-- Cross-check (alarms/rules/cross_check.py): NULL = the engine's default.
ALTER TABLE points
    ADD COLUMN IF NOT EXISTS co_puff_max_s double precision CHECK (co_puff_max_s > 0),
    ADD COLUMN IF NOT EXISTS co_fire_after_s double precision CHECK (co_fire_after_s > 0),
    ADD COLUMN IF NOT EXISTS cross_check_ratio double precision
        CHECK (cross_check_ratio > 0 AND cross_check_ratio < 1),
    ADD COLUMN IF NOT EXISTS cross_check_min double precision CHECK (cross_check_min >= 0),
    ADD COLUMN IF NOT EXISTS cross_check_s double precision CHECK (cross_check_s > 0);

ALTER TABLE alarms DROP CONSTRAINT alarms_classification_known;
ALTER TABLE alarms ADD CONSTRAINT alarms_classification_known CHECK (classification IN (
    'exceedance', 'calibration_flagged', 'calibration_declared', 'calibration_undeclared',
    'interference', 'disconnection', 'negative_drift', 'flatline', 'over_range',
    'substation_fault', 'data_interruption', 'delivery_delay', 'power_off_failure',
    'violation', 'distress',
    'co_vehicle_suspected',    -- a short CO puff where vehicles pass (alarms/rules/co.py)
    'cross_check'              -- far below its neighbours on the airflow path
));

-- Grades (data: change them per deployment). A suspected exhaust puff is below an
-- exceedance's orange; a fire candidate is red.
INSERT INTO alarm_grade_rules (rule, classification, grade, escalate_after_s) VALUES
    ('upper_alarm',       'co_vehicle_suspected', 'yellow', NULL),
    ('co_fire_candidate', '*',                    'red',    120),
    ('cross_check',       '*',                    'blue',   NULL)
ON CONFLICT (rule, classification) DO NOTHING;

-- Incident events on the numbered change log the SSE stream reads (migration 0013): a row
-- names an alarm or an incident.
ALTER TABLE alarm_changes ALTER COLUMN alarm_id DROP NOT NULL;
ALTER TABLE alarm_changes ADD COLUMN IF NOT EXISTS incident_id bigint;
ALTER TABLE alarm_changes ADD CONSTRAINT alarm_changes_one_subject
    CHECK ((alarm_id IS NULL) <> (incident_id IS NULL));

CREATE FUNCTION minewatch_incident_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        kind := 'opened';
    ELSIF NEW.state = 'disposed' AND OLD.state <> 'disposed' THEN
        kind := 'disposed';
    ELSIF NEW.acknowledged_at IS NOT NULL AND OLD.acknowledged_at IS NULL THEN
        kind := 'acknowledged';
    ELSIF NEW.ended_at IS NOT NULL AND OLD.ended_at IS NULL THEN
        kind := 'closed';
    ELSE
        kind := 'updated';  -- members joined, a member's end, the grade or the peak
    END IF;
    INSERT INTO alarm_changes (incident_id, mine_code, event) VALUES (NEW.id, NEW.mine_code, kind);
    RETURN NULL;
END
$$;
CREATE TRIGGER incidents_changes AFTER INSERT OR UPDATE ON incidents
    FOR EACH ROW EXECUTE FUNCTION minewatch_incident_change();
