-- The birth in force of every Sparkplug B source (an edge node, or a device of one), so that a
-- restarted gateway can map NDATA/DDATA by alias before the next birth (docs/sparkplug.md).
-- One row per source, replaced at every birth and marked dead at its death.
CREATE TABLE sparkplug_births (
    source     text PRIMARY KEY,  -- <mine>/sparkplug/<edge node>[/<device>], as in source_watermarks
    mine_code  text NOT NULL,     -- the Sparkplug group id
    edge_node  text NOT NULL,     -- the substation code
    device     text,              -- NULL: the edge node's own birth (NBIRTH)
    bd_seq     smallint NOT NULL CHECK (bd_seq BETWEEN 0 AND 255),  -- of the node's birth
    boot       bigint NOT NULL,   -- the session's boot of the source (its watermark's boot)
    node_boot  bigint NOT NULL,   -- the node session it belongs to (= boot for a node)
    born_at    timestamptz NOT NULL,  -- the birth's payload timestamp
    alive      boolean NOT NULL DEFAULT true,  -- false once its NDEATH/DDEATH was seen
    -- [{"name", "alias", "datatype", "point"}]: "point" is the point code of its readings,
    -- null for protocol metrics (bdSeq, Node Control/*, Device Control/*)
    metrics    jsonb NOT NULL CHECK (jsonb_typeof(metrics) = 'array'),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sparkplug_births_mine_idx ON sparkplug_births (mine_code, edge_node);
