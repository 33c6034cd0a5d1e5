"""Field kinds of the record types: how one field is read, written and checked.

Each record dataclass declares its fields in file order with one of the helpers below; the
helper stores a :class:`FieldSpec` in the dataclass field's metadata. Reading and checking are
kept consistent: every value a reader returns passes the check, and every value that passes the
check is written so that reading it gives an equal value (the round-trip tests prove both).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, TypeVar

from minewatch.national.format import (
    FULLWIDTH_SEP,
    RESERVED,
    FileType,
    Reason,
    check_digits,
    check_text,
    check_time,
    format_time,
    is_digits,
    parse_time,
)

_NUMBER_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")
#: Decimal exponents beyond this are refused: no sensor needs them, and writing 1E+999999 out
#: in plain digits would take a megabyte.
_MAX_EXPONENT = 30
_MAX_INTEGER = 10**18

E = TypeVar("E", bound=enum.Enum)


class FieldError(Exception):
    """A field's text is not a valid value of its kind."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """How one field is read (text -> value), written (value -> text) and checked."""

    label: str  # the Chinese name in the domain reference
    kind: str  # "text", "digits", "code", "flag", "number", "integer", "time", ...
    read: Callable[[str], Any]
    write: Callable[[Any], str]
    check: Callable[[Any], Any]  # returns the value, normalised; raises ValueError
    required: bool = False  # an empty field is refused
    param: Any = None  # the length of a digits code, the enum of a code


Metadata = dict[str, FieldSpec]


def kind(spec: FieldSpec) -> Metadata:
    """The metadata of a dataclass field: ``field(metadata=text(...))`` and the like."""
    return {"spec": spec}


# -- text and codes --------------------------------------------------------------------------


def text(label: str, *, required: bool = False) -> Metadata:
    """Free text; ``required`` refuses an empty field."""

    def read(raw: str) -> str:
        if required and not raw:
            raise FieldError(Reason.MISSING_VALUE, f"{label} is empty")
        return raw

    def check(value: object) -> str:
        check_text(value, label)
        assert isinstance(value, str)
        if required and not value:
            raise ValueError(f"{label} must not be empty")
        return value

    return kind(FieldSpec(label, "text", read, str, check, required))


def digits(label: str, length: int, *, required: bool = True) -> Metadata:
    """A code of exactly ``length`` ASCII digits (§7.1); empty allowed unless ``required``."""

    def read(raw: str) -> str:
        if not raw and not required:
            return raw
        if not raw:
            raise FieldError(Reason.MISSING_VALUE, f"{label} is empty")
        if not is_digits(raw, length):
            raise FieldError(Reason.INVALID_CODE, f"{label} {raw!r} is not {length} digits")
        return raw

    def check(value: object) -> str:
        if value == "" and not required:
            return ""
        check_digits(value, length, label)
        assert isinstance(value, str)
        return value

    return kind(FieldSpec(label, "digits", read, str, check, required, length))


def code(label: str, table: type[E]) -> Metadata:
    """A value of a code table (an enum); written as the member's value."""
    members = {str(member.value): member for member in table}

    def read(raw: str) -> E:
        if not raw:
            raise FieldError(Reason.MISSING_VALUE, f"{label} is empty")
        member = members.get(raw)
        if member is None:
            raise FieldError(Reason.UNKNOWN_CODE, f"{label} {raw!r} is not in {table.__name__}")
        return member

    def check(value: object) -> E:
        if isinstance(value, table):
            return value
        member = members.get(str(value)) if isinstance(value, str | int) else None
        if member is None or isinstance(value, bool):
            raise ValueError(f"{label} {value!r} is not in {table.__name__}")
        return member

    return kind(FieldSpec(label, "code", read, lambda m: str(m.value), check, True, table))


def flag(label: str) -> Metadata:
    """A 0/1 field as a bool."""

    def read(raw: str) -> bool:
        if raw not in ("0", "1"):
            raise FieldError(Reason.INVALID_FLAG, f"{label} {raw!r} is not 0 or 1")
        return raw == "1"

    def check(value: object) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"{label} {value!r} is not a bool")
        return value

    return kind(FieldSpec(label, "flag", read, lambda v: "1" if v else "0", check, True))


# -- numbers ---------------------------------------------------------------------------------


def _check_decimal(value: object, label: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float):
        raise ValueError(f"{label} {value!r} is not a number")
    number = value if isinstance(value, Decimal) else Decimal(repr(value))
    if not number.is_finite():
        raise ValueError(f"{label} {value!r} is not finite")
    if number and abs(number.adjusted()) > _MAX_EXPONENT:
        raise ValueError(f"{label} {value!r} is out of the representable range")
    return number


def number(label: str) -> Metadata:
    """A decimal number, or None for an empty field.

    Read leniently (``+1``, ``.5``, ``1.0E-4`` as Java writes small doubles), kept as a
    :class:`~decimal.Decimal` (so ``0.50`` stays ``0.50``) and written in plain notation. A file
    written by :func:`encode_file` reads back byte for byte; other spellings are normalised.
    Ints and floats given to a record are converted (a float through its shortest repr).
    """

    def read(raw: str) -> Decimal | None:
        if not raw:
            return None
        if not _NUMBER_RE.fullmatch(raw):
            raise FieldError(Reason.INVALID_NUMBER, f"{label} {raw!r} is not a number")
        try:
            return _check_decimal(Decimal(raw), label)
        except (ValueError, InvalidOperation):
            raise FieldError(Reason.INVALID_NUMBER, f"{label} {raw!r} is out of range") from None

    def check(value: object) -> Decimal | None:
        return None if value is None else _check_decimal(value, label)

    return kind(FieldSpec(label, "number", read, _write_number, check))


def integer(label: str, *, required: bool = False) -> Metadata:
    """A non-negative integer, or None for an empty field unless ``required``."""

    def read(raw: str) -> int | None:
        if not raw and not required:
            return None
        if not raw:
            raise FieldError(Reason.MISSING_VALUE, f"{label} is empty")
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
            raise FieldError(Reason.INVALID_INTEGER, f"{label} {raw!r} is not an integer >= 0")
        if len(raw) > 1 and raw.startswith("0"):
            raise FieldError(Reason.INVALID_INTEGER, f"{label} {raw!r} has a leading zero")
        return int(raw)

    def check(value: object) -> int | None:
        if value is None and not required:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_INTEGER:
            raise ValueError(f"{label} {value!r} is not an integer in [0, 1e18)")
        return value

    return kind(FieldSpec(label, "integer", read, _write_optional, check, required))


# -- times -----------------------------------------------------------------------------------


def _read_time(raw: str, label: str) -> dt.datetime:
    stamp = parse_time(raw)
    if stamp is None:
        raise FieldError(Reason.INVALID_TIME, f"{label} {raw!r} is not yyyy-MM-dd HH:mm:ss")
    return stamp


def time(label: str, *, required: bool = False) -> Metadata:
    """A China-time ``yyyy-MM-dd HH:mm:ss``; None for an empty field unless ``required``."""

    def read(raw: str) -> dt.datetime | None:
        if not raw and not required:
            return None
        if not raw:
            raise FieldError(Reason.MISSING_VALUE, f"{label} is empty")
        return _read_time(raw, label)

    def check(value: object) -> dt.datetime | None:
        if value is None and not required:
            return None
        check_time(value)
        assert isinstance(value, dt.datetime)
        return value

    return kind(FieldSpec(label, "time", read, _write_time, check, required))


def _write_number(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")


def _write_optional(value: object) -> str:
    return "" if value is None else str(value)


def _write_time(value: dt.datetime | None) -> str:
    return "" if value is None else format_time(value)


# -- the record base -------------------------------------------------------------------------


class Record:
    """Base of the record dataclasses: checks and normalises every field on construction."""

    __slots__ = ()
    FILE_TYPE: ClassVar[FileType]

    def __post_init__(self) -> None:
        for name, spec in field_specs(type(self)):
            value = getattr(self, name)
            checked = spec.check(value)
            if checked is not value:
                object.__setattr__(self, name, checked)


R = TypeVar("R", bound="Record")


def field_specs(cls: type[Record]) -> tuple[tuple[str, FieldSpec], ...]:
    """The (attribute, spec) pairs of a record class in file order."""
    # A class object is hashable; mypy matches type[Record] against Hashable through the
    # instances' __hash__ signature and refuses it.
    return _field_specs(cls)  # type: ignore[arg-type]


@functools.cache
def _field_specs(cls: type) -> tuple[tuple[str, FieldSpec], ...]:
    return tuple((f.name, f.metadata["spec"]) for f in dataclasses.fields(cls))


def read_record(cls: type[R], parts: list[str]) -> R:
    """A record from its (already trimmed) fields; raises :class:`FieldError`."""
    values = {}
    for (name, spec), raw in zip(field_specs(cls), parts, strict=True):
        if RESERVED.intersection(raw):
            fullwidth = FULLWIDTH_SEP in raw
            reason = Reason.FULLWIDTH_SEPARATOR if fullwidth else Reason.RESERVED_CHARACTER
            raise FieldError(reason, f"{spec.label} {raw!r} holds a reserved character")
        values[name] = spec.read(raw)
    return cls(**values)


def write_record(record: Record) -> list[str]:
    """The fields of ``record`` as text, in file order."""
    return [spec.write(getattr(record, name)) for name, spec in field_specs(type(record))]
