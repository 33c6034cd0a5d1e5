-- 0024: summaries up the hierarchy (docs/federation.md "A province that stores summaries"), and
-- a durable position for the MQTT alarm publisher.

-- Where each outbox publisher of this installation is in its numbered log (the alarm
-- publisher in alarm_changes.seq, the statistics publisher in statistics_changes): what is
-- above the position has not been acknowledged by the broker yet and is published again
-- after a broker outage or a restart.
CREATE TABLE outbox_positions (
    name       text PRIMARY KEY,   -- '<what>:<client id>'
    position   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every write of a 1- or 5-minute statistic gets a new number, in commit order: the rollup
-- writers hold a transaction-level advisory lock while they write (ingest/maintenance), so a
-- number is never committed after a larger one.
CREATE SEQUENCE statistics_changes;
ALTER TABLE readings_1m ADD COLUMN change_seq bigint;
ALTER TABLE readings_5m ADD COLUMN change_seq bigint;
CREATE FUNCTION minewatch_statistic_numbered() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_seq := nextval('statistics_changes');
    RETURN NEW;
END
$$;
CREATE TRIGGER readings_1m_numbered BEFORE INSERT OR UPDATE ON readings_1m
    FOR EACH ROW EXECUTE FUNCTION minewatch_statistic_numbered();
CREATE TRIGGER readings_5m_numbered BEFORE INSERT OR UPDATE ON readings_5m
    FOR EACH ROW EXECUTE FUNCTION minewatch_statistic_numbered();
CREATE INDEX readings_1m_change_idx ON readings_1m (change_seq, bucket);
CREATE INDEX readings_5m_change_idx ON readings_5m (change_seq, bucket);

-- What arrived from below in `alarms` mode, each numbered change once: (source, seq) is the
-- installation that published it (its MINEWATCH_GATEWAY__INSTALLATION) and the change's number
-- in its alarm_changes. A change that crosses twice (a link flap, a republish) is not
-- applied twice.
CREATE TABLE federated_changes (
    source      text   NOT NULL,
    seq         bigint NOT NULL,
    mine_code   text   NOT NULL,
    kind        text   NOT NULL CHECK (kind IN ('alarm', 'incident', 'prealarm')),
    event       text   NOT NULL,
    subject_id  bigint NOT NULL,   -- the alarm's, incident's or pre-alarm's id at the source
    at          timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, seq)
);
CREATE INDEX federated_changes_mine_idx ON federated_changes (mine_code, at);

-- The alarm records of the mines below, as their source holds them (with the disposal
-- record: cause, measures, who, when), updated by newer changes only (last_seq).
CREATE TABLE federated_alarms (
    source          text   NOT NULL,
    source_id       bigint NOT NULL,
    last_seq        bigint NOT NULL,
    mine_code       text   NOT NULL,
    point_code      text,
    rule            text   NOT NULL,
    abnormal_type   text   NOT NULL,
    classification  text   NOT NULL,
    state           text   NOT NULL,
    grade           text,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    threshold       double precision,
    start_value     double precision,
    max_value       double precision,
    max_at          timestamptz,
    min_value       double precision,
    min_at          timestamptz,
    value_count     bigint,
    acknowledged_at timestamptz,
    acknowledged_by text,
    cause           text,
    measures        text,
    handled_by      text,
    disposed_at     timestamptz,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, source_id)
);
CREATE INDEX federated_alarms_mine_idx ON federated_alarms (mine_code, started_at);

CREATE TABLE federated_incidents (
    source          text   NOT NULL,
    source_id       bigint NOT NULL,
    last_seq        bigint NOT NULL,
    mine_code       text   NOT NULL,
    root_point_code text,
    root_rule       text   NOT NULL,
    category        text   NOT NULL,
    grade           text   NOT NULL,
    state           text   NOT NULL,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    peak_value      double precision,
    members         bigint[] NOT NULL DEFAULT '{}',  -- member alarms' ids at the source
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, source_id)
);
CREATE INDEX federated_incidents_mine_idx ON federated_incidents (mine_code, started_at);

-- The 1- and 5-minute statistics of the mines below, per point code; a statistic is replaced
-- only by a later write of it at its source (seq: its statistics_changes number there).
CREATE TABLE federated_statistics (
    mine_code  text   NOT NULL,
    point_code text   NOT NULL,
    width_s    integer NOT NULL CHECK (width_s IN (60, 300)),
    bucket     timestamptz NOT NULL,
    source     text   NOT NULL,
    seq        bigint NOT NULL,
    n          integer NOT NULL,
    min        double precision NOT NULL,
    max        double precision NOT NULL,
    mean       double precision NOT NULL,
    last       double precision NOT NULL,
    last_time  timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mine_code, point_code, width_s, bucket)
);
SELECT create_hypertable('federated_statistics', by_range('bucket', INTERVAL '30 days'));
INSERT INTO retention_policies (hypertable, keep, floor, note) VALUES
    ('federated_statistics', '400 days', '1 year', 'statistics of the mines below')
ON CONFLICT (hypertable) DO NOTHING;

-- Personnel head-counts of the mines below, per whole minute: the people underground in the
-- whole mine (area_code '') and in each area with people, as their source counted them
-- (ingest/headcount_publisher.py); a resend replaces a count with the source's newer one.
CREATE TABLE federated_headcounts (
    mine_code   text NOT NULL,
    area_code   text NOT NULL,   -- '' for the whole mine
    minute      timestamptz NOT NULL,
    source      text NOT NULL,
    count       integer NOT NULL CHECK (count >= 0),
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mine_code, area_code, minute)
);
SELECT create_hypertable('federated_headcounts', by_range('minute', INTERVAL '30 days'));
INSERT INTO retention_policies (hypertable, keep, floor, note) VALUES
    ('federated_headcounts', '400 days', '1 year', 'head-counts of the mines below')
ON CONFLICT (hypertable) DO NOTHING;
