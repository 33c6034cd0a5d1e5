-- 0032: the national networking files go up the hierarchy (docs/federation.md "National files
-- up"), byte for byte, numbered per installation, and are stored once at the level above.

-- At an installation with a name (MINEWATCH_GATEWAY__INSTALLATION): every file its drop folder
-- accepted, as it arrived, stored before the file moves to done/. `seq` is the number the
-- level above knows it by (with the installation's name); numbers are committed in order (the
-- writer holds a transaction-level advisory lock), so the publisher, which sends what follows
-- its position, never passes over one committed late.
CREATE TABLE national_files (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mine_code   text NOT NULL CHECK (mine_code ~ '^[0-9]{12}$'),
    name        text NOT NULL UNIQUE,   -- <mine>_<TYPE>_<yyyyMMddHHmmss>.txt
    file_type   text NOT NULL,
    uploaded_at timestamptz NOT NULL,   -- the header's 数据上传时间
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content     bytea NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX national_files_mine_idx ON national_files (mine_code, uploaded_at DESC);

-- What arrived from below on minewatch/v1/<mine>/files: each file once, by the (source, seq)
-- it was published with, and by its name (a mine's file names are unique: the drop folder
-- refuses a second file of the same name).
CREATE TABLE federated_national_files (
    source      text   NOT NULL,
    seq         bigint NOT NULL,
    mine_code   text   NOT NULL CHECK (mine_code ~ '^[0-9]{12}$'),
    name        text   NOT NULL,
    file_type   text   NOT NULL,
    uploaded_at timestamptz NOT NULL,
    sha256      text   NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content     bytea  NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, seq),
    UNIQUE (mine_code, name)
);
CREATE INDEX federated_national_files_mine_idx
    ON federated_national_files (mine_code, uploaded_at DESC);
