-- minewatch schema v3: per-point settings of the alarm rule families, declared calibration
-- windows (报备), and the classification of every alarm episode.
--
-- Every setting is nullable: NULL means "the engine's default" (alarms/rules/params.py), so
-- existing point definitions keep working and a mine only fills in what it configures.

ALTER TABLE points
    ADD COLUMN on_delay_s          double precision CHECK (on_delay_s >= 0),  -- excursion must last this long (event time)
    ADD COLUMN prewarn_high        double precision,  -- 超上限预警 level (YCBJ 009)
    ADD COLUMN prewarn_high_clear  double precision,
    ADD COLUMN prewarn_low         double precision,  -- 超下限预警 level (YCBJ 010)
    ADD COLUMN prewarn_low_clear   double precision,
    ADD COLUMN poll_cycle_s        double precision CHECK (poll_cycle_s > 0),  -- 巡检周期 (AQ 6201: <= 30 s)
    ADD COLUMN interruption_cycles integer CHECK (interruption_cycles >= 1),  -- silent cycles = 数据中断
    ADD COLUMN control_time_s      double precision CHECK (control_time_s >= 0),  -- 馈电 must drop within this
    ADD COLUMN flatline_samples    integer CHECK (flatline_samples >= 0),  -- identical samples = stuck; 0 = off
    ADD COLUMN calibration_gas     double precision CHECK (calibration_gas > 0);  -- 标准气样 concentration

-- A declared (报备) calibration: readings of the point inside [started_at, ended_at) are test
-- gas, whatever their status bits say. Declared before the work, by a named person.
CREATE TABLE calibrations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    point_id    integer NOT NULL REFERENCES points (id),
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz NOT NULL,
    declared_by text NOT NULL CHECK (declared_by <> ''),
    declared_at timestamptz NOT NULL DEFAULT now(),
    note        text NOT NULL DEFAULT '',
    CHECK (ended_at > started_at)
);
CREATE INDEX calibrations_point_idx ON calibrations (point_id, started_at);

-- When the engine raised the episode (after confirmation / on-delay); started_at stays the
-- event time of the excursion's first reading. The difference is the alarm's latency.
ALTER TABLE alarms ADD COLUMN raised_at timestamptz;

ALTER TABLE alarms ADD CONSTRAINT alarms_classification_known CHECK (classification IN (
    'exceedance',              -- real excursion of a gas/threshold rule
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
    'power_off_failure'        -- 馈电异常: feed still on after the control time
));
