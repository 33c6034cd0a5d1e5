-- Pre-alarms (issue 17, docs/alarms.md "Pre-alarms"): a forecast reaching a methane point's
-- alarm level within the horizon. Their own class: never a row of `alarms` (the regulatory
-- records), no national code, no effect on alarms or incidents.

-- Each mine's pre-alarm settings: a JSON object of alarms.prealarms.PrealarmParams fields
-- ({"horizon_s": 600, "z": 3, ...}); NULL or a missing field: the engine's default.
ALTER TABLE mines ADD COLUMN IF NOT EXISTS prealarm jsonb;

CREATE TABLE IF NOT EXISTS prealarms (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mine_code    text NOT NULL REFERENCES mines (code),
    point_id     integer NOT NULL REFERENCES points (id),
    raised_at    timestamptz NOT NULL,
    cleared_at   timestamptz,
    level        double precision NOT NULL,  -- the alarm level the forecast reaches
    forecast     double precision NOT NULL,  -- the forecast horizon_s ahead, at the raise
    predicted_at timestamptz,                -- when the fitted line reaches the level
    horizon_s    double precision NOT NULL,
    UNIQUE (point_id, raised_at)
);
CREATE UNIQUE INDEX IF NOT EXISTS prealarms_open_idx ON prealarms (point_id)
    WHERE cleared_at IS NULL;
CREATE INDEX IF NOT EXISTS prealarms_raised_idx ON prealarms (mine_code, raised_at);
