-- Issue 13, item 4: a CO alarm confirmed as a fire by smoke or temperature in its area, a
-- fused alarm (docs/alarms.md "Fusion across systems", F04; alarms/rules/fusion.py).

-- A temperature point of a CO alarm's area that gained more than this since the CO alarm's
-- start confirms a fire (°C). NULL: the engine's default (alarms/rules/fusion.py, 2.0).
ALTER TABLE mines ADD COLUMN IF NOT EXISTS co_fire_temperature_rise double precision
    CHECK (co_fire_temperature_rise > 0);

-- Grade (data: change it per deployment): the highest, like a smoke alarm or a fire candidate.
INSERT INTO alarm_grade_rules (rule, classification, grade, escalate_after_s) VALUES
    ('co_fire_confirmed', '*', 'red', 120)  -- CO alarm with smoke or a temperature rise
ON CONFLICT (rule, classification) DO NOTHING;
