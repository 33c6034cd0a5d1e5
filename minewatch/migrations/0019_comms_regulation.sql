-- The communications system (通信联络: underground base stations, dispatch phones, broadcast)
-- as a feed like the video one (docs/feeds.md, "Communications"), and the regulation table of
-- methane levels by location that the threshold-conformance report compares points against.

-- Devices of a mine's communications system, versioned like video_cameras.
CREATE TABLE comms_devices (
    mine_code           text NOT NULL REFERENCES mines (code),
    device_code         text NOT NULL CHECK (char_length(device_code) BETWEEN 1 AND 64),
    kind                text NOT NULL CHECK (kind IN ('base_station', 'phone', 'broadcast')),
    name                text NOT NULL DEFAULT '',
    area_code           text,
    location            text NOT NULL DEFAULT '',
    heartbeat_timeout_s double precision CHECK (heartbeat_timeout_s > 0),  -- NULL: the default
    valid_from          timestamptz NOT NULL,
    valid_to            timestamptz,
    PRIMARY KEY (mine_code, device_code, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX comms_devices_current_idx
    ON comms_devices (mine_code, device_code) WHERE valid_to IS NULL;
CREATE TABLE comms_feed_state (
    mine_code text PRIMARY KEY,
    meta_at   timestamptz
);

-- Every status report (online or not, the fault it reports), with when it was received: the
-- on-time rate of the six-system check compares the two.
CREATE TABLE comms_status_reports (
    time        timestamptz NOT NULL,
    mine_code   text NOT NULL,
    device_code text NOT NULL,
    online      boolean NOT NULL,
    fault       text,          -- the device's fault (e.g. "电源故障"); NULL: none
    received_at timestamptz NOT NULL DEFAULT now()
);
SELECT create_hypertable('comms_status_reports', by_range('time', INTERVAL '1 day'));
CREATE INDEX comms_status_reports_idx ON comms_status_reports (mine_code, time DESC);

-- The newest report per device (an older report never replaces a newer one). Offline by
-- timeout is decided when read: the last report is older than the device's timeout.
CREATE TABLE comms_device_status (
    mine_code      text NOT NULL,
    device_code    text NOT NULL,
    online         boolean NOT NULL,
    fault          text,
    since          timestamptz NOT NULL,  -- since when online/fault are what they are
    last_report_at timestamptz NOT NULL,
    PRIMARY KEY (mine_code, device_code)
);

INSERT INTO retention_policies (hypertable, keep, floor, note) VALUES
    ('comms_status_reports', '400 days', '1 year', 'communications device status reports')
ON CONFLICT DO NOTHING;

-- 煤矿安全规程 第498条 / AQ 1029-2019 表1 (domain reference §1, [M] rows: keep them data): the
-- levels of a methane sensor by where it is installed. A point matches the row of the lowest
-- `priority` whose `pattern` (a regular expression) matches its location and whose `tag`, if
-- any, equals its tag. alarm_pct/poweroff_pct: at or above; restore_pct: below; NULL power-off:
-- alarm only. Rows that depend on the mine's gas class (突出 intakes) are not seeded.
CREATE TABLE methane_regulation (
    row_no       text PRIMARY KEY,           -- the table's row, e.g. '1'
    location     text NOT NULL,              -- the row's 设置地点
    pattern      text NOT NULL,              -- matched against points.location
    tag          text,                       -- T0, T1, ...; NULL: any
    priority     integer NOT NULL,
    alarm_pct    double precision NOT NULL,
    poweroff_pct double precision,
    restore_pct  double precision,
    source       text NOT NULL DEFAULT '煤矿安全规程 第498条'
);
INSERT INTO methane_regulation
    (row_no, location, pattern, tag, priority, alarm_pct, poweroff_pct, restore_pct) VALUES
    ('1', '采煤工作面回风隅角', '回风隅角|上隅角', NULL, 10, 1.0, 1.5, 1.0),
    ('8', '采煤机', '采煤机', NULL, 15, 1.0, 1.5, 1.0),
    ('14', '掘进机、连续采煤机、锚杆钻车、梭车', '掘进机|连采机|锚杆钻车|梭车', NULL, 15, 1.0, 1.5, 1.0),
    ('9', '掘进工作面', '掘进工作面', NULL, 20, 1.0, 1.5, 1.0),
    ('10', '掘进工作面回风流', '掘进.*回风', NULL, 18, 1.0, 1.0, 1.0),
    ('7', '采煤工作面回风巷中部', '回风巷中部', NULL, 25, 1.0, 1.0, 1.0),
    ('15', '采区回风巷', '采区回风巷', NULL, 25, 1.0, 1.0, 1.0),
    ('16', '一翼回风巷及总回风巷', '总回风巷|一翼回风巷', NULL, 25, 0.75, NULL, NULL),
    ('17', '装煤点', '装煤点', NULL, 30, 0.5, 0.5, 0.5),
    ('19', '蓄电池电机车、柴油机车、无轨胶轮车', '电机车|柴油机车|胶轮车', NULL, 30, 0.5, 0.5, 0.5),
    ('21', '井下煤仓', '煤仓', NULL, 30, 1.5, 1.5, 1.5),
    ('24', '井下临时瓦斯抽采泵站下风侧', '抽采泵站', NULL, 30, 1.0, 1.0, 1.0),
    ('4', '采煤工作面回风巷', '回风巷', NULL, 40, 1.0, 1.0, 1.0),
    ('2', '采煤工作面', '工作面', NULL, 50, 1.0, 1.5, 1.0);

-- The open alarms of a mine (the regulator's overview counts them per grade for every mine of
-- the jurisdiction; bench/console_load.py (a)).
CREATE INDEX alarms_open_mine_idx ON alarms (mine_code, grade) WHERE ended_at IS NULL;
-- A point's alarms over a range: the bands of its curve (/console/points/{id}/curve).
CREATE INDEX alarms_point_started_idx ON alarms (point_id, started_at);
