"""The layer contract (docs/architecture.md): imports point down, never up or sideways."""

from __future__ import annotations

import pytest

from tests.architecture.layers import ROOT, check_module, project_modules, violations


def test_every_import_points_down() -> None:
    found = violations()
    assert not found, "imports against the layers:\n" + "\n".join(map(str, found))


def test_the_contract_sees_the_whole_tree() -> None:
    modules = dict(project_modules())
    for expected in (
        "minewatch.cli",
        "minewatch.batch",
        "minewatch.alarms.engine",
        "minewatch.ingest.gateway",
        "minewatch.api.app",
        "minewatch.simulators.model",
    ):
        assert expected in modules


@pytest.mark.parametrize(
    ("module", "source", "why"),
    [
        ("minewatch.alarms.engine", "from minewatch.ingest.batch import X", "points up"),
        ("minewatch.batch", "import minewatch.alarms.episodes", "points up"),
        ("minewatch.alarms.engine", "def f():\n    from minewatch.simulators import trace", "up"),
        ("minewatch.api.app", "from minewatch.simulators.model import SimulatedMine", "sideways"),
        ("minewatch.simulators.live", "from minewatch.api import app", "sideways"),
        ("minewatch.ingest.gateway", "from minewatch import cli", "points up"),
        ("minewatch.ingest.sources.base", "from ...api import deps", "points up"),
        ("minewatch.ingest.gateway", "from alarms.engine import AlarmEngine", "bare name"),
    ],
)
def test_a_violation_is_caught(module: str, source: str, why: str) -> None:
    found = check_module(source, module)
    assert found and why in found[0].why


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("minewatch.ingest.gateway", "from minewatch.alarms.engine import AlarmEngine"),
        ("minewatch.cli", "from minewatch.api.server import serve"),
        ("minewatch.simulators.modbus_server", "from minewatch.modbus_map import RegisterMap"),
        ("minewatch.alarms.rules.feed", "from . import latch\nfrom .latch import run"),
        ("minewatch.alarms.engine", "import numpy as np"),
    ],
)
def test_imports_down_or_within_pass(module: str, source: str) -> None:
    assert check_module(source, module) == []


def test_tests_and_benchmarks_use_the_installed_names() -> None:
    found = []
    for folder in ("tests", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            found += [
                f"{path.relative_to(ROOT)}: {v}"
                for v in check_module(path.read_text("utf-8"), "minewatch.cli")
                if v.why.startswith("bare name")
            ]
    assert not found, "\n".join(found)
