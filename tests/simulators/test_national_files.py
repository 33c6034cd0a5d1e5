"""The simulators' national TXT files (simulators/national_files.py): byte-exact files that parse
back to the simulators' values, named and timed per the format, written atomically, and
ingested by the gateway's drop-folder source into TimescaleDB unchanged."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
from pathlib import Path

import numpy as np
import psycopg
import pytest

from minewatch.codes import AbnormalType
from minewatch.ingest.gateway import Gateway
from minewatch.ingest.sources.national.adapter import NationalFileSource
from minewatch.ingest.sources.national.inbox import InboxConfig
from minewatch.ingest.sources.national.safety import definition_update
from minewatch.national import (
    CHINA_TZ,
    CddyRecord,
    CdssRecord,
    FileType,
    FzssRecord,
    JzssRecord,
    ParsedFile,
    RyjzRecord,
    RyqyRecord,
    RyssRecord,
    RyxxRecord,
    ShaftFlag,
    StationRunState,
    YcbjRecord,
    encode_file,
    parse_file,
)
from minewatch.simulators import national_files
from minewatch.simulators.config import MineConfig, example_mine_path, load_mine_config
from minewatch.simulators.national_files import (
    INGESTED_TYPES,
    YCBJ_KINDS,
    DropFolderOptions,
    NationalFileWriter,
    mine_starting_at,
    personnel_for,
    to_time,
    write_atomically,
    write_drop_folder,
)
from minewatch.simulators.personnel import US, PersonnelSimulator
from tests.helpers import eventually, running_gateway, scalar

pytestmark = pytest.mark.anyio

# 07:15 China time: the 0点班 comes up and the 8点班 goes down in the next half hour.
START = dt.datetime(2025, 1, 1, 7, 15, tzinfo=CHINA_TZ)
UTC_START = dt.datetime(2024, 12, 31, 23, 15, tzinfo=dt.UTC)  # the same instant


def _config() -> MineConfig:
    """The small mine with one labelled event of each kind that YCBJ reports (and a silent
    substation outage for FZSS), none overlapping on a point."""
    config = load_mine_config(example_mine_path("small"))
    scenarios = [
        *[s.model_dump() for s in config.scenarios],  # 001 CH4_T1 exceedance, 20-50 s
        {"kind": "disconnection", "substation": "002", "sensor": "CO", "start_s": 60,
         "duration_s": 60},
        {"kind": "calibration", "substation": "002", "sensor": "CH4_T0", "start_s": 100,
         "duration_s": 120, "peak": 1.5},
        {"kind": "over_range", "substation": "004", "sensor": "CH4_HT1", "start_s": 150,
         "duration_s": 60, "peak": 5.0},
        {"kind": "substation_comm_loss", "substation": "006", "start_s": 200, "duration_s": 60,
         "mode": "silent"},
        {"kind": "power_off_failure", "substation": "003", "sensor": "CH4_HT1", "start_s": 300,
         "duration_s": 60, "peak": 1.8},
    ]  # fmt: skip
    return MineConfig.model_validate({**config.model_dump(), "scenarios": scenarios})


def _upload(offset_s: float, every: int = 10) -> int:
    """The first upload instant at or after ``offset_s``."""
    return -(-int(offset_s * 1000) // (every * 1000)) * every


def _read(folder: Path) -> dict[str, ParsedFile]:
    """Every file of ``folder`` parsed (no problems), re-encoded to the same bytes."""
    out = {}
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        parsed = parse_file(path.name, data)
        assert isinstance(parsed, ParsedFile), parsed
        assert not parsed.problems, parsed.problems
        assert encode_file(parsed.header, parsed.records) == (path.name, data)
        out[path.name] = parsed
    return out


def _of(files: dict[str, ParsedFile], kind: FileType) -> list[ParsedFile]:
    return [f for f in files.values() if f.file_type == kind]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, ParsedFile]]:
    """12 simulated minutes of both systems, upload every 10 s, personnel every 5 minutes."""
    folder = tmp_path_factory.mktemp("drop")
    config = _config()
    writer = NationalFileWriter(
        folder, UTC_START, mine=mine_starting_at(config, UTC_START),
        personnel=personnel_for(config), options=DropFolderOptions(fsync=False),
    )  # fmt: skip
    report = writer.run(12 * 60)
    assert report.files == sorted(report.files, key=lambda n: n.split("_")[2])
    return folder, _read(folder)


def test_names_and_cadence_follow_the_format(
    written: tuple[Path, dict[str, ParsedFile]],
) -> None:
    folder, files = written
    mine = "141024010001"
    labels = [g for g in mine_starting_at(_config(), START).ground_truth if g.kind in YCBJ_KINDS]

    def names(kind: str, offsets: range | list[int]) -> set[str]:
        stamps = ((START + dt.timedelta(seconds=s)).strftime("%Y%m%d%H%M%S") for s in offsets)
        return {f"{mine}_{kind}_{stamp}.txt" for stamp in stamps}

    expected = (
        names("CDDY", [0]) | names("FZDY", [0]) | names("RYXX", [0]) | names("RYQY", [0])
        | names("RYJZ", [0]) | names("CDSS", range(0, 720, 10))
        | names("FZSS", range(0, 720, 10)) | names("RYSS", range(0, 720, 300))
        | names("JZSS", range(0, 720, 300))
        # YCBJ: at the first upload at or after a labelled event begins, and after it ends
        | names("YCBJ", [u for g in labels for u in (_upload(g.start_s), _upload(g.end_s))
                         if u < 720])
    )  # fmt: skip
    assert set(os.listdir(folder)) == expected  # no temporary file left behind
    assert "141024010001_CDSS_20250101071500.txt" in files  # +08:00 from a UTC start
    for name, parsed in files.items():
        assert parsed.header.upload_time == parsed.name.time  # the name's stamp is the header's
        assert str(parsed.name) == name
        assert parsed.header.upload_time.utcoffset() == dt.timedelta(hours=8)


def test_cdss_holds_each_points_reading_of_that_instant(
    written: tuple[Path, dict[str, ParsedFile]],
) -> None:
    _, files = written
    mine = mine_starting_at(_config(), START)
    cycles = [mine.next_cycle() for _ in range(720)]  # cycle_s 1: cycle k at offset k
    cdss = _of(files, FileType.CDSS)
    assert len(cdss) == 72
    for parsed in cdss:
        offset = int((parsed.header.upload_time - START).total_seconds())
        cycle = cycles[offset]
        records = [r for r in parsed.records if isinstance(r, CdssRecord)]
        assert [r.point_code for r in records] == mine.codes
        assert [float(r.value) for r in records if r.value is not None] == cycle.value.tolist()
        assert [r.status for r in records] == cycle.status.tolist()
        assert {r.data_time for r in records} == {parsed.header.upload_time}
        assert [r.location for r in records] == [p.location for p in mine.definition.points]
    statuses = {r.status for f in cdss for r in f.records if isinstance(r, CdssRecord)}
    assert {0, 4, 8, 16, 128} <= statuses  # calibration, over range, substation, sensor fault


def test_cddy_and_fzdy_carry_the_definition_with_thresholds_and_relations(
    written: tuple[Path, dict[str, ParsedFile]],
) -> None:
    _, files = written
    (cddy,) = _of(files, FileType.CDDY)
    (fzdy,) = _of(files, FileType.FZDY)
    definition = mine_starting_at(_config(), START).definition
    assert cddy.header.system_name == "煤矿安全监控系统"
    update = definition_update(cddy, fzdy)
    assert update.problems == ()
    assert update.definition.substations == definition.substations
    # CDDY has no field for the tag, the mine's cycle settings of each point, a switch point's
    # alarm state, the personnel area a point sits in, the points downstream on its air nor
    # the CO and cross-check settings (minewatch's own, migration 0017)
    not_in_cddy = {
        "tag",
        "poll_cycle_s",
        "interruption_cycles",
        "control_time_s",
        "alarm_state",
        "area_code",
        "downstream",
        "co_puff_max_s",
        "co_fire_after_s",
        "cross_check_ratio",
        "cross_check_min",
        "cross_check_s",
        "excursion_ratio",  # migration 0025 (the simulator writes it from the air's shares)
    }
    got = [p.model_dump(exclude=not_in_cddy) for p in update.definition.points]
    assert got == [p.model_dump(exclude=not_in_cddy) for p in definition.points]
    relations = {r.point_code: r.relations for r in cddy.records if isinstance(r, CddyRecord)}
    feeds = {p.code: p.relations[0].target for p in definition.points if p.relations}
    assert feeds  # the face and heading T1 cut their feed
    for code, feed in feeds.items():
        assert [[(str(x.kind), x.point) for x in g] for g in relations[code]] == [[("D", feed)]]


def test_ycbj_reports_the_labelled_events_with_their_statistics(
    written: tuple[Path, dict[str, ParsedFile]],
) -> None:
    _, files = written
    mine = mine_starting_at(_config(), START)
    run = [mine.next_cycle() for _ in range(720)]
    values = np.array([c.value for c in run])
    records = [r for f in _of(files, FileType.YCBJ) for r in f.records]
    assert all(isinstance(r, YcbjRecord) for r in records)
    closed = {(r.point_code, r.abnormal_type, r.start_time): r for r in records
              if isinstance(r, YcbjRecord) and r.end_time is not None}  # fmt: skip
    labels = [g for g in mine.ground_truth if g.kind in YCBJ_KINDS]
    assert {g.kind for g in labels} == set(YCBJ_KINDS)
    assert len(closed) == len(labels)
    for g in labels:
        code = g.related if g.kind == "power_off_failure" else g.point
        record = closed[(code, YCBJ_KINDS[g.kind], to_time(START, g.start_s))]
        rows = [k for k in range(720) if g.start_s <= k < g.end_s]
        window = values[rows, mine.codes.index(code)]
        assert record.end_time == to_time(START, -(-g.end_s // 1))
        assert float(record.max_value) == window.max()  # type: ignore[arg-type]
        assert float(record.min_value) == window.min()  # type: ignore[arg-type]
        assert record.max_time == to_time(START, rows[int(np.argmax(window))])
        assert record.min_time == to_time(START, rows[int(np.argmin(window))])
        assert float(record.mean_value) == pytest.approx(window.mean(), abs=1e-4)  # type: ignore[arg-type]
        assert record.cause == g.kind
    exceedance = closed[(mine.codes[1], AbnormalType.OVER_LIMIT, START + dt.timedelta(seconds=20))]
    assert float(exceedance.max_value) >= 1.5  # type: ignore[arg-type]
    opened = [r for r in records if isinstance(r, YcbjRecord) and r.end_time is None]
    assert {(r.point_code, r.start_time) for r in opened} <= {
        (c, s) for c, _, s in closed
    }  # every open record is closed later


def test_fzss_reports_the_substation_outage(written: tuple[Path, dict[str, ParsedFile]]) -> None:
    _, files = written
    for parsed in _of(files, FileType.FZSS):
        offset = (parsed.header.upload_time - START).total_seconds()
        states = {r.station_code: r.run_state for r in parsed.records if isinstance(r, FzssRecord)}
        assert set(states) == {"001", "002", "003", "004", "005", "006"}
        down = {code for code, s in states.items() if s == StationRunState.INTERRUPTED}
        assert down == ({"006"} if 200 <= offset < 260 else set()), offset


def test_personnel_files_equal_the_simulator(written: tuple[Path, dict[str, ParsedFile]]) -> None:
    _, files = written
    sim = personnel_for(_config())
    (ryxx,) = _of(files, FileType.RYXX)
    assert [(r.card_code, r.name, r.is_leader) for r in ryxx.records if isinstance(r, RyxxRecord)
            ] == [(p.card, p.name, p.leader) for p in sim.people]  # fmt: skip
    (ryqy,) = _of(files, FileType.RYQY)
    areas = [(c, a.approved) for c, a in zip(sim.area_codes, sim.config.areas, strict=True)]
    assert [
        (r.area_code, r.rated_headcount) for r in ryqy.records if isinstance(r, RyqyRecord)
    ] == areas
    (ryjz,) = _of(files, FileType.RYJZ)
    stations = [code for code, _ in sim.stations]
    assert [r.station_code for r in ryjz.records if isinstance(r, RyjzRecord)] == stations
    previous = None
    exits = 0
    for parsed in _of(files, FileType.RYSS):
        t = int(parsed.header.upload_time.timestamp()) * US
        records = [r for r in parsed.records if isinstance(r, RyssRecord)]
        here = {r.card_code: r for r in records if r.shaft_flag == ShaftFlag.IN}
        places = sim.places(t)
        assert set(here) == set(places)
        for card, place in places.items():
            r = here[card]
            assert (r.station_code, r.area_code, float(r.distance_m or 0)) == (
                place.station, place.area, place.distance_m)  # fmt: skip
            stamps = (r.in_time, r.area_time, r.station_time)
            assert [int(s.timestamp()) * US for s in stamps if s] == [
                place.entered_at, place.area_since, place.station_since]  # fmt: skip
            assert r.track[-1].station_code == place.station
        gone = {r.card_code: r for r in records if r.shaft_flag == ShaftFlag.OUT}
        expected = {} if previous is None else {p.card: plan for p, plan in
                                                sim.exits_between(previous, t)}  # fmt: skip
        assert set(gone) == set(expected)
        for card, plan in expected.items():
            assert int(gone[card].out_time.timestamp()) * US == plan.exit  # type: ignore[union-attr]
        exits += len(gone)
        previous = t
    assert exits > 0  # the 0点班 came up
    for parsed in _of(files, FileType.JZSS):
        assert [r.station_code for r in parsed.records if isinstance(r, JzssRecord)] == stations


def test_files_appear_only_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No file is ever visible under its final name without its ``||``: every rename moves a
    complete hidden file onto a free name, and a reader polling the folder meanwhile never
    sees a partial file."""
    renames = []
    real_replace = os.replace

    def checked_replace(src: str | Path, dst: str | Path) -> None:
        src, dst = Path(src), Path(dst)
        assert src.name.startswith(".") and src.parent == dst.parent
        assert src.read_bytes().endswith(b"||") and not dst.exists()
        renames.append(dst.name)
        real_replace(src, dst)

    monkeypatch.setattr(national_files.os, "replace", checked_replace)
    stop = threading.Event()
    seen: dict[str, int] = {}
    bad: list[str] = []

    def watch() -> None:
        while not stop.is_set():
            for entry in os.scandir(tmp_path):
                if entry.name.startswith("."):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    data = Path(entry.path).read_bytes()
                    if not data.endswith(b"||"):
                        bad.append(entry.name)
                    seen[entry.name] = seen.get(entry.name, 0) + 1

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        config = load_mine_config(example_mine_path("small"))
        report = NationalFileWriter(
            tmp_path, START, mine=mine_starting_at(config, START),
            personnel=personnel_for(config), options=DropFolderOptions(upload_s=1),
        ).run(150)  # fmt: skip
    finally:
        stop.set()
        watcher.join()
    assert bad == []
    assert renames == report.files and len(renames) == 2 * 150 + 5 + 2 + report.counts.get(
        FileType.YCBJ, 0
    )
    assert sorted(os.listdir(tmp_path)) == sorted(renames)  # no temporary file left
    assert len(seen) > 10  # the reader did look while files were being written
    with pytest.raises(FileExistsError):
        write_atomically(tmp_path, renames[0], b"x||")


def test_realtime_paces_instants_on_the_wall_clock(tmp_path: Path) -> None:
    now = [100.0]
    sleeps: list[float] = []
    written_at: dict[int, float] = {}

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    sim = PersonnelSimulator(personnel_for(load_mine_config(example_mine_path())).config)
    writer = NationalFileWriter(tmp_path, START, personnel=sim,
                                options=DropFolderOptions(personnel_s=60, fsync=False))  # fmt: skip
    original = writer.write_instant

    def record(offset: int) -> None:
        written_at[offset] = now[0]
        now[0] += 0.25  # writing takes time: the next sleep is shorter
        original(offset)

    writer.write_instant = record  # type: ignore[method-assign]
    writer.run(180, realtime=True, sleep=sleep, clock=lambda: now[0])
    assert written_at == {0: 100.0, 60: 160.0, 120: 220.0}
    assert sleeps == [59.75, 59.75]
    assert sorted(os.listdir(tmp_path))[0] == "141024010001_JZSS_20250101071500.txt"


def test_realtime_on_the_real_clock(tmp_path: Path) -> None:
    start = dt.datetime.now(CHINA_TZ).replace(microsecond=0)
    t0 = dt.datetime.now(CHINA_TZ)
    report = write_drop_folder(None, tmp_path, minutes=2 / 60, start=start, realtime=True,
                               upload_s=1, types=[FileType.CDSS])  # fmt: skip
    elapsed = (dt.datetime.now(CHINA_TZ) - t0).total_seconds()
    assert report.counts == {FileType.CDSS: 2}
    assert 0.9 <= elapsed < 5


# -- end to end: the gateway ingests what the writer wrote -----------------------------------


def _gateway(
    database_url: str, mqtt_url: str, client_id: str, root: Path
) -> contextlib.AbstractAsyncContextManager[Gateway]:
    source = NationalFileSource(root, InboxConfig(max_age_s=2 * 86_400), scan_s=0.1)
    return running_gateway(database_url, mqtt_url, client_id, [source])


def _recent_0715() -> dt.datetime:
    """The latest 07:15 China time whose following half hour is over (within a day)."""
    now = dt.datetime.now(CHINA_TZ)
    start = now.replace(hour=7, minute=15, second=0, microsecond=0)
    while start + dt.timedelta(minutes=31) > now:
        start -= dt.timedelta(days=1)
    return start


def _expected_personnel(ryss: list[ParsedFile]) -> tuple[set[tuple], set[tuple], dict]:
    """From the RYSS files alone: the trips, the position rows of the snapshot diff (time,
    card, station, area, in_mine) and the final presence (card -> (station, area))."""
    trips: dict[tuple[str, dt.datetime], dt.datetime | None] = {}
    positions: set[tuple] = set()
    place: dict[str, tuple[str, str]] = {}
    for parsed in ryss:
        listed = set()
        for r in parsed.records:
            assert isinstance(r, RyssRecord) and r.in_time is not None
            listed.add(r.card_code)
            if r.shaft_flag == ShaftFlag.OUT:
                trips[(r.card_code, r.in_time)] = r.out_time
                if r.card_code in place:
                    positions.add((r.out_time, r.card_code, r.station_code, r.area_code, 2))
                    del place[r.card_code]
                continue
            trips.setdefault((r.card_code, r.in_time), None)
            if place.get(r.card_code) != (r.station_code, r.area_code):
                positions.add((r.station_time, r.card_code, r.station_code, r.area_code, 1))
                place[r.card_code] = (r.station_code, r.area_code)
        assert set(place) <= listed  # every exit came with its 出井 record
    return {(c, e, x) for (c, e), x in trips.items()}, positions, place


async def test_the_gateway_ingests_the_drop_folder_unchanged(
    database_url: str, mqtt_url: str, unique_id: str, tmp_path: Path
) -> None:
    start = _recent_0715()
    config = load_mine_config(example_mine_path("small"))
    writer = NationalFileWriter(
        tmp_path / "inbox", start, mine=mine_starting_at(config, start),
        personnel=personnel_for(config),
        options=DropFolderOptions(upload_s=30, types=INGESTED_TYPES, fsync=False),
    )  # fmt: skip
    report = writer.run(30 * 60)
    files = _read(tmp_path / "inbox")
    readings = {
        (r.point_code, r.data_time, float(r.value), r.status)  # type: ignore[arg-type]
        for f in _of(files, FileType.CDSS) for r in f.records if isinstance(r, CdssRecord)
    }  # fmt: skip
    assert len(readings) == report.records[FileType.CDSS] == 60 * 47
    statuses = {
        (r.data_time, r.station_code, int(r.run_state), int(r.power_state))
        for f in _of(files, FileType.JZSS) for r in f.records if isinstance(r, JzssRecord)
    }  # fmt: skip
    trips, positions, presence = _expected_personnel(_of(files, FileType.RYSS))

    def all_done() -> bool:
        done = {p.name for p in (tmp_path / "done").glob("*.txt")}
        return done == set(report.files)

    async with _gateway(database_url, mqtt_url, f"gw-{unique_id}", tmp_path):
        await eventually(all_done)
        await eventually(lambda: scalar(database_url, "SELECT count(*) FROM readings")
                         == len(readings))  # fmt: skip
        await eventually(
            lambda: (
                scalar(database_url, "SELECT count(*) FROM personnel_station_status")
                == len(statuses)
            )
        )
        await eventually(lambda: scalar(database_url, "SELECT count(*) FROM personnel_positions")
                         == len(positions))  # fmt: skip
    assert list((tmp_path / "inbox").iterdir()) == []
    assert list((tmp_path / "rejected").iterdir()) == []
    assert not list((tmp_path / "done").glob("*.reason.txt"))
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT p.code, r.time, r.value, r.status FROM readings r "
            "JOIN points p ON p.id = r.point_id"
        ).fetchall()
        assert {(c, t, v, s) for c, t, v, s in stored} == readings
        assert len(stored) == len(readings)
        assert conn.execute("SELECT count(*) FROM points").fetchone() == (47,)
        rows = conn.execute(
            "SELECT time, station_code, run_state, power_state FROM personnel_station_status"
        ).fetchall()
        assert set(rows) == statuses and len(rows) == len(statuses)
        stored_trips = conn.execute("SELECT card_code, entered_at, left_at FROM personnel_trips")
        assert set(stored_trips.fetchall()) == trips
        rows = conn.execute(
            "SELECT time, card_code, station_code, area_code, in_mine FROM personnel_positions"
        ).fetchall()
        assert set(rows) == positions and len(rows) == len(positions)
        now_down = conn.execute(
            "SELECT card_code, station_code, area_code FROM personnel_presence WHERE underground"
        ).fetchall()
        assert {c: (s, a) for c, s, a in now_down} == presence
    assert scalar(database_url, "SELECT count(*) FROM quarantine") == 0
    assert any(end is not None for _, _, end in trips)  # people came up in between
    # RYXX, RYQY and RYJZ became the personnel definitions, one part each.
    for table, code, file_type in (
        ("personnel_people", "card_code", FileType.RYXX),
        ("personnel_areas", "area_code", FileType.RYQY),
        ("personnel_stations", "station_code", FileType.RYJZ),
    ):
        (defined,) = _of(files, file_type)
        stored_codes = scalar(
            database_url,
            f"SELECT array_agg({code} ORDER BY {code}) FROM {table} WHERE valid_to IS NULL",
        )
        expected = sorted(getattr(r, code) for r in defined.records)
        assert stored_codes == expected


async def test_ryss_files_give_the_simulators_headcounts_at_every_minute(
    database_url: str, mqtt_url: str, unique_id: str, tmp_path: Path
) -> None:
    """The file path of issue 6's acceptance: RYSS snapshots (here every minute) through the
    drop folder give, per area and for the mine, the simulator's own head-counts."""
    import httpx

    from tests.personnel.stack import running_feed_api

    start = _recent_0715()
    config = load_mine_config(example_mine_path("small"))
    personnel = personnel_for(config)
    types = frozenset({FileType.RYXX, FileType.RYQY, FileType.RYJZ, FileType.RYSS})
    writer = NationalFileWriter(
        tmp_path / "inbox", start, mine=mine_starting_at(config, start), personnel=personnel,
        options=DropFolderOptions(personnel_s=60, types=types, fsync=False),
    )  # fmt: skip
    report = writer.run(30 * 60)

    def all_done() -> bool:
        return {p.name for p in (tmp_path / "done").glob("*.txt")} == set(report.files)

    async with _gateway(database_url, mqtt_url, f"gw-{unique_id}", tmp_path):
        await eventually(all_done)
    end = start + dt.timedelta(minutes=30)
    window = {"start": start.isoformat(), "end": end.isoformat(), "step": "PT1M"}
    mine = config.mine.code
    async with (
        running_feed_api(database_url) as base,
        httpx.AsyncClient(base_url=f"{base}/api/v1/personnel/mines/{mine}") as api,
    ):
        series = (await api.get("/headcount/series", params=window)).json()
    assert len(series) == 30
    assert min(point["total"] for point in series) > 0  # people underground all along
    for point in series:
        t = int(dt.datetime.fromisoformat(point["time"]).timestamp() * US)
        assert point["areas"] == personnel.headcounts(t), point["time"]
        assert point["total"] == len(personnel.places(t)), point["time"]
