"""The layers of minewatch, read from the code: which package may import which.

From the bottom: the core (``minewatch/``: settings, codes, metadata, the batch type, backoff
and retry, the trace format, protocol definitions, the schema), ``alarms``, ``ingest``, then
``api`` and ``simulators`` side by side (neither imports the other), and the CLI
(``minewatch/cli.py``) on top as the composition root. An import may point down or stay in
its own package, never up or sideways. Imports inside functions count the same as imports at
the top of a module: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: folder in the repository -> the package it installs as (setup.py)
FOLDERS = {
    "minewatch": "minewatch",
    "alarms": "minewatch.alarms",
    "ingest": "minewatch.ingest",
    "api": "minewatch.api",
    "simulators": "minewatch.simulators",
}

#: layer of each package; ``minewatch.cli`` is the composition root above everything
RANKS = {
    "minewatch": 0,
    "minewatch.alarms": 1,
    "minewatch.ingest": 2,
    "minewatch.api": 3,
    "minewatch.simulators": 3,
    "minewatch.cli": 4,
}

#: names the project once installed at the top level of site-packages
BARE = frozenset({"alarms", "ingest", "api", "simulators"})


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported} ({self.why})"


def package_of(module: str) -> str:
    """The layer package a dotted module name belongs to."""
    for name in sorted(RANKS, key=len, reverse=True):
        if module == name or module.startswith(name + "."):
            return name
    raise ValueError(f"{module} is not part of minewatch")


def imports_of(source: str, module: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, lazy ones included."""
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            yield node.lineno, name
            for alias in node.names:  # ``from minewatch import alarms`` imports a package
                yield node.lineno, f"{name}.{alias.name}"


def check_module(source: str, module: str) -> list[Violation]:
    """Every import of ``module`` that points up or sideways, or uses a bare project name."""
    own = package_of(module)
    found = []
    for line, imported in imports_of(source, module):
        top = imported.split(".", 1)[0]
        if top in BARE:
            found.append(Violation(module, line, imported, "bare name: use minewatch." + top))
            continue
        if top != "minewatch":
            continue
        target = package_of(imported)
        if target == own:
            continue
        if RANKS[target] >= RANKS[own]:
            direction = "sideways" if RANKS[target] == RANKS[own] else "up"
            found.append(Violation(module, line, imported, f"{own} -> {target} points {direction}"))
    return found


def project_modules(root: Path = ROOT) -> Iterator[tuple[str, Path]]:
    """(dotted name, file) of every module of the installed packages."""
    for folder, package in FOLDERS.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join((package, *parts)), path


def violations(root: Path = ROOT) -> list[Violation]:
    found: list[Violation] = []
    for module, path in project_modules(root):
        found += check_module(path.read_text("utf-8"), module)
    return found
