-- minewatch schema v4: alarms whose subject is not a measuring point (people, areas, the mine),
-- and the per-mine limits of the personnel and output rules (docs/alarms.md, "Personnel and
-- output alarms"). Limits are data: NULL switches a rule off for the mine.

-- A subject is a point (point_id, as before), a person (card code, 17 chars), an area (area
-- code, 16 chars) or the mine (mine code, 12 chars). Card and area codes begin with the mine
-- code, so (subject_kind, subject_code) names one subject across all mines.
ALTER TABLE alarms ALTER COLUMN point_id DROP NOT NULL;
ALTER TABLE alarms
    ADD COLUMN subject_kind text NOT NULL DEFAULT 'point'
        CHECK (subject_kind IN ('point', 'person', 'area', 'mine')),
    ADD COLUMN subject_code text,
    -- The key of the one-open-episode index: the point id for point alarms, else the code.
    ADD COLUMN subject_key text GENERATED ALWAYS AS (coalesce(point_id::text, subject_code)) STORED;
ALTER TABLE alarms ADD CONSTRAINT alarms_subject_known CHECK (CASE
    WHEN subject_kind = 'point' THEN point_id IS NOT NULL AND subject_code IS NULL
    ELSE point_id IS NULL AND subject_code IS NOT NULL
END);

-- At most one open episode per (subject, rule), for every kind of subject.
DROP INDEX alarms_one_open_idx;
CREATE UNIQUE INDEX alarms_one_open_idx ON alarms (subject_kind, subject_key, rule)
    WHERE ended_at IS NULL;
CREATE INDEX alarms_subject_idx ON alarms (subject_kind, subject_code, started_at DESC)
    WHERE subject_code IS NOT NULL;

ALTER TABLE alarms DROP CONSTRAINT alarms_classification_known;
ALTER TABLE alarms ADD CONSTRAINT alarms_classification_known CHECK (classification IN (
    'exceedance',              -- real excursion of a gas/threshold rule; a count/time/output limit
    'calibration_flagged',     -- status bit 4 (标校), no declared window
    'calibration_declared',    -- inside a declared calibration window (计划性)
    'calibration_undeclared',  -- calibration-like shape without declaration (未报备)
    'interference',            -- single-sample spike that returned at the next sample
    'disconnection',           -- status bit 128 (传感器断线/故障)
    'negative_drift',          -- persistent readings below the range bottom (负漂)
    'flatline',                -- identical readings over a window (stuck sensor)
    'over_range',              -- status bit 8 (超量程)
    'substation_fault',        -- status bit 16 (分站故障)
    'data_interruption',       -- no reading for N polling cycles (数据中断)
    'delivery_delay',          -- an interruption whose readings arrived late, none missing
    'power_off_failure',       -- 馈电异常: feed still on after the control time
    'violation',               -- a rule of conduct broken: 限制区域 entry, 带班空岗
    'distress'                 -- a person calls for help (求救)
));

-- Per-mine limits of the personnel and output rules.
ALTER TABLE mines
    -- Local time of the mine: shift starts, months and years of output are in it.
    ADD COLUMN timezone               text NOT NULL DEFAULT 'Asia/Shanghai',
    -- 超时: longest allowed time underground per descent (shift length + margin), hours.
    ADD COLUMN max_underground_h      double precision CHECK (max_underground_h > 0),
    -- 矿井超员: 核定下井人数 (单班限员), people underground at once.
    ADD COLUMN max_underground_people integer CHECK (max_underground_people >= 0),
    -- 带班: local hours at which shifts start (三八制: {0,8,16}); a crew belongs to the shift
    -- whose start is nearest to its descent, and each shift needs its own leader underground.
    ADD COLUMN shift_starts           smallint[] CHECK (
        shift_starts IS NULL OR (cardinality(shift_starts) >= 1
                                 AND 0 <= ALL (shift_starts) AND 23 >= ALL (shift_starts))),
    -- 超能力 (重大事故隐患判定标准): month > 10% and year > 110% of approved_capacity_t.
    ADD COLUMN output_month_share     double precision NOT NULL DEFAULT 0.10
        CHECK (output_month_share > 0),
    ADD COLUMN output_year_share      double precision NOT NULL DEFAULT 1.10
        CHECK (output_year_share > 0);
