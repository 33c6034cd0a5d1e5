"""The personnel, video and output feeds of a :class:`~simulators.feeds.MineFeeds` over a time
range, as Arrow tables (columns, no loop per row): what the trace records next to the safety
readings (docs/simulator.md, "Traces"). Codes are dictionary columns whose dictionary is the
full code list (people, stations, areas, cameras in definition order).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from minewatch.simulators.feeds import MineFeeds
from minewatch.simulators.personnel import US
from minewatch.simulators.video import EVENT_TYPES

POSITIONS = pa.schema([
    ("time_us", pa.int64()), ("card", pa.dictionary(pa.int32(), pa.utf8())),
    ("station", pa.dictionary(pa.int32(), pa.utf8())),
    ("area", pa.dictionary(pa.int32(), pa.utf8())), ("in_mine", pa.int8()),
    ("entered_us", pa.int64()), ("sos", pa.bool_()),
])  # fmt: skip
HEARTBEATS = pa.schema([
    ("time_us", pa.int64()), ("camera", pa.dictionary(pa.int32(), pa.utf8())),
    ("online", pa.bool_()),
])  # fmt: skip
EVENTS = pa.schema([
    ("time_us", pa.int64()), ("camera", pa.dictionary(pa.int32(), pa.utf8())),
    ("type", pa.dictionary(pa.int32(), pa.utf8())), ("confidence", pa.float64()),
    ("area", pa.dictionary(pa.int32(), pa.utf8())), ("id", pa.utf8()),
])  # fmt: skip
OUTPUT = pa.schema([
    ("time_us", pa.int64()), ("point", pa.dictionary(pa.int32(), pa.utf8())),
    ("value", pa.float64()), ("status", pa.int16()),
])  # fmt: skip


def _dict(indices: np.ndarray, codes: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(
        pa.array(indices.astype(np.int32)), pa.array(codes, pa.utf8())
    )


def positions(feeds: MineFeeds, t0: int, t1: int) -> pa.Table:
    """One row per card underground per positioning instant in [t0, t1) (``in_mine`` 1, at
    its station), and one per exit at the exit instant (``in_mine`` 2, at the shaft): the
    ``positions`` batches of docs/feeds.md. Sorted by time, then in_mine, then card."""
    sim = feeds.personnel
    cycle = feeds.cycle_us
    first = -(-t0 // cycle) * cycle
    person, station, start, end, entry, exit_, _ = feeds.stays(sim, t0, t1)
    a = np.maximum(-(-start // cycle) * cycle, first)
    b = np.minimum(-(-end // cycle) * cycle, -(-t1 // cycle) * cycle)
    n = np.maximum((b - a) // cycle, 0)
    rows = np.repeat(np.arange(len(n)), n)
    offset = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    times = a[rows] + offset * cycle
    trips = np.unique(np.stack([person, entry, exit_]), axis=1)
    leaving = (trips[2] >= t0) & (trips[2] < t1)
    shaft = sim._stations_of[0][0]
    area_of = np.array([a_ for _, a_ in sim.stations], np.int64)
    card = np.concatenate([person[rows], trips[0][leaving]])
    stations = np.concatenate([station[rows], np.full(int(leaving.sum()), shaft)])
    time_us = np.concatenate([times, trips[2][leaving]])
    in_mine = np.concatenate([np.ones(len(rows), np.int8), np.full(int(leaving.sum()), 2, np.int8)])
    entered = np.concatenate([entry[rows], trips[1][leaving]])
    sos = np.zeros(len(card), bool)
    for e in sim.config.sos:
        sos |= (card == e.person) & (time_us >= e.at_us) & (time_us < e.at_us + e.duration_s * US)
    sos &= in_mine == 1
    order = np.lexsort((card, in_mine, time_us))
    return pa.Table.from_arrays([
        pa.array(time_us[order]), _dict(card[order], [p.card for p in sim.people]),
        _dict(stations[order], feeds.station_codes),
        _dict(area_of[stations[order]], feeds.area_codes), pa.array(in_mine[order]),
        pa.array(entered[order]), pa.array(sos[order]),
    ], schema=POSITIONS)  # fmt: skip


def _offline_mask(feeds: MineFeeds, camera: np.ndarray, time_us: np.ndarray) -> np.ndarray:
    silent = np.zeros(len(camera), bool)
    for c, a, b in feeds.offline:
        silent |= (camera == c) & (time_us >= a) & (time_us < b)
    return silent


def heartbeats(feeds: MineFeeds, t0: int, t1: int) -> pa.Table:
    """A heartbeat (online) per camera every ``video.heartbeat_s``, except while a
    ``camera_offline`` scenario silences it."""
    step = feeds.config.video.heartbeat_s * US
    grid = np.arange(-(-t0 // step) * step, t1, step, dtype=np.int64)
    cameras = len(feeds.camera_codes)
    time_us = np.repeat(grid, cameras)
    camera = np.tile(np.arange(cameras), len(grid))
    keep = ~_offline_mask(feeds, camera, time_us)
    return pa.Table.from_arrays([
        pa.array(time_us[keep]), _dict(camera[keep], feeds.camera_codes),
        pa.array(np.ones(int(keep.sum()), bool)),
    ], schema=HEARTBEATS)  # fmt: skip


def events(feeds: MineFeeds, t0: int, t1: int) -> pa.Table:
    """AI analytic events: Poisson per camera at ``video.events_per_camera_hour``, none from a
    silent camera; times in whole ms."""
    rng = np.random.default_rng([feeds.config.simulation.seed, 0x71DE0, t0 // US])
    cameras = len(feeds.camera_codes)
    rate = feeds.config.video.events_per_camera_hour * (t1 - t0) / 3600 / US
    counts = rng.poisson(rate, cameras)
    camera = np.repeat(np.arange(cameras), counts)
    time_us = t0 + rng.integers(0, max(1, (t1 - t0) // 1000), len(camera)) * 1000
    kind = rng.integers(0, len(EVENT_TYPES), len(camera))
    confidence = np.round(rng.uniform(0.5, 0.99, len(camera)), 2)
    keep = ~_offline_mask(feeds, camera, time_us)
    order = np.lexsort((camera[keep], time_us[keep]))
    camera, time_us, kind, confidence = (x[keep][order] for x in (camera, time_us, kind,
                                                                   confidence))  # fmt: skip
    areas = sorted(set(feeds.camera_area))
    area = np.array([areas.index(feeds.camera_area[c]) for c in camera.tolist()], np.int64)
    ids = [
        f"{feeds.camera_codes[c]}-{t // 1000}"
        for c, t in zip(camera.tolist(), time_us.tolist(), strict=True)
    ]
    return pa.Table.from_arrays([
        pa.array(time_us), _dict(camera, feeds.camera_codes), _dict(kind, list(EVENT_TYPES)),
        pa.array(confidence), _dict(area, areas), pa.array(ids, pa.utf8()),
    ], schema=EVENTS)  # fmt: skip


def output(feeds: MineFeeds, t1: int) -> pa.Table:
    """The belt scale's counter (t, wrapped at ``output.wrap_at_t``) from the local start of
    the month of ``simulation.start`` to ``t1``: the month's total is in the trace."""
    times, counter = feeds.output_series(t1)
    wrap = round(feeds.config.output.wrap_at_t * 100)
    return pa.Table.from_arrays([
        pa.array(times), _dict(np.zeros(len(times), np.int64), [feeds.output_point]),
        pa.array((counter % wrap) / 100), pa.array(np.zeros(len(times), np.int16)),
    ], schema=OUTPUT)  # fmt: skip
