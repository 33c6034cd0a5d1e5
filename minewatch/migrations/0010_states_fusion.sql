-- minewatch schema v10: switch-state alarms and fusion across systems (docs/alarms.md,
-- "Switch states" and "Fusion across systems").

-- alarm_state: the value (0 or 1) of a switch point (value type KG) that is abnormal, e.g. 0 for
-- a fan (1001/1010 停) or a duct (1003 无风), 1 for smoke (1008 有). NULL: no state alarm.
-- area_code: the personnel-positioning area (RYQY, 16 chars) the point sits in; it joins the
-- safety monitoring to the people and cameras of the same area. NULL: not known.
ALTER TABLE points
    ADD COLUMN alarm_state smallint CHECK (alarm_state IN (0, 1)),
    ADD COLUMN area_code   text CHECK (area_code IS NULL OR char_length(area_code) = 16);
CREATE INDEX points_area_idx ON points (mine_code, area_code) WHERE area_code IS NOT NULL;

-- A methane point in the area of a stopped fan counts as rising when it gained more than this
-- since the stop (%CH4). NULL: the engine's default (alarms/rules/fusion.py).
ALTER TABLE mines ADD COLUMN fan_stop_gas_rise double precision CHECK (fan_stop_gas_rise > 0);

-- A fused alarm is an ordinary row of alarms (its subject: the gas point, or the fan point);
-- this row says what it fuses. source_alarm_ids: every alarm it fused over its life (gas
-- alarms; the fan stop first, then the methane pre-warnings/alarms). cards: who is in the
-- area now (people fusion); cameras: the area's cameras offline now (camera fusion); points:
-- the methane points rising (fan fusion).
CREATE TABLE alarm_fusions (
    alarm_id         bigint PRIMARY KEY REFERENCES alarms (id),
    area_code        text NOT NULL,
    source_alarm_ids bigint[] NOT NULL CHECK (cardinality(source_alarm_ids) >= 1),
    cards            text[] NOT NULL DEFAULT '{}',
    cameras          text[] NOT NULL DEFAULT '{}',
    points           integer[] NOT NULL DEFAULT '{}',
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Grades (data, like every grade: change them per deployment).
INSERT INTO alarm_grade_rules (rule, classification, grade, escalate_after_s) VALUES
    ('main_fan_stop',      '*', 'red',    300),  -- 主通风机停
    ('smoke',              '*', 'red',    300),  -- 烟雾报警
    ('fan_stop',           '*', 'orange', 600),  -- 局部通风机停 (开停报警)
    ('duct_no_wind',       '*', 'orange', 600),  -- 风筒无风 (风筒报警)
    ('state_alarm',        '*', 'yellow', NULL), -- other switch points in their alarm state
    ('gas_people',         '*', 'red',    120),  -- gas alarm with people in the area
    ('fan_stop_gas_rise',  '*', 'red',    300),  -- fan stopped, methane rising in its area
    ('gas_camera_offline', '*', 'orange', 600)   -- gas alarm, the area's camera offline
ON CONFLICT (rule, classification) DO NOTHING;
