"""The hierarchy of installations as data: a small TOML file that names each installation
(a mine, a county, a city, a province), its parent, the mines it serves and what its link
sends up.

```toml
[queue]
outage_hours = 24      # the longest link outage that must lose nothing
messages_per_s = 50    # what one link sends up at its peak

[[installation]]
name = "city-140100"
broker = "mqtts://city.example:8883"   # how the level below reaches this installation
ca_file = "/etc/minewatch/ca.crt"

[[installation]]
name = "mine-141024010031"
parent = "city-140100"
mines = ["141024010031"]
up = "readings"                         # or "alarms"
```
"""

from __future__ import annotations

import math
import tomllib
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from minewatch.feeds import broker_address


class UpMode(StrEnum):
    """What a link carries to the level above."""

    #: every reading and definition (safety, personnel, video): the upper level stores it all
    #: and its own gateway evaluates the alarms again from the same readings and thresholds
    READINGS = "readings"
    #: only the alarm events and the definitions that name their points
    ALARMS = "alarms"


class QueueLimits(BaseModel):
    """The outage a link must survive, and so the broker queue it needs."""

    model_config = ConfigDict(extra="forbid")

    outage_hours: float = Field(24.0, gt=0)
    messages_per_s: float = Field(50.0, gt=0)

    @property
    def max_queued_messages(self) -> int:
        """Messages the lower broker must hold for a link that is down for ``outage_hours``."""
        return math.ceil(self.outage_hours * 3600 * self.messages_per_s)


class Installation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,50}$")
    parent: str | None = None
    mines: list[str] = Field(default_factory=list)
    up: UpMode = UpMode.READINGS
    broker: str | None = Field(None, description="URL by which the level below reaches it.")
    ca_file: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Installation:
        for code in self.mines:
            if len(code) != 12 or not code.isdigit():
                raise ValueError(f"{self.name}: mine code {code!r} is not 12 digits")
        if self.broker is not None:
            broker_address(self.broker)  # a clear error for a wrong scheme
        return self


class Hierarchy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: QueueLimits = Field(default_factory=QueueLimits)
    installation: list[Installation]

    @model_validator(mode="after")
    def _check(self) -> Hierarchy:
        names = [i.name for i in self.installation]
        if len(set(names)) != len(names):
            raise ValueError("installation names must be unique")
        by_name = {i.name: i for i in self.installation}
        seen_mines: dict[str, str] = {}
        for item in self.installation:
            for code in item.mines:
                if code in seen_mines:
                    raise ValueError(f"mine {code} is in {seen_mines[code]} and {item.name}")
                seen_mines[code] = item.name
            if item.parent is None:
                continue
            parent = by_name.get(item.parent)
            if parent is None:
                raise ValueError(f"{item.name}: no installation named {item.parent!r}")
            if parent.broker is None:
                raise ValueError(f"{parent.name} has children, so it needs a broker URL")
        for item in self.installation:
            self.chain(item.name)  # refuses a cycle
        return self

    def get(self, name: str) -> Installation:
        for item in self.installation:
            if item.name == name:
                return item
        raise KeyError(f"no installation named {name!r}")

    def chain(self, name: str) -> list[Installation]:
        """``name`` and its ancestors up to the top."""
        out = [self.get(name)]
        while out[-1].parent is not None:
            if len(out) > len(self.installation):
                raise ValueError(f"{name}: the parents form a cycle")
            out.append(self.get(out[-1].parent))
        return out

    def children(self, name: str) -> list[Installation]:
        return [i for i in self.installation if i.parent == name]

    def owner(self, mine: str) -> Installation:
        """The installation whose ``mines`` hold ``mine``."""
        for item in self.installation:
            if mine in item.mines:
                return item
        raise KeyError(f"no installation serves mine {mine}")

    def carried_up(self, mine: str, name: str) -> UpMode:
        """What of ``mine`` arrives at ``name``'s parent: only alarms if any link on the way
        from its installation up to ``name`` carries only alarms (docs/federation.md)."""
        modes = []
        for item in self.chain(self.owner(mine).name):
            modes.append(item.up)
            if item.name == name:
                break
        return UpMode.ALARMS if UpMode.ALARMS in modes else UpMode.READINGS

    def sources(self, name: str) -> list[tuple[str, str, str, UpMode]]:
        """For every mine below ``name``: (mine, the installation serving it, the child of
        ``name`` whose link carries it, what arrives of it)."""
        return [
            (mine, self.owner(mine).name, child.name, self.carried_up(mine, child.name))
            for child in self.children(name)
            for mine in self.mines_below(child.name)
        ]

    def mines_below(self, name: str) -> list[str]:
        """The mines of ``name`` and of every installation under it."""
        mines = list(self.get(name).mines)
        for child in self.children(name):
            mines += self.mines_below(child.name)
        return sorted(mines)


def load_hierarchy(path: Path) -> Hierarchy:
    with open(path, "rb") as handle:
        return Hierarchy.model_validate(tomllib.load(handle))
