-- Incidents (issue 13, docs/alarms.md "Incidents"): the alarms of one physical event, grouped
-- above the per-point alarm records, which stay exactly as they are.

-- The points the air of a point reaches, with the transport delay (minewatch's own relation):
-- [{"target": "<point code>", "delay_s": 40.0}]
ALTER TABLE points ADD COLUMN IF NOT EXISTS downstream jsonb NOT NULL DEFAULT '[]';

-- Off-delay of an incident: it closes once every member has been clear this long (ISA-18.2
-- practice; NULL = the engine default, 60 s).
ALTER TABLE mines ADD COLUMN IF NOT EXISTS incident_off_delay_s double precision
    CHECK (incident_off_delay_s >= 0);

CREATE TABLE IF NOT EXISTS incidents (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mine_code       text NOT NULL REFERENCES mines (code),
    root_point_id   integer NOT NULL REFERENCES points (id),
    root_rule       text NOT NULL,
    category        text NOT NULL,
    grade           text NOT NULL CHECK (grade IN ('red', 'orange', 'yellow', 'blue')),
    state           text NOT NULL DEFAULT 'raised'
                    CHECK (state IN ('raised', 'acknowledged', 'cleared', 'disposed')),
    started_at      timestamptz NOT NULL,
    raised_at       timestamptz NOT NULL,
    ended_at        timestamptz,   -- the last member's end, set when the incident closes
    peak_value      double precision,
    peak_at         timestamptz,
    peak_point_id   integer REFERENCES points (id),
    acknowledged_at timestamptz,
    acknowledged_by text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (root_point_id, root_rule, started_at)
);
CREATE INDEX IF NOT EXISTS incidents_open_idx ON incidents (mine_code, started_at)
    WHERE ended_at IS NULL;

CREATE TABLE IF NOT EXISTS incident_members (
    incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    alarm_id    bigint NOT NULL,
    PRIMARY KEY (incident_id, alarm_id)
);
CREATE INDEX IF NOT EXISTS incident_members_alarm_idx ON incident_members (alarm_id);
