-- minewatch schema v8: what a mine's own systems report in the national TXT files besides
-- readings and definitions (docs/national-files.md, "What accepted files become"), kept as
-- reported next to what minewatch computes itself (readings, alarms), so that remote
-- inspection can compare the two.
--
-- Every row names the file it came from (source_file: the file of the version stored;
-- first_file: the file that first reported the row). The primary keys make a file delivered
-- again a no-op: the writer replaces a stored row only with the version of a later file
-- (greater (data_time, source_file); names of one mine and type sort by their upload time).
-- Numbers are numeric: the value as written in the file ('0.50' stays 0.50).
-- No foreign key to mines: a report may arrive before the mine's first definition.

-- FZSS 分站实时状态. run_state 0 通信正常/1 通信中断/2 故障/9 未知 (表B.8); power_state
-- 0 直流/1 交流/2 电源故障/9 未知 (表B.9). A substation is not a measuring point, so its state
-- is not a reading.
CREATE TABLE substation_status (
    time            timestamptz NOT NULL,  -- 数据时间
    mine_code       text NOT NULL CHECK (mine_code ~ '^[0-9]{12}$'),
    substation_code text NOT NULL,
    run_state       smallint NOT NULL CHECK (run_state IN (0, 1, 2, 9)),
    power_state     smallint NOT NULL CHECK (power_state IN (0, 1, 2, 9)),
    source_file     text NOT NULL,
    first_file      text NOT NULL,
    PRIMARY KEY (mine_code, substation_code, time)
);
SELECT create_hypertable('substation_status', by_range('time', INTERVAL '7 days'));
CREATE INDEX substation_status_mine_time_idx ON substation_status (mine_code, time DESC);

-- YCBJ 测点异常报警: the mine system's own abnormal-alarm records and their disposal. One row
-- per episode (point, 异常类型, start); a later file updates it (its end, statistics,
-- disposal). point_code is the CDDY 测点编码 (points.code of the mine), not a point id: the
-- mine may report on a point minewatch does not know.
CREATE TABLE reported_point_alarms (
    mine_code        text NOT NULL CHECK (mine_code ~ '^[0-9]{12}$'),
    point_code       text NOT NULL,
    abnormal_type    text NOT NULL CHECK (abnormal_type ~ '^[0-9]{3}$'),  -- 异常类型 001..010
    started_at       timestamptz NOT NULL,  -- 异常开始时间
    ended_at         timestamptz,           -- 异常结束时间, NULL while open
    sensor_type_name text NOT NULL,
    location         text NOT NULL,
    unit             text NOT NULL,
    max_value        numeric,
    max_at           timestamptz,
    min_value        numeric,
    min_at           timestamptz,
    mean_value       numeric,
    cause            text NOT NULL,  -- 异常原因
    measures         text NOT NULL,  -- 处理措施
    entered_at       timestamptz,    -- 录入时间
    entered_by       text NOT NULL,  -- 录入人
    data_time        timestamptz NOT NULL,
    source_file      text NOT NULL,
    first_file       text NOT NULL,
    PRIMARY KEY (mine_code, point_code, abnormal_type, started_at)
);
CREATE INDEX reported_point_alarms_mine_idx ON reported_point_alarms (mine_code, started_at DESC);
CREATE INDEX reported_point_alarms_open_idx ON reported_point_alarms (mine_code)
    WHERE ended_at IS NULL;

-- TJSJ 测点统计: the mine's statistics of one point over one interval.
CREATE TABLE reported_statistics (
    mine_code        text NOT NULL CHECK (mine_code ~ '^[0-9]{12}$'),
    point_code       text NOT NULL,
    started_at       timestamptz NOT NULL,  -- 开始时间
    ended_at         timestamptz NOT NULL,  -- 结束时间
    sensor_type_name text NOT NULL,
    location         text NOT NULL,
    unit             text NOT NULL,
    max_value        numeric,
    max_at           timestamptz,
    min_value        numeric,
    min_at           timestamptz,
    mean_value       numeric,
    data_time        timestamptz NOT NULL,
    source_file      text NOT NULL,
    first_file       text NOT NULL,
    PRIMARY KEY (mine_code, point_code, started_at, ended_at)
);
SELECT create_hypertable('reported_statistics', by_range('started_at', INTERVAL '7 days'));
CREATE INDEX reported_statistics_mine_idx ON reported_statistics (mine_code, started_at DESC);

-- RYCS 超时, RYCY 超员, RYXZ 进入限制区域, RYQJ 求救: the positioning system's own alarm
-- records. rule and subject use the names of minewatch's computed personnel alarms
-- (alarms.rule, subject_kind, subject_code), so both compare directly: a person's card, an
-- area code (区域超员) or the mine code (矿井超员, a RYCY record without area code).
-- Columns a file type does not carry are NULL.
CREATE TABLE reported_personnel_alarms (
    mine_code       text NOT NULL CHECK (mine_code ~ '^[0-9]{12}$'),
    rule            text NOT NULL CHECK (rule IN (
                        'overtime', 'mine_overcrowding', 'area_overcrowding',
                        'restricted_area', 'sos')),
    subject_kind    text NOT NULL CHECK (subject_kind IN ('person', 'area', 'mine')),
    subject_code    text NOT NULL,
    started_at      timestamptz NOT NULL,  -- 报警开始时间 / 求救开始时间
    ended_at        timestamptz,           -- 报警结束时间 / 求救结束时间, NULL while open
    file_type       text NOT NULL CHECK (file_type IN ('RYCS', 'RYCY', 'RYXZ', 'RYQJ')),
    card_code       text,
    name            text,
    mine_entered_at timestamptz,  -- 入井时刻
    area_code       text,
    area_name       text,         -- RYCY
    area_since      timestamptz,  -- 进入(当前)区域时刻
    station_code    text,
    station_since   timestamptz,  -- 进入(当前)基站时刻
    alarm_type      text,         -- RYCY 报警类型 (矿井超员/区域超员), as written
    rated_headcount bigint,       -- RYCY 定员数
    headcount       bigint,       -- RYCY 当前总人数
    people          text,         -- RYCY 区域人员集合, as written (format not documented)
    data_time       timestamptz NOT NULL,
    source_file     text NOT NULL,
    first_file      text NOT NULL,
    PRIMARY KEY (mine_code, rule, subject_code, started_at)
);
CREATE INDEX reported_personnel_alarms_mine_idx
    ON reported_personnel_alarms (mine_code, started_at DESC);
CREATE INDEX reported_personnel_alarms_open_idx ON reported_personnel_alarms (mine_code)
    WHERE ended_at IS NULL;
