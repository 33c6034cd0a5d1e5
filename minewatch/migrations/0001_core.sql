-- minewatch schema v1: metadata, readings hypertable, ingest bookkeeping, alarm episodes.
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE mines (
    code                text PRIMARY KEY CHECK (code ~ '^[0-9]{12}$'),
    name                text NOT NULL,
    gas_class           text CHECK (gas_class IN ('low', 'high', 'outburst')),
    approved_capacity_t double precision CHECK (approved_capacity_t >= 0),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE substations (
    mine_code  text NOT NULL REFERENCES mines (code),
    code       text NOT NULL,
    location   text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mine_code, code)
);

-- A measuring point (测点) with the CDDY definition fields. Thresholds are data, per point.
CREATE TABLE points (
    id               integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mine_code        text NOT NULL REFERENCES mines (code),
    code             text NOT NULL,
    system_code      text NOT NULL DEFAULT '01',
    substation_code  text,
    sensor_type      text NOT NULL CHECK (sensor_type ~ '^[0-9]{4}$'),
    value_type       text NOT NULL CHECK (value_type IN ('MN', 'LJ', 'KG', 'DT')),
    unit             text NOT NULL DEFAULT '',
    range_low        double precision,
    range_high       double precision,
    alarm_high       double precision,  -- 上限报警门限
    alarm_high_clear double precision,  -- 上限解报门限
    alarm_low        double precision,  -- 下限报警门限
    alarm_low_clear  double precision,  -- 下限解报门限
    poweroff_high    double precision,  -- 上限断电门限
    restore_high     double precision,  -- 上限复电门限
    poweroff_low     double precision,  -- 下限断电门限
    restore_low      double precision,  -- 下限复电门限
    desc_on          text NOT NULL DEFAULT '',
    desc_off         text NOT NULL DEFAULT '',
    location         text NOT NULL DEFAULT '',
    tag              text NOT NULL DEFAULT '',  -- role on its face/heading: T0, T1, T2, ...
    x                double precision,
    y                double precision,
    z                double precision,
    relations        jsonb NOT NULL DEFAULT '[]',  -- [{"kind": "D", "target": "<point code>", "device": ""}]
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (mine_code, code),
    FOREIGN KEY (mine_code, substation_code) REFERENCES substations (mine_code, code),
    CHECK (range_low IS NULL OR range_high IS NULL OR range_low < range_high)
);

-- Every reading, in event time. status = 测点状态 bits; flags = minewatch's own (1 = late).
CREATE TABLE readings (
    time     timestamptz      NOT NULL,
    point_id integer          NOT NULL,
    value    double precision NOT NULL,
    status   smallint         NOT NULL DEFAULT 0,
    flags    smallint         NOT NULL DEFAULT 0
);
SELECT create_hypertable('readings', by_range('time', INTERVAL '1 day'));
CREATE INDEX readings_point_time_idx ON readings (point_id, time DESC);

-- Highest sequence number stored per source (e.g. "<mine>/<substation>"); written in the same
-- transaction as the data, so a redelivered message is recognised and not stored twice.
CREATE TABLE source_watermarks (
    source     text PRIMARY KEY,
    boot       bigint NOT NULL,  -- the publisher's start; a new boot restarts seq
    seq        bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Input that could not be accepted, kept with its reason; nothing is dropped silently.
CREATE TABLE quarantine (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL,
    reason      text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    payload     bytea NOT NULL
);
CREATE INDEX quarantine_received_idx ON quarantine (received_at DESC);

-- One row per alarm episode (a YCBJ record): raised, updated while active, ended once.
CREATE TABLE alarms (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mine_code       text NOT NULL REFERENCES mines (code),
    point_id        integer NOT NULL REFERENCES points (id),
    rule            text NOT NULL,
    abnormal_type   text NOT NULL,  -- YCBJ 异常类型
    classification  text NOT NULL DEFAULT 'exceedance',
    state           text NOT NULL DEFAULT 'raised'
                    CHECK (state IN ('raised', 'acknowledged', 'cleared', 'disposed')),
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    threshold       double precision,
    start_value     double precision NOT NULL,
    max_value       double precision NOT NULL,
    max_at          timestamptz NOT NULL,
    min_value       double precision NOT NULL,
    min_at          timestamptz NOT NULL,
    value_sum       double precision NOT NULL,
    value_count     bigint NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    cause           text,  -- 异常原因
    measures        text,  -- 处理措施
    handled_by      text,  -- 录入人
    disposed_at     timestamptz,  -- 录入时间
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- At most one open episode per (point, rule), enforced by the database, not by the engine.
CREATE UNIQUE INDEX alarms_one_open_idx ON alarms (point_id, rule) WHERE ended_at IS NULL;
CREATE INDEX alarms_mine_started_idx ON alarms (mine_code, started_at DESC);
