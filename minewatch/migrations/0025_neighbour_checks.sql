-- Issue 13: two more sensor cross-checks on the airflow path (alarms/rules/neighbour_checks.py,
-- docs/alarms.md "Sensors checked against each other"): a stuck sensor whose upstream
-- neighbours move (sensor_stuck) and an excursion no neighbour sees (local_excursion).
-- Per-point settings; NULL = the engine's default (RuleDefaults).
ALTER TABLE points
    ADD COLUMN IF NOT EXISTS stuck_tolerance double precision CHECK (stuck_tolerance >= 0),
    ADD COLUMN IF NOT EXISTS stuck_move double precision CHECK (stuck_move > 0),
    ADD COLUMN IF NOT EXISTS stuck_s double precision CHECK (stuck_s > 0),
    ADD COLUMN IF NOT EXISTS excursion_min double precision CHECK (excursion_min > 0),
    ADD COLUMN IF NOT EXISTS excursion_ratio double precision
        CHECK (excursion_ratio > 0 AND excursion_ratio < 1);

ALTER TABLE alarms DROP CONSTRAINT alarms_classification_known;
ALTER TABLE alarms ADD CONSTRAINT alarms_classification_known CHECK (classification IN (
    'exceedance', 'calibration_flagged', 'calibration_declared', 'calibration_undeclared',
    'interference', 'disconnection', 'negative_drift', 'flatline', 'over_range',
    'substation_fault', 'data_interruption', 'delivery_delay', 'power_off_failure',
    'violation', 'distress', 'co_vehicle_suspected', 'cross_check',
    'sensor_stuck',      -- constant while its upstream neighbours move
    'local_excursion'    -- an excursion no neighbour saw (a calibration or local fault candidate)
));

-- Maintenance findings: blue, like the other cross-check (data: change them per deployment).
INSERT INTO alarm_grade_rules (rule, classification, grade, escalate_after_s) VALUES
    ('sensor_stuck',    '*', 'blue', NULL),
    ('local_excursion', '*', 'blue', NULL)
ON CONFLICT (rule, classification) DO NOTHING;
