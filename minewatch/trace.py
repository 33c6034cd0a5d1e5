"""The trace format: a recorded run of a mine on disk, its labels, and the reader.

A trace is a directory (docs/simulator.md, "Trace format", version 1)::

    manifest.json       format name and version, mine code, start, cycle, counts, files
    mine.json           the MineDefinition (points, thresholds, relations)
    config.json         the simulator's MineConfig (absent for traces not made by it)
    ground_truth.json   labels (GroundTruth), times in seconds from the start and in epoch us
    calibrations.json   calibration declarations (报备): point, window, declared at
    readings.parquet    time_us int64, point dictionary<int32, utf8>, value float64,
                        status int16; sorted by time then point order; one row group per block

Nothing in it depends on the wall clock or the machine, so the same config and seed give
byte-identical traces. The writer is the simulator's (``minewatch.simulators.trace.record``);
the reader and the label types live here, in the core, because the alarm evaluation and the
replay source read traces without depending on the simulator. ``config`` is the simulator's
configuration as plain JSON data (``MineConfig.model_validate`` it where it is needed).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from minewatch.metadata import MineDefinition

FORMAT = "minewatch-trace"
VERSION = 1

SCHEMA = pa.schema(
    [
        ("time_us", pa.int64()),
        ("point", pa.dictionary(pa.int32(), pa.utf8())),
        ("value", pa.float64()),
        ("status", pa.int16()),
    ]
)


class TraceError(Exception):
    """A directory that is not a trace this reader understands."""


@dataclass(frozen=True, slots=True)
class ReadingChunk:
    """Readings in time order: equal-length columns; ``point`` indexes ``Trace.codes``."""

    time_us: npt.NDArray[np.int64]
    point: npt.NDArray[np.int32]
    value: npt.NDArray[np.float64]
    status: npt.NDArray[np.int16]

    def __len__(self) -> int:
        return len(self.time_us)


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """One labelled event: what happened where, from when to when (simulated seconds).

    ``peak`` is the expected extreme of the noise-free level (methane: %CH4); None where a
    kind has none. ``point`` is empty for a substation-wide event (then see ``substation``).
    ``related``: the feed point of a power-off failure, the roadway of a vehicle. ``cause``:
    the id (index in the list) of the root label a derived label comes from. ``required``:
    False for ``methane_near_limit`` labels (a detector may alarm there, it need not).
    """

    kind: str
    point: str
    start_s: float
    end_s: float
    peak: float | None
    substation: str = ""
    related: str = ""
    detail: str = ""
    cause: int | None = None
    required: bool = True


@dataclass(frozen=True, slots=True)
class CalibrationDeclaration:
    """A calibration filed (报备) before it happens: point and window, simulated seconds."""

    point: str
    start_s: float
    end_s: float
    declared_at_s: float


@dataclass(frozen=True, slots=True)
class FeedLabel:
    """One labelled situation of the personnel, video or output feed, ``[start_s, end_s)``
    in seconds from ``simulation.start``.

    ``subject_kind`` is ``person`` (card), ``area`` (area code), ``mine`` (mine code) or
    ``camera`` (camera code). ``value``/``limit``: the head-count and the quota
    (overcrowding), the hours underground at the end and the limit (overtime), the month's
    tonnes and its limit (output_month); None otherwise. ``related``: the area of a person's
    restricted entry, the working of a camera, the gas label's point of a camera that went
    offline during it. ``detail``: ``during_gas`` for such a camera. ``cause``: for a derived
    label (the leader who stays with an overtime worker), the index of its root label;
    ``gas_label``: the index in the mine's safety ground truth of that gas label.
    """

    kind: str
    subject_kind: str
    subject: str
    start_s: float
    end_s: float
    value: float | None = None
    limit: float | None = None
    related: str = ""
    detail: str = ""
    cause: int | None = None
    gas_label: int | None = None


class Trace:
    """A trace on disk: its metadata at once, its readings chunk by chunk."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.manifest = json.loads((self.path / "manifest.json").read_text("utf-8"))
        except FileNotFoundError:
            raise TraceError(f"{path}: no manifest.json") from None
        if self.manifest.get("format") != FORMAT:
            raise TraceError(f"{path}: not a {FORMAT}")
        if self.manifest.get("version") != VERSION:
            raise TraceError(f"{path}: version {self.manifest.get('version')}, need {VERSION}")
        files = self.manifest["files"]
        self.definition = MineDefinition.model_validate_json(
            (self.path / files["mine"]).read_bytes()
        )
        self.codes = [p.code for p in self.definition.points]
        self._index = {code: i for i, code in enumerate(self.codes)}
        fields = {f.name for f in dataclasses.fields(GroundTruth)}
        self.ground_truth = [
            GroundTruth(**{k: v for k, v in g.items() if k in fields})
            for g in json.loads((self.path / files["ground_truth"]).read_text("utf-8"))
        ]
        cal_fields = {f.name for f in dataclasses.fields(CalibrationDeclaration)}
        self.calibrations = [
            CalibrationDeclaration(**{k: v for k, v in c.items() if k in cal_fields})
            for c in json.loads((self.path / files["calibrations"]).read_text("utf-8"))
        ]
        self.near_limit = self._labels(files.get("near_limit"), GroundTruth)
        self.feed_labels = self._labels(files.get("feed_ground_truth"), FeedLabel)
        self.feeds = (
            json.loads((self.path / files["feeds"]).read_text("utf-8")) if "feeds" in files else {}
        )
        config = self.path / files.get("config", "config.json")
        self.config: dict[str, Any] | None = (
            json.loads(config.read_bytes()) if config.exists() else None
        )

    def _labels(self, name: str | None, cls: type) -> list:  # type: ignore[type-arg]
        if name is None:  # a trace written before these files existed
            return []
        fields = {f.name for f in dataclasses.fields(cls)}
        raw = json.loads((self.path / name).read_text("utf-8"))
        return [cls(**{k: v for k, v in item.items() if k in fields}) for item in raw]

    @property
    def start_us(self) -> int:
        return int(self.manifest["start_us"])

    def feed_table(self, name: str) -> pa.Table | None:
        """``positions``, ``heartbeats``, ``events`` or ``output`` (None in older traces)."""
        file = self.manifest["files"].get(name)
        return None if file is None else pq.read_table(self.path / file)

    def chunks(self) -> Iterator[ReadingChunk]:
        """The readings in time order, one chunk per row group."""
        source = pq.ParquetFile(self.path / self.manifest["files"]["readings"])
        for group in range(source.num_row_groups):
            table = source.read_row_group(group)
            points = table.column("point").combine_chunks()
            if not isinstance(points, pa.DictionaryArray):
                points = points.dictionary_encode()
            lookup = np.array([self._index[c] for c in points.dictionary.to_pylist()], np.int32)
            indices = points.indices.to_numpy(zero_copy_only=False).astype(np.int32)
            yield ReadingChunk(
                time_us=table.column("time_us").to_numpy().astype(np.int64, copy=False),
                point=lookup[indices] if len(lookup) else indices,
                value=table.column("value").to_numpy().astype(np.float64, copy=False),
                status=table.column("status").to_numpy().astype(np.int16, copy=False),
            )
