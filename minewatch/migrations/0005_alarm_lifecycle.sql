-- minewatch schema v5: alarm lifecycle and disposal (raised -> acknowledged -> cleared ->
-- disposed), shelving with a reason and an expiry, grading (red/orange/yellow/blue) from
-- rules kept as data, and escalation of unacknowledged alarms.

ALTER TABLE alarms
    ADD COLUMN grade          text CHECK (grade IN ('red', 'orange', 'yellow', 'blue')),
    ADD COLUMN escalated_at   timestamptz,
    ADD COLUMN shelved_by     text,
    ADD COLUMN shelved_reason text,
    ADD COLUMN shelved_until  timestamptz;

-- Grade of an episode by (rule, classification); '*' matches any classification. The most
-- specific row wins. escalate_after_s: an episode of that grade not acknowledged this long
-- after it was raised is escalated (NULL: never).
CREATE TABLE alarm_grade_rules (
    rule             text NOT NULL,
    classification   text NOT NULL DEFAULT '*',
    grade            text NOT NULL CHECK (grade IN ('red', 'orange', 'yellow', 'blue')),
    escalate_after_s double precision CHECK (escalate_after_s > 0),
    PRIMARY KEY (rule, classification)
);

-- Defaults (change them per deployment: they are data). 红: power cut / power-off failure;
-- 橙: gas over the alarm level; 黄: pre-warnings and undeclared calibrations; 蓝: maintenance.
INSERT INTO alarm_grade_rules (rule, classification, grade, escalate_after_s) VALUES
    ('power_off',         '*',                      'red',    300),
    ('feed_abnormal',     '*',                      'red',    300),
    ('upper_alarm',       '*',                      'orange', 900),
    ('lower_alarm',       '*',                      'orange', 900),
    ('upper_alarm',       'calibration_undeclared', 'yellow', NULL),
    ('power_off',         'calibration_undeclared', 'yellow', NULL),
    ('upper_prewarn',     '*',                      'yellow', NULL),
    ('lower_prewarn',     '*',                      'yellow', NULL),
    ('calibration',       '*',                      'blue',   NULL),
    ('interference',      '*',                      'blue',   NULL),
    ('disconnection',     '*',                      'blue',   NULL),
    ('over_range',        '*',                      'blue',   NULL),
    ('substation_fault',  '*',                      'blue',   NULL),
    ('negative_drift',    '*',                      'blue',   NULL),
    ('flatline',          '*',                      'blue',   NULL),
    ('data_interruption', '*',                      'blue',   NULL),
    ('*',                 '*',                      'yellow', NULL);

-- Grading is done by the database for every writer of alarms (gas engine, personnel rules),
-- on insert and whenever the classification changes (an episode reclassified when it ends).
CREATE FUNCTION minewatch_grade_alarm() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.classification IS DISTINCT FROM OLD.classification THEN
        SELECT g.grade INTO NEW.grade
        FROM alarm_grade_rules g
        WHERE g.rule IN (NEW.rule, '*') AND g.classification IN (NEW.classification, '*')
        ORDER BY (g.rule = NEW.rule) DESC, (g.classification = NEW.classification) DESC
        LIMIT 1;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER alarms_grade BEFORE INSERT OR UPDATE ON alarms
    FOR EACH ROW EXECUTE FUNCTION minewatch_grade_alarm();

CREATE INDEX alarms_unacknowledged_idx ON alarms (grade, started_at)
    WHERE acknowledged_at IS NULL AND escalated_at IS NULL;
