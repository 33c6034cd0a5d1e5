"""`minewatch simulate --modbus` (issue 15): the simulated mine served as Modbus TCP devices for
a user's own poller. The real command is run; `mbpoll` (a Modbus client that is not pymodbus)
reads it with the command lines it prints, minewatch's poller reads it through the register
map it writes, an unknown unit id answers "server failure" as docs/modbus.md says, and SIGTERM
stops it with exit 0."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

from minewatch.codes import PointStatus
from minewatch.ingest.sources.modbus.adapter import ModbusPoller, ModbusPollerConfig
from minewatch.modbus_map import ModbusMap


def _mbpoll(command: str) -> str:
    assert command.startswith("mbpoll "), command
    done = subprocess.run(command.split(), capture_output=True, text=True, timeout=20)
    return done.stdout + done.stderr


def _values(output: str) -> list[float]:
    return [float(v) for v in re.findall(r"^\[\d+\]:\s+(-?[\d.]+)", output, re.MULTILINE)]


async def _poll_once(register_map: ModbusMap) -> dict[str, list[str]]:
    """One message per device from minewatch's poller: no fault, every point of the map."""
    seen: dict[str, list[str]] = {}
    config = ModbusPollerConfig(cycle_s=1.0, timeout_s=0.8)
    async with ModbusPoller(register_map, config) as poller:
        async for message in poller:
            assert not (message.status & int(PointStatus.SUBSTATION_FAULT)).any()
            seen[message.substation] = message.codes
            if len(seen) == len(register_map.substations):
                break
    return seen


def test_simulate_modbus_serves_the_mine_to_mbpoll_and_to_the_poller(
    private_dir: Path,
) -> None:
    map_file = private_dir / "map.toml"
    env = os.environ | {
        "MINEWATCH_VAR_DIR": str(private_dir / "var"), "COLUMNS": "200", "PYTHONUNBUFFERED": "1",
    }  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "minewatch.cli", "simulate", "--modbus", "--modbus-port", "0",
         "--map-out", str(map_file)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,  # people: stderr
    )  # fmt: skip
    drain: threading.Thread | None = None
    try:
        assert process.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while not any(line.startswith("poll it:") for line in lines):
            assert time.monotonic() < deadline and process.poll() is None, lines
            lines.append(process.stderr.readline().strip())
        # keep reading what it logs, so that a full pipe never blocks the server
        drain = threading.Thread(target=process.stderr.read, daemon=True)
        drain.start()
        register_map = ModbusMap.model_validate(tomllib.loads(map_file.read_text()))
        commands = [line for line in lines if line.startswith("mbpoll ")]
        assert len(commands) == 2 * len(register_map.substations)

        raw = _values(_mbpoll(commands[0]))
        first = register_map.substations[0]
        assert len(raw) == 3 * len(first.points)  # value (2 registers) and status per point
        (methane,) = _values(_mbpoll(commands[1]))
        assert 0.0 <= methane <= 4.0  # a %CH4 value, read as a big-endian float32

        device = first.device
        unknown = f"mbpoll -m tcp -a 7 -0 -1 -p {device.port} -t 3 -r 0 -c 3 {device.host}"
        assert "Slave device or server failure" in _mbpoll(unknown)

        seen = asyncio.run(_poll_once(register_map))
        assert seen == {s.substation: [p.code for p in s.points] for s in register_map.substations}
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        if process.stderr is not None:
            if drain is not None:
                drain.join(10)
            process.stderr.close()
    assert code == 0
