-- minewatch schema v7: a personnel definition may be complete for some of its parts only
-- (the national files carry people, areas and stations separately: RYXX, RYQY, RYJZ), so
-- freshness is kept per part: a part older than the one last applied is ignored.
CREATE TABLE personnel_meta_parts (
    mine_code  text NOT NULL REFERENCES mines (code),
    part       text NOT NULL CHECK (part IN ('people', 'areas', 'stations')),
    applied_at timestamptz NOT NULL,
    PRIMARY KEY (mine_code, part)
);
INSERT INTO personnel_meta_parts (mine_code, part, applied_at)
SELECT s.mine_code, p.part, s.meta_at
FROM personnel_feed_state s CROSS JOIN (VALUES ('people'), ('areas'), ('stations')) p (part)
WHERE s.meta_at IS NOT NULL;
