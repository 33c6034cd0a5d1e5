"""The external Sparkplug edge node: pysparkplug in a virtual environment of its own (it pins
paho-mqtt<2, minewatch needs 2.x), created once and reused, run as a separate process.

The session fixture ``peer_python`` is registered by conftest.py next to this module."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from minewatch.feeds import broker_address

PEER_REQUIREMENT = "pysparkplug==0.6.1"
ROOT = Path(__file__).resolve().parents[2]
EDGE_NODE_SCRIPT = Path(__file__).with_name("edge_node.py")
#: Override with MINEWATCH_SPARKPLUG_PEER_VENV (e.g. to share one across work trees).
PEER_VENV = Path(
    os.environ.get("MINEWATCH_SPARKPLUG_PEER_VENV", ROOT / "var" / "sparkplug-peer-venv")
)


def _peer_ready(python: Path) -> bool:
    if not python.exists():
        return False
    check = "import sys, pysparkplug; sys.exit(pysparkplug.__version__ != '0.6.1')"
    return subprocess.run([python, "-c", check], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def peer_python() -> Iterator[Path]:
    """The peer environment's interpreter; creates the environment on first use (~10-20 s)."""
    python = PEER_VENV / "bin" / "python"
    PEER_VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(PEER_VENV.parent / f".{PEER_VENV.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one creator among parallel test sessions
        if not _peer_ready(python):
            steps = [
                [sys.executable, "-m", "venv", "--clear", str(PEER_VENV)],
                [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                 PEER_REQUIREMENT],
            ]  # fmt: skip
            for step in steps:
                done = subprocess.run(step, capture_output=True, text=True, timeout=600)
                if done.returncode != 0:
                    pytest.fail(f"cannot build the Sparkplug peer environment: {step}\n"
                                f"{done.stdout}\n{done.stderr}")  # fmt: skip
    yield python


class EdgeNode:
    """One run of tests/sparkplug/edge_node.py; ``lines`` collects what it reported."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, object]] = []
        self._changed = asyncio.Event()

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            try:
                self.lines.append(json.loads(raw))
            except ValueError:  # never silently: a garbled line would hide an event
                self.lines.append({"event": "unreadable", "raw": raw.decode(errors="replace")})
            self._changed.set()

    def count(self, event: str) -> int:
        return sum(1 for line in self.lines if line.get("event") == event)

    async def wait_for(self, event: str, times: int = 1, limit_s: float = 15.0) -> None:
        async with asyncio.timeout(limit_s):
            while self.count(event) < times:
                if self.process.returncode is not None and self._reader.done():
                    raise AssertionError(f"edge node ended before {event!r}: {self.lines}")
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):
                        await self._changed.wait()

    _reader: asyncio.Task[None]


@contextlib.asynccontextmanager
async def edge_node(
    python: Path,
    mqtt_url: str,
    group: str,
    edge: str,
    plan: dict[str, object],
    *options: str,
) -> AsyncIterator[EdgeNode]:
    """Run the peer edge node for the length of the block, then stop it (by its own pid)."""
    host, port = broker_address(mqtt_url)
    process = await asyncio.create_subprocess_exec(
        str(python), str(EDGE_NODE_SCRIPT), "--broker", f"{host}:{port}", "--group", group,
        "--edge", edge, "--plan", json.dumps(plan), *options,
        stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    node = EdgeNode(process)
    node._reader = asyncio.create_task(node._read())
    try:
        yield node
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
        await node._reader
