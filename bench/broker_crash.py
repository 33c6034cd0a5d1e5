"""What a broker killed (SIGKILL) loses of what it acknowledged (issue 15; docs/operations.md
"What a broker crash can lose").

For each broker: a persistent subscriber (the gateway's kind of session) subscribes and goes
away; a publisher sends contract-sized messages (1.7 kB) at QoS 1 at a steady rate for
``--seconds``, each acknowledged by the broker; the broker is killed at once after the last
acknowledgement and started again on the same store; the subscriber comes back and counts what
it gets. Printed per broker: published, received, lost, and how long before the kill the
first lost message was acknowledged (the window). Brokers: the embedded Mosquitto's
configuration with ``autosave_interval`` 1 (minewatch's) and 10 (before issue 15), and
nats-server with JetStream (file store) speaking MQTT, when installed.

    .venv/bin/python -m bench.broker_crash --seconds 5 --rate 400
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiomqtt

from minewatch.embedded import free_port, mosquitto_config
from minewatch.settings import Settings

TOPIC = "minewatch/v1/141024010001/001/safety"


def _wait(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} not open")


@contextlib.contextmanager
def _process(argv: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=out)
    try:
        _wait(port)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)


def mosquitto(interval: int) -> Callable[[Path, int], list[str]]:
    def argv(data: Path, port: int) -> list[str]:
        conf = data / "mosquitto.conf"
        text = mosquitto_config(port, data).replace("autosave_interval 1\n", "")
        conf.write_text(text + f"\nautosave_interval {interval}\n")
        return [str(Settings().mosquitto_bin), "-c", str(conf)]

    return argv


def nats(data: Path, port: int) -> list[str]:
    conf = data / "nats.conf"
    if not conf.exists():
        conf.write_text(
            f'server_name: "bench"\nlisten: "127.0.0.1:{free_port()}"\n'
            f'jetstream {{ store_dir: "{data / "js"}" }}\nmqtt {{ listen: "127.0.0.1:{port}" }}\n'
        )
    return ["nats-server", "-c", str(conf)]


async def _subscribe(port: int) -> None:
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-gw", clean_session=False) as c:
        await c.subscribe("minewatch/v1/#", qos=1)


async def _publish(port: int, seconds: float, rate: int) -> list[float]:
    acked: list[float] = []
    body = b"x" * 1700
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-pub") as client:
        start = time.monotonic()
        n = int(seconds * rate)
        for i in range(n):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            await client.publish(TOPIC, body + str(i).encode(), qos=1)
            acked.append(time.monotonic())
    return acked


async def _drain(port: int) -> set[int]:
    got: set[int] = set()
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-gw", clean_session=False) as c:
        await c.subscribe("minewatch/v1/#", qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                async for m in c.messages:
                    got.add(int(bytes(m.payload)[1700:]))  # type: ignore[arg-type]
    return got


def run(name: str, argv: Callable[[Path, int], list[str]], seconds: float, rate: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="minewatch-bench-broker-"))
    data.chmod(0o777)  # Mosquitto started as root saves as its own user
    port = free_port()
    try:
        with _process(argv(data, port), port, data / "log") as process:
            asyncio.run(_subscribe(port))
            acked = asyncio.run(_publish(port, seconds, rate))
            process.kill()
            killed = time.monotonic()
            process.wait(30)
        with _process(argv(data, port), port, data / "log"):
            got = asyncio.run(_drain(port))
        lost = [i for i in range(len(acked)) if i not in got]
        window = f"{killed - acked[lost[0]]:.2f} s" if lost else "-"
        print(f"{name:28} published {len(acked):6}  received {len(got):6}  "
              f"lost {len(lost):6}  first lost acknowledged {window} before the kill")  # fmt: skip
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=int, default=400, help="messages per second")
    args = parser.parse_args()
    run("mosquitto autosave 1 s", mosquitto(1), args.seconds, args.rate)
    run("mosquitto autosave 10 s", mosquitto(10), args.seconds, args.rate)
    if shutil.which("nats-server"):
        run("nats-server JetStream MQTT", nats, args.seconds, args.rate)


if __name__ == "__main__":
    main()
