-- 0020: federation up the hierarchy (docs/federation.md).
--
-- Deduplication that does not need a source's messages in order (ingest/sequence.py): besides
-- the newest (boot, seq), the sequence numbers below it not yet arrived, the newest seq seen of
-- each earlier boot, and the boots up to `forgotten` that count as delivered. A broker bridge
-- resends out of order after a link outage; the plain watermark dropped the late messages.
ALTER TABLE source_watermarks
    ADD COLUMN missing   jsonb  NOT NULL DEFAULT '[]',  -- [[boot, seq], ...]
    ADD COLUMN earlier   jsonb  NOT NULL DEFAULT '[]',  -- [[boot, highest seq], ...]
    ADD COLUMN forgotten bigint NOT NULL DEFAULT -1;
-- What the plain watermark meant: every earlier boot is delivered.
UPDATE source_watermarks SET forgotten = boot - 1;

-- Directives down the hierarchy (docs/federation.md "Directives down"): a regulator's
-- inspection note or required action for a mine, written at any level, carried down by the
-- brokers' bridges, stored at every level below on its way (the same id everywhere).
CREATE TABLE directives (
    id               uuid PRIMARY KEY,
    mine_code        text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('note', 'action')),  -- 检查意见 / 整改要求
    body             text NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
    author           text NOT NULL,
    due_at           timestamptz,            -- an action's deadline
    point_code       text,                   -- the alarm it is about, by its natural key
    rule             text,                   -- (ids differ between levels)
    alarm_started_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- where it was written: NULL until this installation's gateway has published it (then its
    -- MINEWATCH_GATEWAY__INSTALLATION); the writer's name for one received from above
    origin           text,
    published_at     timestamptz,            -- written here: when the gateway published it
    received_at      timestamptz,            -- written above: when it arrived here
    acknowledged_at  timestamptz,            -- read at the mine (by acknowledged_by)
    acknowledged_by  text
);
CREATE INDEX directives_mine_idx ON directives (mine_code, created_at DESC);
CREATE INDEX directives_outbox_idx ON directives (created_at)
    WHERE published_at IS NULL AND received_at IS NULL;

-- Where the records of each mine below this installation come from (docs/federation.md "Which
-- installation a record came from"): the installation that serves the mine and the link below
-- this level that carries it up (the broker account link-<via> is the only login allowed to
-- write the mine's topics here). Written by `minewatch federation links` from the hierarchy.
CREATE TABLE federation_sources (
    mine_code    text PRIMARY KEY,
    installation text NOT NULL,   -- the installation whose `mines` hold it
    via          text NOT NULL,   -- the installation directly below this one that links it up
    up           text NOT NULL CHECK (up IN ('readings', 'alarms')),  -- what its link carries
    updated_at   timestamptz NOT NULL DEFAULT now()
);
