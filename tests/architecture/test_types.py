"""mypy over the whole project (deploy/typecheck.sh): strict on the core, checked everywhere.

One run, one test per layer, so a failure names the layer whose types are wrong.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache

import pytest

from tests.architecture.layers import FOLDERS, ROOT

_LINE = re.compile(r"^build/typecheck/(?P<module>[^:]+):\d+: error: ")


@cache
def _errors() -> tuple[str, ...]:
    run = subprocess.run(
        ["bash", str(ROOT / "deploy" / "typecheck.sh")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    errors = tuple(line for line in run.stdout.splitlines() if _LINE.match(line))
    if run.returncode and not errors:  # mypy itself failed: show why
        raise AssertionError(run.stdout + run.stderr)
    return errors


def _layer_of(line: str) -> str:
    match = _LINE.match(line)
    assert match is not None
    path = match["module"].removeprefix("minewatch/")
    folder = path.split("/", 1)[0]
    return folder if folder in FOLDERS and folder != "minewatch" else "minewatch"


@pytest.mark.parametrize("layer", list(FOLDERS))
def test_types_check(layer: str) -> None:
    mine = [line for line in _errors() if _layer_of(line) == layer]
    assert not mine, f"{len(mine)} mypy errors in {layer}:\n" + "\n".join(mine)
