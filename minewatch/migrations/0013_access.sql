-- minewatch schema v13: who may use the API (accounts, API keys, sessions), an append-only
-- audit log, the shelving rules of the alarm lifecycle, and a numbered log of alarm changes
-- that live screens resume from (docs/api.md).

-- Accounts. scope: the mine codes an account sees, as a prefix of the 12-digit mine code:
-- a dispatcher's is one mine (12 digits), a regulator's an administrative division (2 digits
-- province, 4 city, 6 county); an admin has none (every mine).
CREATE TABLE api_accounts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    display_name  text NOT NULL,
    role          text NOT NULL CHECK (role IN ('dispatcher', 'regulator', 'admin')),
    scope         text CHECK (scope ~ '^[0-9]+$'),
    password_hash text NOT NULL,  -- argon2id, never the password
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'dispatcher' AND length(scope) = 12)
        OR (role = 'regulator' AND length(scope) IN (2, 4, 6))
        OR (role = 'admin' AND scope IS NULL))
);

-- API keys of machine clients (a control-room screen, a higher platform): the same roles and
-- scopes. The key is shown once; only its argon2id hash is kept.
CREATE TABLE api_keys (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9]{12}$'),  -- the public part of the key
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('dispatcher', 'regulator', 'admin')),
    scope       text CHECK (scope ~ '^[0-9]+$'),
    secret_hash text NOT NULL,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'dispatcher' AND length(scope) = 12)
        OR (role = 'regulator' AND length(scope) IN (2, 4, 6))
        OR (role = 'admin' AND scope IS NULL))
);

-- Signed-in sessions (browser cookie or bearer token). The token is random (256 bits): kept
-- as its SHA-256, which is enough for a random secret. csrf_token guards state changes made
-- with the cookie.
CREATE TABLE api_sessions (
    token_sha256 bytea PRIMARY KEY,
    account_id   bigint NOT NULL REFERENCES api_accounts (id) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX api_sessions_expiry_idx ON api_sessions (expires_at);

-- Failed sign-ins, to slow repeated guessing down (per username and per client address).
CREATE TABLE api_login_failures (
    username    text NOT NULL,
    client_addr text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_login_failures_user_idx ON api_login_failures (username, at);
CREATE INDEX api_login_failures_addr_idx ON api_login_failures (client_addr, at);

-- The audit log: every state change and every regulator query of a mine's data, written in
-- the same transaction as the change it records (a failed write fails the request).
-- Append-only: the database refuses UPDATE, DELETE and TRUNCATE.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text NOT NULL,           -- username, or key:<id>
    actor_role  text NOT NULL,
    client_addr text,
    action      text NOT NULL,           -- acknowledged, shelved, disposed, query, ...
    mine_code   text,
    alarm_id    bigint,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_mine_idx ON audit_log (mine_code, at DESC);
CREATE INDEX audit_log_alarm_idx ON audit_log (alarm_id) WHERE alarm_id IS NOT NULL;

CREATE FUNCTION minewatch_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION minewatch_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION minewatch_audit_append_only();

-- Shelving rules per grade (data, change them per deployment): the longest shelving, how
-- often one alarm may be shelved, whether it must be acknowledged first and whether a machine
-- client (API key) may shelve it. Red alarms keep escalating while shelved (lifecycle.py).
CREATE TABLE alarm_shelve_rules (
    grade            text PRIMARY KEY CHECK (grade IN ('red', 'orange', 'yellow', 'blue')),
    max_minutes      double precision NOT NULL CHECK (max_minutes > 0),
    max_shelvings    integer CHECK (max_shelvings > 0),  -- NULL: no limit
    needs_ack        boolean NOT NULL,
    people_only      boolean NOT NULL    -- true: only a signed-in person, not an API key
);
INSERT INTO alarm_shelve_rules VALUES
    ('red',    60,   2,    true,  true),
    ('orange', 240,  3,    true,  true),
    ('yellow', 1440, NULL, false, false),
    ('blue',   1440, NULL, false, false);

-- Every shelving, kept: a new shelving never overwrites an earlier one's reason or name.
CREATE TABLE alarm_shelvings (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alarm_id   bigint NOT NULL REFERENCES alarms (id),
    by_actor   text NOT NULL,
    reason     text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    until      timestamptz NOT NULL,
    ended_at   timestamptz  -- unshelved early
);
CREATE INDEX alarm_shelvings_alarm_idx ON alarm_shelvings (alarm_id);

ALTER TABLE alarms ADD COLUMN disposed_open_reason text;  -- why disposed before it cleared

-- Numbered alarm changes: raised, cleared, acknowledged, shelved, unshelved, disposed,
-- escalated, regraded; written by a trigger for every writer of alarms, so the SSE stream can
-- give each event an id and a reconnecting screen can resume after its Last-Event-ID.
CREATE TABLE alarm_changes (
    seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    alarm_id  bigint NOT NULL,
    mine_code text NOT NULL,
    event     text NOT NULL
);
CREATE INDEX alarm_changes_mine_idx ON alarm_changes (mine_code, seq);

CREATE FUNCTION minewatch_alarm_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        kind := 'raised';
    ELSIF NEW.state = 'disposed' AND OLD.state <> 'disposed' THEN
        kind := 'disposed';
    ELSIF NEW.ended_at IS NOT NULL AND OLD.ended_at IS NULL THEN
        kind := 'cleared';
    ELSIF NEW.acknowledged_at IS NOT NULL AND OLD.acknowledged_at IS NULL THEN
        kind := 'acknowledged';
    ELSIF NEW.escalated_at IS NOT NULL AND OLD.escalated_at IS NULL THEN
        kind := 'escalated';
    ELSIF NEW.shelved_until IS DISTINCT FROM OLD.shelved_until THEN
        kind := CASE WHEN NEW.shelved_until IS NULL THEN 'unshelved' ELSE 'shelved' END;
    ELSIF NEW.grade IS DISTINCT FROM OLD.grade THEN
        kind := 'regraded';
    ELSIF NEW.cause IS DISTINCT FROM OLD.cause OR NEW.measures IS DISTINCT FROM OLD.measures THEN
        kind := 'amended';
    ELSE
        RETURN NULL;  -- statistics only (max, mean): not an event of the live board
    END IF;
    INSERT INTO alarm_changes (alarm_id, mine_code, event) VALUES (NEW.id, NEW.mine_code, kind);
    RETURN NULL;
END
$$;
CREATE TRIGGER alarms_changes AFTER INSERT OR UPDATE ON alarms
    FOR EACH ROW EXECUTE FUNCTION minewatch_alarm_change();
