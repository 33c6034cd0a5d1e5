"""测点关联关系: the relation field of CDDY records (field 23).

A relation is ``<kind>-<point code>[-<device name>]``, kind a :class:`RelationKind` letter
(e.g. ``D-0101A02`` 断电 the feed point 0101A02, ``K-0101A05-1#局扇`` controls the fan
1#局扇 through point 0101A05). Relations form groups joined by ``:`` (seen as
``K-xxx-1#局扇:D-yyy``), and groups are joined by ``◇``. An empty field has no relations.
The point code may not contain ``-``; the device name may.
"""

from __future__ import annotations

from dataclasses import dataclass

from minewatch.codes import RelationKind
from minewatch.national.fields import FieldError, FieldSpec, Metadata, kind
from minewatch.national.format import Reason, check_text

GROUP_SEP = "◇"
ITEM_SEP = ":"
PART_SEP = "-"

RelationGroup = tuple["Relation", ...]


@dataclass(frozen=True, slots=True)
class Relation:
    kind: RelationKind
    point: str
    device: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, RelationKind):
            raise ValueError(f"relation kind {self.kind!r} is not a RelationKind")
        check_text(self.point, "related point")
        check_text(self.device, "related device")
        if not self.point or PART_SEP in self.point:
            raise ValueError(f"related point {self.point!r} is empty or holds '-'")
        for value in (self.point, self.device):
            if ITEM_SEP in value or GROUP_SEP in value:
                raise ValueError(f"relation part {value!r} holds ':' or '◇'")

    def __str__(self) -> str:
        parts = [self.kind.value, self.point, *([self.device] if self.device else [])]
        return PART_SEP.join(parts)


def parse_relation(item: str) -> Relation:
    """One ``<kind>-<point>[-<device>]``; raises ValueError."""
    kind, sep, rest = item.partition(PART_SEP)
    point, _, device = rest.partition(PART_SEP)
    if not sep:
        raise ValueError(f"relation {item!r} is not <kind>-<point>[-<device>]")
    try:
        relation_kind = RelationKind(kind)
    except ValueError:
        raise ValueError(f"relation kind {kind!r} is not one of B G K H Z D T") from None
    return Relation(relation_kind, point, device)


def parse_relations(field: str) -> tuple[RelationGroup, ...]:
    """The relation groups of a CDDY relation field; raises ValueError."""
    if not field:
        return ()
    return tuple(
        tuple(parse_relation(item) for item in group.split(ITEM_SEP))
        for group in field.split(GROUP_SEP)
    )


def format_relations(groups: tuple[RelationGroup, ...]) -> str:
    return GROUP_SEP.join(ITEM_SEP.join(str(item) for item in group) for group in groups)


def _check_groups(value: object) -> tuple[RelationGroup, ...]:
    if not isinstance(value, tuple):
        raise ValueError(f"relations {value!r} are not a tuple of groups")
    for group in value:
        if not isinstance(group, tuple) or not group:
            raise ValueError(f"relation group {group!r} is not a non-empty tuple")
        if not all(isinstance(item, Relation) for item in group):
            raise ValueError(f"relation group {group!r} holds a non-Relation")
    return value


def relations(label: str) -> Metadata:
    """The field kind of CDDY's 传感器关联关系."""

    def read(raw: str) -> tuple[RelationGroup, ...]:
        try:
            return parse_relations(raw)
        except ValueError as error:
            raise FieldError(Reason.INVALID_RELATION, f"{label}: {error}") from None

    return kind(FieldSpec(label, "relations", read, format_relations, _check_groups))
