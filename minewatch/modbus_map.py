"""Modbus register maps and the codec between readings and registers, with no I/O (sans-IO).

A :class:`ModbusMap` says, per substation, which device to ask (host, port, unit id) and where
each point's value and 测点状态 live in its registers (docs/modbus.md). :func:`compile_plan`
turns one substation's map into a :class:`RegisterPlan`: the read requests to make, and
vectorised :meth:`~RegisterPlan.decode` / :meth:`~RegisterPlan.encode` between a register
image and columns of values and statuses. The poller (``ingest/sources/modbus.py``) and the
simulated devices (``simulators/modbus_server.py``) are thin adapters around it.

Word order: Modbus defines 16-bit registers only, so a float32 travels in 2 registers in one of
four orders, named by where the bytes A B C D of the big-endian IEEE 754 value go (Telegraf's
``byte_order``, libmodbus's ``modbus_get_float_*``). Each 2-register group is decoded on its
own; pymodbus's ``convert_from_registers(word_order="little")`` reverses a whole register list
instead (pymodbus-dev/pymodbus#2675) and is not used.
"""

from __future__ import annotations

import enum
import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from minewatch.metadata import MineCode, MineDefinition

#: Most registers one read (function 3 or 4) may return.
MAX_REGISTERS_PER_READ = 125


class WordOrder(enum.StrEnum):
    """Where the bytes A B C D (big-endian, A most significant) of a 32-bit value go."""

    ABCD = "ABCD"  # [AB, CD]: big-endian, Modbus "natural" order
    CDAB = "CDAB"  # [CD, AB]: words swapped ("little-endian word order")
    BADC = "BADC"  # [BA, DC]: bytes swapped inside each word
    DCBA = "DCBA"  # [DC, BA]: fully little-endian

    @property
    def swaps_words(self) -> bool:
        return self in (WordOrder.CDAB, WordOrder.DCBA)

    @property
    def swaps_bytes(self) -> bool:
        """Whether bytes are swapped inside each register (also applies to 16-bit values)."""
        return self in (WordOrder.BADC, WordOrder.DCBA)


class DataType(enum.StrEnum):
    FLOAT32 = "float32"  # IEEE 754 single, 2 registers
    INT16 = "int16"  # two's complement, 1 register
    UINT16 = "uint16"  # 1 register

    @property
    def width(self) -> int:
        """Registers one value occupies."""
        return 2 if self is DataType.FLOAT32 else 1


class RegisterKind(enum.StrEnum):
    INPUT = "input"  # 3xxxx, read with function 4
    HOLDING = "holding"  # 4xxxx, read with function 3


_Address = Field(ge=0, le=65535, description="0-based register address, as in the request PDU.")


class PointRegister(BaseModel):
    """Where one point lives: ``value = raw * scale + offset`` (then rounded to ``decimals``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(min_length=1, max_length=64)
    address: int = _Address
    data_type: DataType = DataType.FLOAT32
    word_order: WordOrder = WordOrder.ABCD
    scale: float = Field(1.0, description="Engineering units per raw unit; not 0.")
    offset: float = 0.0
    decimals: int = Field(
        6, ge=0, le=12, description="Decimal places kept after scaling (removes 0.1*3 noise)."
    )
    status_address: int | None = Field(
        None, ge=0, le=65535, description="A uint16 register holding the 测点状态 bits."
    )

    @model_validator(mode="after")
    def _check(self) -> PointRegister:
        if self.scale == 0 or not math.isfinite(self.scale) or not math.isfinite(self.offset):
            raise ValueError(f"point {self.code}: scale must be finite and non-zero")
        if self.address + self.data_type.width - 1 > 65535:
            raise ValueError(f"point {self.code}: value registers beyond address 65535")
        return self

    def registers(self) -> list[int]:
        """Every register address this point uses (value first, then status)."""
        used = list(range(self.address, self.address + self.data_type.width))
        return used if self.status_address is None else [*used, self.status_address]


class DeviceAddress(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(min_length=1)
    port: int = Field(502, ge=1, le=65535)
    unit_id: int = Field(1, ge=0, le=255, description="Modbus unit (slave) id.")


class SubstationMap(BaseModel):
    """One substation: one device, its points, and how to read them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    substation: str = Field(min_length=1, max_length=32)
    device: DeviceAddress
    register_kind: RegisterKind = RegisterKind.INPUT
    max_read_gap: int = Field(
        0,
        ge=0,
        le=MAX_REGISTERS_PER_READ,
        description="Unmapped registers a single read may span to join two runs; 0 reads only "
        "mapped registers (devices answer unmapped ones with exception 2).",
    )
    points: tuple[PointRegister, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> SubstationMap:
        codes: set[str] = set()
        owner: dict[int, str] = {}
        for point in self.points:
            if point.code in codes:
                raise ValueError(f"substation {self.substation}: point {point.code} twice")
            codes.add(point.code)
            for address in point.registers():
                if address in owner:
                    raise ValueError(
                        f"substation {self.substation}: register {address} used by both "
                        f"{owner[address]} and {point.code}"
                    )
                owner[address] = point.code
        return self


class ModbusMap(BaseModel):
    """The register map of one mine: which device holds which point where."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mine: MineCode
    substations: tuple[SubstationMap, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> ModbusMap:
        stations: set[str] = set()
        codes: set[str] = set()
        for station in self.substations:
            if station.substation in stations:
                raise ValueError(f"substation {station.substation} mapped twice")
            stations.add(station.substation)
            for point in station.points:
                if point.code in codes:
                    raise ValueError(f"point {point.code} mapped on two substations")
                codes.add(point.code)
        return self

    def substation(self, code: str) -> SubstationMap:
        for station in self.substations:
            if station.substation == code:
                return station
        raise KeyError(code)

    def to_toml(self) -> str:
        """The map as the TOML file this page's format describes (``ModbusMap.model_validate(
        tomllib.loads(text))`` gives it back), e.g. for ``MINEWATCH_GATEWAY__MODBUS_MAP_FILE``."""
        lines = [f"mine = {_toml_value(self.mine)}"]
        for station in self.substations:
            head = station.model_dump(mode="json", exclude={"points", "device"})
            device = station.device.model_dump(mode="json")
            lines += ["", "[[substations]]"]
            lines += [f"{key} = {_toml_value(value)}" for key, value in head.items()]
            inline = ", ".join(f"{k} = {_toml_value(v)}" for k, v in device.items())
            lines.append(f"device = {{ {inline} }}")
            for point in station.points:
                fields = point.model_dump(mode="json", exclude_none=True)
                lines += ["", "[[substations.points]]"]
                lines += [f"{key} = {_toml_value(value)}" for key, value in fields.items()]
        return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    """A TOML scalar: strings JSON-quoted (a subset of TOML's basic strings), numbers, bools."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


# -- the default layout of simulated devices ----------------------------------------------------

#: Registers per point in the default layout: float32 value (2) + status (1).
DEFAULT_STRIDE = 3


def default_register_map(
    definition: MineDefinition,
    devices: Mapping[str, DeviceAddress],
    *,
    word_order: WordOrder = WordOrder.ABCD,
) -> ModbusMap:
    """The layout minewatch's simulated devices use (docs/modbus.md, "Default layout").

    Each substation is its own device (``devices[substation]``). Its points, in the
    definition's order, sit in input registers from address 0, 3 per point: point ``i`` has its
    float32 value at ``3i`` and ``3i + 1`` (in ``word_order``) and its status bits at ``3i + 2``.
    """
    stations = []
    for station in definition.substations:
        points = [p for p in definition.points if p.substation == station.code]
        if not points:
            continue
        stations.append(
            SubstationMap(
                substation=station.code,
                device=devices[station.code],
                points=tuple(
                    PointRegister(
                        code=p.code,
                        address=DEFAULT_STRIDE * i,
                        word_order=word_order,
                        status_address=DEFAULT_STRIDE * i + 2,
                    )
                    for i, p in enumerate(points)
                ),
            )
        )
    return ModbusMap(mine=definition.mine.code, substations=tuple(stations))


# -- scalar codec (reference implementation, and the pinned test vectors) ------------------------


def _swap16(word: int) -> int:
    return ((word & 0xFF) << 8) | (word >> 8)


def encode_value(
    value: float,
    data_type: DataType,
    word_order: WordOrder = WordOrder.ABCD,
    *,
    scale: float = 1.0,
    offset: float = 0.0,
) -> list[int]:
    """The registers that carry ``value``; raises ValueError if the type cannot hold it."""
    raw = (value - offset) / scale
    if data_type is DataType.FLOAT32:
        if _overflows_float32(np.array([raw]))[0]:
            raise ValueError(f"{value} does not fit a float32")
        a, b, c, d = struct.pack(">f", raw)
        words = [(a << 8) | b, (c << 8) | d]
    else:
        if not math.isfinite(raw):
            raise ValueError(f"{value} is not a number a {data_type} can hold")
        integer = round(raw)
        low, high = (-0x8000, 0x7FFF) if data_type is DataType.INT16 else (0, 0xFFFF)
        if not low <= integer <= high:
            raise ValueError(f"{value} (raw {integer}) does not fit a {data_type}")
        words = [integer & 0xFFFF]
    if word_order.swaps_bytes:
        words = [_swap16(w) for w in words]
    if word_order.swaps_words:
        words.reverse()
    return words


def decode_value(
    registers: Sequence[int],
    data_type: DataType,
    word_order: WordOrder = WordOrder.ABCD,
    *,
    scale: float = 1.0,
    offset: float = 0.0,
    decimals: int = 6,
) -> float:
    """The value ``registers`` carry (same rules as :meth:`RegisterPlan.decode`)."""
    if len(registers) != data_type.width or any(not 0 <= w <= 0xFFFF for w in registers):
        raise ValueError(f"{data_type} needs {data_type.width} registers of 16 bits")
    words = list(registers)
    if word_order.swaps_words:
        words.reverse()
    if word_order.swaps_bytes:
        words = [_swap16(w) for w in words]
    if data_type is DataType.FLOAT32:
        (single,) = struct.unpack(">f", struct.pack(">HH", *words))
        result = float(float32_to_decimal(np.array([single], np.float32))[0])
        if scale == 1.0 and offset == 0.0:
            return result
    else:
        result = (
            words[0] - 0x10000 if data_type is DataType.INT16 and words[0] & 0x8000 else words[0]
        )
    return float(_round_places(np.array([result * scale + offset]), decimals)[0])


def _overflows_float32(value: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Finite values that round to an infinite float32."""
    with np.errstate(over="ignore"):
        return np.isfinite(value) & np.isinf(value.astype(np.float32))


def _round_places(value: npt.NDArray[np.float64], places: int) -> npt.NDArray[np.float64]:
    """``value`` rounded to ``places`` decimals; beyond 2**52 a float64 has no fraction to round
    (and numpy's multiply-round-divide would only add error there)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(np.abs(value) < 2.0**52, np.round(value, places), value)


def float32_to_decimal(single: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Each float32 as the float64 of its shortest decimal that reads back as the same float32.

    A device that shows 0.7 sends the float32 nearest 0.7, which is 0.699999988...; widened
    as is, it would stay below an alarm level of 0.7. The shortest round-tripping decimal (what
    ``repr`` prints) is what the device meant. Vectorised: the nearest decimal with 6, 7, 8,
    then 9 significant digits is kept for the first one that reads back as the same float32
    (9 always does). Exact for normal magnitudes between 1e-13 and 1e22; zeros, NaN,
    infinities and subnormals are widened unchanged.
    """
    single = np.asarray(single, np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # a signalling NaN from a device's registers warns when widened: it is data, kept as NaN
        wide = single.astype(np.float64)
        out = wide.copy()
        pending = np.isfinite(wide) & (np.abs(single) >= np.finfo(np.float32).tiny)
        exponent = np.floor(np.log10(np.abs(np.where(pending, wide, 1.0)))).astype(np.int64)
        for digits in (6, 7, 8, 9):
            if not pending.any():
                break
            shift = digits - 1 - exponent  # decimal places to keep (negative: round to 10s)
            up = shift >= 0
            power = 10.0 ** np.abs(shift).astype(np.float64)
            candidate = np.where(up, np.round(wide * power) / power, np.round(wide / power) * power)
            hit = pending & (candidate.astype(np.float32) == single)
            out[hit] = candidate[hit]
            pending &= ~hit
    return out


# -- compiled plans: the vectorised codec --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: ``count`` registers from ``address``."""

    address: int
    count: int


@dataclass(frozen=True, slots=True)
class DecodedReadings:
    """A device's readings of one cycle, in plan order."""

    value: npt.NDArray[np.float64]
    status: npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class RegisterPlan:
    """One substation's map compiled to index arrays over a register image.

    The image is ``span`` registers starting at ``start``: every mapped register at
    ``address - start``. Unmapped registers in between are never read by :meth:`decode`.
    """

    substation: str
    device: DeviceAddress
    register_kind: RegisterKind
    codes: tuple[str, ...]
    blocks: tuple[ReadBlock, ...]
    start: int
    span: int
    _float: npt.NDArray[np.intp]  # point rows of float32 values
    _hi: npt.NDArray[np.intp]  # image index of the word holding bytes A B
    _lo: npt.NDArray[np.intp]  # image index of the word holding bytes C D
    _float_swap: npt.NDArray[np.bool_]  # bytes swapped inside words
    _short: npt.NDArray[np.intp]  # point rows of 16-bit values
    _short_at: npt.NDArray[np.intp]
    _short_swap: npt.NDArray[np.bool_]
    _short_signed: npt.NDArray[np.bool_]
    _scale: npt.NDArray[np.float64]
    _offset: npt.NDArray[np.float64]
    _decimals: npt.NDArray[np.int64]
    _scaled: npt.NDArray[np.bool_]  # scale != 1 or offset != 0
    _status: npt.NDArray[np.intp]  # point rows that have a status register
    _status_at: npt.NDArray[np.intp]

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def has_status(self) -> npt.NDArray[np.bool_]:
        """Per point: whether it has a status register (others always decode status 0)."""
        mask = np.zeros(len(self.codes), bool)
        mask[self._status] = True
        return mask

    def image_from_blocks(self, registers: Sequence[Sequence[int]]) -> npt.NDArray[np.uint16]:
        """The register image from the answers to :attr:`blocks`, in the same order."""
        if len(registers) != len(self.blocks):
            raise ValueError(f"{len(registers)} answers for {len(self.blocks)} reads")
        image = np.zeros(self.span, np.uint16)
        for block, words in zip(self.blocks, registers, strict=True):
            if len(words) != block.count:
                raise ValueError(
                    f"read at {block.address}: {len(words)} registers, expected {block.count}"
                )
            at = block.address - self.start
            image[at : at + block.count] = words
        return image

    def decode(self, image: npt.NDArray[np.uint16]) -> DecodedReadings:
        """Values (scaled, rounded) and statuses of every point; NaN stays NaN."""
        image = np.asarray(image, np.uint16)
        if image.shape != (self.span,):
            raise ValueError(f"register image of {image.shape}, expected ({self.span},)")
        value = np.zeros(len(self.codes), np.float64)
        if len(self._float):
            hi, lo = image[self._hi], image[self._lo]
            hi = np.where(self._float_swap, hi.byteswap(), hi)
            lo = np.where(self._float_swap, lo.byteswap(), lo)
            bits = (hi.astype(np.uint32) << 16) | lo.astype(np.uint32)
            value[self._float] = float32_to_decimal(bits.view(np.float32))
        if len(self._short):
            word = image[self._short_at]
            word = np.where(self._short_swap, word.byteswap(), word)
            value[self._short] = np.where(
                self._short_signed, word.view(np.int16).astype(np.float64), word
            )
        rows = np.flatnonzero(self._scaled)
        if len(rows):
            scaled = value[rows] * self._scale[rows] + self._offset[rows]
            for places in np.unique(self._decimals[rows]).tolist():  # a handful at most
                same = self._decimals[rows] == places
                scaled[same] = _round_places(scaled[same], places)
            value[rows] = scaled
        status = np.zeros(len(self.codes), np.int64)
        status[self._status] = image[self._status_at]
        return DecodedReadings(value, status)

    def encode(
        self, value: npt.ArrayLike, status: npt.ArrayLike | None = None
    ) -> npt.NDArray[np.uint16]:
        """The register image that carries ``value`` (and ``status``) for every point.

        Raises ValueError when a value does not fit its type (an int16 beyond 32767, a status
        beyond 16 bits); a point without a status register must have status 0.
        """
        value = np.asarray(value, np.float64)
        status = np.zeros(len(self.codes), np.int64) if status is None else np.asarray(status)
        if value.shape != (len(self.codes),) or status.shape != (len(self.codes),):
            raise ValueError(f"expected {len(self.codes)} values and statuses")
        raw = (value - self._offset) / self._scale
        image = np.zeros(self.span, np.uint16)
        if len(self._float):
            single = raw[self._float]
            if np.any(_overflows_float32(single)):
                raise ValueError("a value does not fit a float32")
            bits = single.astype(np.float32).view(np.uint32)
            hi = (bits >> 16).astype(np.uint16)
            lo = (bits & 0xFFFF).astype(np.uint16)
            image[self._hi] = np.where(self._float_swap, hi.byteswap(), hi)
            image[self._lo] = np.where(self._float_swap, lo.byteswap(), lo)
        if len(self._short):
            short = raw[self._short]
            if not np.all(np.isfinite(short)):
                raise ValueError("a 16-bit value is not a number")
            integer = np.round(short).astype(np.int64)
            low = np.where(self._short_signed, -0x8000, 0)
            high = np.where(self._short_signed, 0x7FFF, 0xFFFF)
            if np.any((integer < low) | (integer > high)):
                raise ValueError("a value does not fit its 16-bit register")
            word = (integer & 0xFFFF).astype(np.uint16)
            image[self._short_at] = np.where(self._short_swap, word.byteswap(), word)
        if np.any((status < 0) | (status > 0xFFFF)):
            raise ValueError("a status does not fit 16 bits")
        if np.any(status[~self.has_status] != 0):
            raise ValueError("a point without a status register has a non-zero status")
        image[self._status_at] = status[self._status]
        return image


def compile_plan(station: SubstationMap) -> RegisterPlan:
    """The read requests and index arrays that decode and encode ``station``'s registers."""
    points = station.points
    used = sorted(a for p in points for a in p.registers())
    start = used[0]
    rows = np.arange(len(points))
    is_float = np.array([p.data_type is DataType.FLOAT32 for p in points], bool)
    address = np.array([p.address for p in points], np.intp) - start
    words_swapped = np.array([p.word_order.swaps_words for p in points], bool)
    bytes_swapped = np.array([p.word_order.swaps_bytes for p in points], bool)
    floats = rows[is_float]
    shorts = rows[~is_float]
    with_status = np.array([p.status_address is not None for p in points], bool)
    scale = np.array([p.scale for p in points], np.float64)
    offset = np.array([p.offset for p in points], np.float64)
    return RegisterPlan(
        substation=station.substation,
        device=station.device,
        register_kind=station.register_kind,
        codes=tuple(p.code for p in points),
        blocks=_read_blocks(used, station.max_read_gap),
        start=start,
        span=used[-1] - start + 1,
        _float=floats,
        _hi=address[floats] + words_swapped[floats].astype(np.intp),
        _lo=address[floats] + (~words_swapped[floats]).astype(np.intp),
        _float_swap=bytes_swapped[floats],
        _short=shorts,
        _short_at=address[shorts],
        _short_swap=bytes_swapped[shorts],
        _short_signed=np.array([points[i].data_type is DataType.INT16 for i in shorts], bool),
        _scale=scale,
        _offset=offset,
        _decimals=np.array([p.decimals for p in points], np.int64),
        _scaled=(scale != 1.0) | (offset != 0.0),
        _status=rows[with_status],
        _status_at=np.array(
            [p.status_address for p in points if p.status_address is not None], np.intp
        ).reshape(-1)
        - start,
    )


def _read_blocks(used: list[int], max_gap: int) -> tuple[ReadBlock, ...]:
    """Runs of used registers, joined across gaps of at most ``max_gap``, <= 125 each."""
    blocks: list[ReadBlock] = []
    first = last = used[0]
    for address in used[1:]:
        if address - last - 1 <= max_gap and address - first < MAX_REGISTERS_PER_READ:
            last = address
            continue
        blocks.append(ReadBlock(first, last - first + 1))
        first = last = address
    blocks.append(ReadBlock(first, last - first + 1))
    return tuple(blocks)
