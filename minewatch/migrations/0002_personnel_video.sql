-- minewatch schema v2: personnel positioning (人员定位) and video dispatch (视频调度).
-- Output (产量) needs no table: it is computed from the cumulative 3001 points in readings.
--
-- Metadata keeps its history: one row per version, valid over [valid_from, valid_to);
-- valid_to IS NULL marks the current version (at most one per code, enforced below).

-- 人员 (RYXX): a card (人员卡编码 = 煤矿编码 + 5 digits) and who carries it.
CREATE TABLE personnel_people (
    mine_code  text NOT NULL REFERENCES mines (code),
    card_code  text NOT NULL CHECK (char_length(card_code) = 17),
    name       text NOT NULL,
    job        text NOT NULL DEFAULT '',  -- 工种
    title      text NOT NULL DEFAULT '',  -- 职务
    team       text NOT NULL DEFAULT '',  -- 队组/部门
    is_leader  boolean NOT NULL DEFAULT false,  -- 是否矿领导 (带班)
    is_special boolean NOT NULL DEFAULT false,  -- 是否特种作业人员
    valid_from timestamptz NOT NULL,
    valid_to   timestamptz,
    PRIMARY KEY (mine_code, card_code, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX personnel_people_current_idx
    ON personnel_people (mine_code, card_code) WHERE valid_to IS NULL;

-- 区域 (RYQY): area code = 煤矿编码 + 4 digits; type and approved head-count (核定人数).
CREATE TABLE personnel_areas (
    mine_code      text NOT NULL REFERENCES mines (code),
    area_code      text NOT NULL CHECK (char_length(area_code) = 16),
    name           text NOT NULL DEFAULT '',
    area_type      text NOT NULL CHECK (area_type IN ('shaft', 'key', 'restricted', 'other')),
    approved_count integer CHECK (approved_count >= 0),
    valid_from     timestamptz NOT NULL,
    valid_to       timestamptz,
    PRIMARY KEY (mine_code, area_code, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX personnel_areas_current_idx
    ON personnel_areas (mine_code, area_code) WHERE valid_to IS NULL;

-- 基站 (RYJZ): station code = 区域编码 + 6 digits.
CREATE TABLE personnel_stations (
    mine_code    text NOT NULL REFERENCES mines (code),
    station_code text NOT NULL CHECK (char_length(station_code) = 22),
    area_code    text NOT NULL CHECK (char_length(area_code) = 16),
    name         text NOT NULL DEFAULT '',
    x            double precision,
    y            double precision,
    z            double precision,
    valid_from   timestamptz NOT NULL,
    valid_to     timestamptz,
    PRIMARY KEY (mine_code, station_code, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX personnel_stations_current_idx
    ON personnel_stations (mine_code, station_code) WHERE valid_to IS NULL;

-- Every position observation as received (or, from full snapshots, every change), event time.
-- in_mine = 出入井标志: 1 入井 (underground), 2 出井 (left the mine), 0 unspecified.
CREATE TABLE personnel_positions (
    time         timestamptz NOT NULL,
    mine_code    text NOT NULL,
    card_code    text NOT NULL,
    station_code text NOT NULL,
    area_code    text NOT NULL,
    distance_m   double precision,
    in_mine      smallint NOT NULL CHECK (in_mine IN (0, 1, 2))
);
SELECT create_hypertable('personnel_positions', by_range('time', INTERVAL '1 day'));
CREATE INDEX personnel_positions_card_idx ON personnel_positions (mine_code, card_code, time DESC);

-- 基站实时状态 (JZSS): run state 0 通信正常/1 通信中断/2 故障/9 未知; power 0 直流/1 交流/2 电源故障/9 未知.
CREATE TABLE personnel_station_status (
    time         timestamptz NOT NULL,
    mine_code    text NOT NULL,
    station_code text NOT NULL,
    run_state    smallint NOT NULL CHECK (run_state IN (0, 1, 2, 9)),
    power_state  smallint NOT NULL CHECK (power_state IN (0, 1, 2, 9))
);
SELECT create_hypertable('personnel_station_status', by_range('time', INTERVAL '7 days'));
CREATE INDEX personnel_station_status_idx
    ON personnel_station_status (mine_code, station_code, time DESC);

-- Derived state, maintained by the feed writer in the same transaction as the positions.
-- A trip is one descent: [entered_at, left_at) underground; left_at IS NULL while down.
CREATE TABLE personnel_trips (
    mine_code  text NOT NULL,
    card_code  text NOT NULL,
    entered_at timestamptz NOT NULL,
    left_at    timestamptz,
    PRIMARY KEY (mine_code, card_code, entered_at),
    CHECK (left_at IS NULL OR left_at >= entered_at)
);
CREATE INDEX personnel_trips_mine_idx ON personnel_trips (mine_code, entered_at);
CREATE INDEX personnel_trips_open_idx ON personnel_trips (mine_code) WHERE left_at IS NULL;

-- A stay is one card in one area over [entered_at, left_at): head-counts per area come from here.
CREATE TABLE personnel_stays (
    mine_code  text NOT NULL,
    card_code  text NOT NULL,
    area_code  text NOT NULL,
    entered_at timestamptz NOT NULL,
    left_at    timestamptz,
    PRIMARY KEY (mine_code, card_code, entered_at),
    CHECK (left_at IS NULL OR left_at >= entered_at)
);
CREATE INDEX personnel_stays_area_idx ON personnel_stays (mine_code, area_code, entered_at);
CREATE INDEX personnel_stays_open_idx ON personnel_stays (mine_code) WHERE left_at IS NULL;

-- The tracker's state per card (the last known place), reloaded when the gateway starts.
CREATE TABLE personnel_presence (
    mine_code     text NOT NULL,
    card_code     text NOT NULL,
    underground   boolean NOT NULL,
    entered_at    timestamptz,  -- start of the open trip
    left_at       timestamptz,  -- end of the last trip
    area_code     text NOT NULL,
    area_since    timestamptz NOT NULL,
    station_code  text NOT NULL,
    station_since timestamptz NOT NULL,
    distance_m    double precision,
    last_seen_at  timestamptz NOT NULL,  -- last position observation (not snapshots)
    changed_at    timestamptz NOT NULL,  -- event time of the last change of place
    PRIMARY KEY (mine_code, card_code)
);

-- Per mine: the last full snapshot applied and the last metadata applied (event time).
CREATE TABLE personnel_feed_state (
    mine_code   text PRIMARY KEY,
    snapshot_at timestamptz,
    meta_at     timestamptz
);

-- Cameras (视频调度): the stream URL is data only, minewatch never opens it.
CREATE TABLE video_cameras (
    mine_code           text NOT NULL REFERENCES mines (code),
    camera_code         text NOT NULL CHECK (char_length(camera_code) BETWEEN 1 AND 64),
    name                text NOT NULL DEFAULT '',
    area_code           text,
    location            text NOT NULL DEFAULT '',
    stream_url          text NOT NULL DEFAULT '',
    heartbeat_timeout_s double precision CHECK (heartbeat_timeout_s > 0),  -- NULL: the default
    valid_from          timestamptz NOT NULL,
    valid_to            timestamptz,
    PRIMARY KEY (mine_code, camera_code, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX video_cameras_current_idx
    ON video_cameras (mine_code, camera_code) WHERE valid_to IS NULL;
CREATE TABLE video_feed_state (
    mine_code text PRIMARY KEY,
    meta_at   timestamptz
);

CREATE TABLE video_heartbeats (
    time        timestamptz NOT NULL,
    mine_code   text NOT NULL,
    camera_code text NOT NULL,
    online      boolean NOT NULL
);
SELECT create_hypertable('video_heartbeats', by_range('time', INTERVAL '1 day'));
CREATE INDEX video_heartbeats_camera_idx ON video_heartbeats (mine_code, camera_code, time DESC);

-- AI analytic events (智能分析): what the camera's analytics saw, with a snapshot reference.
CREATE TABLE video_events (
    time         timestamptz NOT NULL,
    mine_code    text NOT NULL,
    camera_code  text NOT NULL,
    area_code    text,
    event_type   text NOT NULL,
    confidence   double precision CHECK (confidence BETWEEN 0 AND 1),
    snapshot_ref text,
    event_id     text
);
SELECT create_hypertable('video_events', by_range('time', INTERVAL '7 days'));
CREATE INDEX video_events_mine_idx ON video_events (mine_code, time DESC);

-- Current status per camera: set by heartbeats, turned offline by the clock (timeout sweep).
CREATE TABLE video_camera_status (
    mine_code         text NOT NULL,
    camera_code       text NOT NULL,
    online            boolean NOT NULL,
    since             timestamptz NOT NULL,
    last_heartbeat_at timestamptz NOT NULL,
    reason            text NOT NULL CHECK (reason IN ('heartbeat', 'reported', 'timeout')),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mine_code, camera_code)
);
CREATE TABLE video_status_changes (
    time        timestamptz NOT NULL,
    mine_code   text NOT NULL,
    camera_code text NOT NULL,
    online      boolean NOT NULL,
    reason      text NOT NULL
);
CREATE INDEX video_status_changes_idx ON video_status_changes (mine_code, camera_code, time DESC);
