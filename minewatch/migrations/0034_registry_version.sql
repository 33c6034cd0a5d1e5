-- A number that moves whenever the point registry's tables change (`points`, `calibrations`),
-- whoever writes them (a definition, a national file, an operator's SQL): the gateway reloads its
-- registry every registry_refresh_s only when it moved (ingest/writer.py). A reload of a city's
-- registry costs the write path about a second and more on a loaded machine (36,700 points,
-- docs/benchmarks.md, issue 14), so an unchanged registry is not reloaded.
-- The counter is a row, not a sequence: it moves with the change's commit, in the same
-- snapshot, so a reader that reads it before the points never records a change it did not load.
CREATE TABLE registry_version (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint  NOT NULL
);
INSERT INTO registry_version (one, version) VALUES (true, 0);

-- Once per transaction: a mine's definition is one statement execution per point (psycopg's
-- executemany), and the same row updated 36,700 times in one transaction is a chain of as
-- many row versions, each found by a scan past the others (quadratic: a city's definitions
-- did not load in minutes). A transaction-local setting remembers the bump; it is undone with
-- a rolled-back (sub)transaction, like the bump itself.
CREATE FUNCTION bump_registry_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('minewatch.registry_bumped', true) IS DISTINCT FROM 'on' THEN
        UPDATE registry_version SET version = version + 1;
        PERFORM set_config('minewatch.registry_bumped', 'on', true);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER points_registry_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON points
    FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version();
CREATE TRIGGER calibrations_registry_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON calibrations
    FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version();
