"""docs/configuration.md lists every setting of the settings model, with its default."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from minewatch.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _settings(model: type[BaseModel], prefix: str = "MINEWATCH_") -> dict[str, object]:
    """Every leaf setting as its environment variable -> its default."""
    found: dict[str, object] = {}
    for name, field in model.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            found |= _settings(type(default), f"{prefix}{name.upper()}__")
        else:
            assert default is not PydanticUndefined, f"{prefix}{name.upper()} has no default"
            found[f"{prefix}{name.upper()}"] = default
    return found


def _rows() -> dict[str, str]:
    """variable -> its default cell, from the table rows of the document."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and (name := re.fullmatch(r"`(MINEWATCH_\w+)`", cells[0])):
            rows[name.group(1)] = cells[1]
    return rows


def _shows(cell: str, default: object) -> bool:
    text = cell.strip("`")
    if default is None:
        return cell.startswith("unset")
    if isinstance(default, bool):
        return text == str(default).lower()
    if isinstance(default, int | float):
        try:
            return float(text) == float(default)
        except ValueError:
            return False
    if isinstance(default, list):
        try:
            return json.loads(text) == default
        except ValueError:
            return False
    return text == str(default)


def test_every_setting_is_documented_with_its_default() -> None:
    rows = _rows()
    missing = sorted(set(_settings(Settings)) - set(rows))
    assert not missing, f"not in docs/configuration.md: {missing}"
    wrong = {
        name: (rows[name], default)
        for name, default in _settings(Settings).items()
        if not _shows(rows[name], default)
    }
    assert not wrong, f"documented default differs (cell, default): {wrong}"


def test_the_document_lists_no_setting_that_does_not_exist() -> None:
    assert not sorted(set(_rows()) - set(_settings(Settings)))


def test_the_allowed_lateness_setting_is_the_engines_default_and_reaches_it() -> None:
    from minewatch.alarms.rules.params import RuleDefaults
    from minewatch.ingest.gateway import Gateway
    from minewatch.settings import GatewaySettings

    assert GatewaySettings().allowed_lateness_s == RuleDefaults().allowed_lateness_s
    settings = GatewaySettings(allowed_lateness_s=90, topics=[])
    gateway = Gateway(settings, "postgresql://nowhere/x", "mqtt://127.0.0.1:1", sources=[])
    assert gateway._writer.engine.defaults.lateness_us == 90_000_000
    assert gateway.fusion is not None and gateway.fusion._lateness_us == 90_000_000
