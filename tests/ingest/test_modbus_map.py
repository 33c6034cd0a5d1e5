"""The Modbus register codec, without any server: pinned vectors, layouts, round trips."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from minewatch.modbus_map import (
    DataType,
    DeviceAddress,
    ModbusMap,
    PointRegister,
    ReadBlock,
    SubstationMap,
    WordOrder,
    compile_plan,
    decode_value,
    default_register_map,
    encode_value,
    float32_to_decimal,
)
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine

F32 = DataType.FLOAT32
DEVICE = DeviceAddress(host="127.0.0.1", port=1502)


def station(*points: PointRegister, max_read_gap: int = 0) -> SubstationMap:
    return SubstationMap(substation="001", device=DEVICE, points=points, max_read_gap=max_read_gap)


# -- pinned vectors ------------------------------------------------------------------------------

# value, word order, registers: bytes A B C D of the big-endian float32 placed as the order says.
FLOAT_VECTORS = [
    (1.0, WordOrder.ABCD, [0x3F80, 0x0000]),
    (1.0, WordOrder.CDAB, [0x0000, 0x3F80]),
    (1.0, WordOrder.BADC, [0x803F, 0x0000]),
    (1.0, WordOrder.DCBA, [0x0000, 0x803F]),
    (-2.5, WordOrder.ABCD, [0xC020, 0x0000]),
    (123.456, WordOrder.ABCD, [0x42F6, 0xE979]),
    (123.456, WordOrder.CDAB, [0xE979, 0x42F6]),
    (123.456, WordOrder.BADC, [0xF642, 0x79E9]),
    (123.456, WordOrder.DCBA, [0x79E9, 0xF642]),
    (0.0, WordOrder.DCBA, [0x0000, 0x0000]),
]


@pytest.mark.parametrize(("value", "order", "registers"), FLOAT_VECTORS)
def test_float32_pinned_vectors_encode_and_decode(
    value: float, order: WordOrder, registers: list[int]
) -> None:
    assert encode_value(value, F32, order) == registers
    assert decode_value(registers, F32, order) == value


@pytest.mark.parametrize(("value", "order", "registers"), FLOAT_VECTORS)
def test_compiled_plan_matches_the_pinned_vectors(
    value: float, order: WordOrder, registers: list[int]
) -> None:
    plan = compile_plan(station(PointRegister(code="P", address=10, word_order=order)))
    assert plan.encode([value]).tolist() == registers
    assert plan.decode(np.array(registers, np.uint16)).value.tolist() == [value]


@pytest.mark.parametrize(
    ("value", "data_type", "order", "scale", "offset", "registers"),
    [
        (-1.0, DataType.INT16, WordOrder.ABCD, 1.0, 0.0, [0xFFFF]),
        (258.0, DataType.INT16, WordOrder.ABCD, 1.0, 0.0, [0x0102]),
        (258.0, DataType.INT16, WordOrder.BADC, 1.0, 0.0, [0x0201]),  # bytes swapped
        (258.0, DataType.UINT16, WordOrder.CDAB, 1.0, 0.0, [0x0102]),  # no word to swap
        (258.0, DataType.UINT16, WordOrder.DCBA, 1.0, 0.0, [0x0201]),
        (65535.0, DataType.UINT16, WordOrder.ABCD, 1.0, 0.0, [0xFFFF]),
        (25.0, DataType.UINT16, WordOrder.ABCD, 0.1, 0.0, [250]),
        (0.3, DataType.UINT16, WordOrder.ABCD, 0.1, 0.0, [3]),  # 3 * 0.1 decodes as 0.3
        (-40.0, DataType.UINT16, WordOrder.ABCD, 0.1, -40.0, [0]),  # 4-20 mA style offset
        (-3.3, DataType.INT16, WordOrder.ABCD, 0.1, 0.0, [0xFFDF]),
    ],
)
def test_16_bit_pinned_vectors(
    value: float,
    data_type: DataType,
    order: WordOrder,
    scale: float,
    offset: float,
    registers: list[int],
) -> None:
    assert encode_value(value, data_type, order, scale=scale, offset=offset) == registers
    assert decode_value(registers, data_type, order, scale=scale, offset=offset) == value


def test_float32_decodes_to_the_decimal_the_device_meant_so_levels_compare_right() -> None:
    # float32(0.7) is 0.699999988...: widened as is, it would stay below an alarm level of 0.7.
    registers = encode_value(0.7, F32)
    assert float(struct.unpack(">f", struct.pack(">HH", *registers))[0]) < 0.7
    assert decode_value(registers, F32) == 0.7
    assert decode_value(encode_value(1.45, F32), F32) == 1.45


def test_nan_and_infinity_decode_as_such_for_validation_to_refuse() -> None:
    assert np.isnan(decode_value([0x7FC0, 0x0000], F32))
    assert decode_value([0x0000, 0xFF80], F32, WordOrder.CDAB) == -np.inf


@pytest.mark.parametrize(
    ("value", "data_type"),
    [(32768.0, DataType.INT16), (-1.0, DataType.UINT16), (65536.0, DataType.UINT16),
     (float("nan"), DataType.INT16), (1e39, F32)],
)  # fmt: skip
def test_encoding_a_value_the_type_cannot_hold_is_refused(
    value: float, data_type: DataType
) -> None:
    with pytest.raises(ValueError):
        encode_value(value, data_type)
    plan = compile_plan(station(PointRegister(code="P", address=0, data_type=data_type)))
    with pytest.raises(ValueError):
        plan.encode([value])


def test_decoding_the_wrong_number_of_registers_is_refused() -> None:
    with pytest.raises(ValueError):
        decode_value([0x3F80], F32)
    with pytest.raises(ValueError):
        decode_value([0x10000], DataType.UINT16)


# -- property-based round trips ------------------------------------------------------------------

finite_float32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@given(value=finite_float32, order=st.sampled_from(WordOrder))
def test_float32_round_trip_per_word_order_and_the_bytes_are_where_the_order_says(
    value: float, order: WordOrder
) -> None:
    registers = encode_value(value, F32, order)
    a, b, c, d = struct.pack(">f", value)  # independent oracle
    expected = {
        WordOrder.ABCD: [(a << 8) | b, (c << 8) | d],
        WordOrder.CDAB: [(c << 8) | d, (a << 8) | b],
        WordOrder.BADC: [(b << 8) | a, (d << 8) | c],
        WordOrder.DCBA: [(d << 8) | c, (b << 8) | a],
    }[order]
    assert registers == expected
    decoded = decode_value(registers, F32, order)
    assert np.float32(decoded) == np.float32(value)  # the same float32 comes back
    assert encode_value(decoded, F32, order) == registers


@given(raw=st.integers(-0x8000, 0x7FFF), order=st.sampled_from(WordOrder))
def test_int16_round_trip_per_word_order(raw: int, order: WordOrder) -> None:
    registers = encode_value(raw, DataType.INT16, order)
    assert decode_value(registers, DataType.INT16, order) == raw


@given(
    raw=st.integers(0, 0xFFFF),
    order=st.sampled_from(WordOrder),
    decimals=st.integers(0, 4),
    offset=st.sampled_from([0.0, -40.0, 4.0]),
)
def test_scaled_uint16_round_trip(raw: int, order: WordOrder, decimals: int, offset: float) -> None:
    scale = 10.0**-decimals
    value = decode_value([raw], DataType.UINT16, scale=scale, offset=offset, decimals=decimals)
    assert value == round(raw * scale + offset, decimals)
    registers = encode_value(value, DataType.UINT16, order, scale=scale, offset=offset)
    assert decode_value(registers, DataType.UINT16, order, scale=scale, offset=offset) == value


@given(value=st.floats(min_value=1e-10, max_value=1e15) | st.floats(-1e15, -1e-10))
def test_float32_to_decimal_is_the_shortest_round_trip_repr(value: float) -> None:
    single = np.float32(value)
    expected = float(np.format_float_scientific(single, unique=True))
    assert float32_to_decimal(np.array([single]))[0] == expected


@given(value=finite_float32)
def test_float32_to_decimal_always_reads_back_as_the_same_float32(value: float) -> None:
    single = np.float32(value)
    assert np.float32(float32_to_decimal(np.array([single]))[0]) == single


point_specs = st.lists(
    st.tuples(
        st.sampled_from(DataType),
        st.sampled_from(WordOrder),
        st.sampled_from([1.0, 0.1, 0.01, 2.0]),
        st.sampled_from([0.0, -40.0]),
        st.booleans(),  # has a status register
        st.integers(0, 3),  # unmapped registers before the point
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200)
@given(specs=point_specs, data=st.data())
def test_plan_decode_equals_the_scalar_decoder_on_any_image(
    specs: list, data: st.DataObject
) -> None:
    points, address = [], 0
    for i, (data_type, order, scale, offset, has_status, gap) in enumerate(specs):
        address += gap
        status_address = address + data_type.width if has_status else None
        points.append(
            PointRegister(
                code=f"P{i}",
                address=address,
                data_type=data_type,
                word_order=order,
                scale=scale,
                offset=offset,
                status_address=status_address,
            )
        )
        address += data_type.width + has_status
    plan = compile_plan(station(*points))
    words = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=plan.span, max_size=plan.span))
    image = np.array(words, np.uint16)
    decoded = plan.decode(image)
    for i, p in enumerate(points):
        at = p.address - plan.start
        expected = decode_value(
            words[at : at + p.data_type.width],
            p.data_type,
            p.word_order,
            scale=p.scale,
            offset=p.offset,
        )
        assert decoded.value[i] == expected or (np.isnan(expected) and np.isnan(decoded.value[i]))
        status = 0 if p.status_address is None else words[p.status_address - plan.start]
        assert decoded.status[i] == status
    # and the decoded values encode back to the same registers, except where NaN payloads
    # or -0.0 do not survive: compare through a second decode instead.
    finite = np.isfinite(decoded.value)
    again = plan.decode(plan.encode(np.where(finite, decoded.value, 0.0), decoded.status))
    assert np.array_equal(again.value[finite], decoded.value[finite])
    assert np.array_equal(again.status, decoded.status)


# -- maps, read blocks and the default layout ----------------------------------------------------


def test_read_blocks_cover_contiguous_runs_and_split_at_gaps_and_125_registers() -> None:
    points = [
        PointRegister(code=f"A{i}", address=3 * i, status_address=3 * i + 2) for i in range(50)
    ]
    points.append(PointRegister(code="B", address=1000, data_type=DataType.UINT16))
    plan = compile_plan(station(*points))
    assert plan.blocks == (ReadBlock(0, 125), ReadBlock(125, 25), ReadBlock(1000, 1))
    assert plan.start == 0 and plan.span == 1001


def test_max_read_gap_joins_runs_across_unmapped_registers() -> None:
    points = (
        PointRegister(code="A", address=0),
        PointRegister(code="B", address=5, data_type=DataType.INT16),
    )
    assert compile_plan(station(*points)).blocks == (ReadBlock(0, 2), ReadBlock(5, 1))
    assert compile_plan(station(*points, max_read_gap=3)).blocks == (ReadBlock(0, 6),)


def test_image_from_blocks_refuses_answers_of_the_wrong_length() -> None:
    plan = compile_plan(station(PointRegister(code="A", address=0, status_address=2)))
    assert plan.image_from_blocks([[0x3F80, 0, 16]]).tolist() == [0x3F80, 0, 16]
    with pytest.raises(ValueError):
        plan.image_from_blocks([[0x3F80, 0]])
    with pytest.raises(ValueError):
        plan.image_from_blocks([])


@pytest.mark.parametrize(
    "points",
    [
        # the float at 0 uses registers 0 and 1; a status at 1 collides
        (PointRegister(code="A", address=0, status_address=1),),
        (PointRegister(code="A", address=0), PointRegister(code="B", address=1)),
        (PointRegister(code="A", address=0), PointRegister(code="A", address=4)),
    ],
)
def test_a_substation_map_refuses_overlaps_and_duplicates(points: tuple) -> None:
    with pytest.raises(ValidationError):
        station(*points)


@pytest.mark.parametrize(
    "fields",
    [
        {"code": "A", "address": 65535},  # a float32 would need register 65536
        {"code": "A", "address": 0, "scale": 0.0},
        {"code": "A", "address": 0, "word_order": "ACBD"},
        {"code": "A", "address": -1},
    ],
)
def test_a_point_register_refuses_impossible_settings(fields: dict) -> None:
    with pytest.raises(ValidationError):
        PointRegister.model_validate(fields)


def test_a_mine_map_refuses_a_point_on_two_substations() -> None:
    one = station(PointRegister(code="A", address=0))
    two = one.model_copy(update={"substation": "002"})
    with pytest.raises(ValidationError):
        ModbusMap(mine="141024010001", substations=(one, two))


def test_a_point_without_status_register_cannot_encode_a_status() -> None:
    plan = compile_plan(station(PointRegister(code="A", address=0)))
    assert plan.decode(plan.encode([1.0], [0])).status.tolist() == [0]
    with pytest.raises(ValueError):
        plan.encode([1.0], [16])


def test_default_register_map_gives_each_substation_a_device_and_3_registers_per_point() -> None:
    mine = SimulatedMine(load_mine_config(example_mine_path()))
    stations = [s.code for s in mine.definition.substations]
    devices = {
        code: DeviceAddress(host="127.0.0.1", port=1500 + i) for i, code in enumerate(stations)
    }
    mapping = default_register_map(mine.definition, devices, word_order=WordOrder.CDAB)
    assert [s.substation for s in mapping.substations] == stations
    for entry in mapping.substations:
        assert entry.device == devices[entry.substation]
        expected_codes = [
            p.code for p in mine.definition.points if p.substation == entry.substation
        ]
        assert [p.code for p in entry.points] == expected_codes
        for i, point in enumerate(entry.points):
            assert (point.address, point.status_address) == (3 * i, 3 * i + 2)
            assert point.data_type is F32 and point.word_order is WordOrder.CDAB
        plan = compile_plan(entry)
        assert plan.blocks == (ReadBlock(0, 3 * len(entry.points)),)
    # The simulator's values survive the trip through float32 registers exactly.
    cycle = mine.next_cycle()
    for entry in mapping.substations:
        plan = compile_plan(entry)
        rows = [mine.codes.index(code) for code in plan.codes]
        decoded = plan.decode(plan.encode(cycle.value[rows], cycle.status[rows]))
        assert decoded.value.tolist() == cycle.value[rows].tolist()


def test_a_signalling_nan_from_the_registers_is_kept_without_a_warning() -> None:
    """Found by hypothesis: a device's NaN bit pattern may be a signalling NaN."""
    from minewatch.modbus_map import float32_to_decimal

    signalling = np.array([0x7F800001], dtype=np.uint32).view(np.float32)
    out = float32_to_decimal(np.array([0.0, signalling[0], 0.7], dtype=np.float32))
    assert out[0] == 0.0 and np.isnan(out[1]) and out[2] == 0.7
