"""The files in deploy/ that an operator installs: systemd units that systemd accepts and
rates as hardened, and a Mosquitto configuration that `minewatch doctor` passes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from minewatch.doctor import Level
from minewatch.doctor.broker_config import findings, parse

DEPLOY = Path(__file__).parents[2] / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("minewatch-*.*"))
#: `systemd-analyze security`: up to 4.0 is "OK", above it "MEDIUM" and worse
MAX_EXPOSURE = 4.0

needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def _installed_copies(tmp_path: Path) -> list[Path]:
    """The units as they would be installed, with this checkout's minewatch as the command."""
    env = tmp_path / "minewatch.env"
    env.write_text((DEPLOY / "systemd" / "minewatch.env.example").read_text())
    command = str(Path(sys.executable).with_name("minewatch"))
    out = []
    for unit in UNITS:
        text = unit.read_text().replace("/opt/minewatch/.venv/bin/minewatch", command)
        target = tmp_path / unit.name
        target.write_text(text.replace("/etc/minewatch/minewatch.env", str(env)))
        out.append(target)
    return out


@needs_systemd
def test_systemd_accepts_every_unit(tmp_path: Path) -> None:
    assert {u.name for u in UNITS} >= {"minewatch-gateway.service", "minewatch-api.service",
                                       "minewatch-maintenance.service",
                                       "minewatch-maintenance.timer"}  # fmt: skip
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, _installed_copies(tmp_path))],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@needs_systemd
@pytest.mark.parametrize("name", [u.name for u in UNITS if u.suffix == ".service"])
def test_every_service_is_hardened(tmp_path: Path, name: str) -> None:
    unit = next(u for u in _installed_copies(tmp_path) if u.name == name)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    line = next(x for x in result.stdout.splitlines() if "Overall exposure level" in x)
    exposure = float(line.split(":")[1].split()[0])
    assert exposure <= MAX_EXPOSURE, line
    for setting in ("NoNewPrivileges=yes", "ProtectSystem=strict", "User=minewatch"):
        assert setting in unit.read_text()


def test_the_example_mosquitto_configuration_loses_nothing_and_lets_no_one_in() -> None:
    lines = [
        line for line in (DEPLOY / "mosquitto" / "minewatch.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]  # fmt: skip
    found = findings(parse(lines))
    assert [f for f in found if f.level is not Level.OK] == []


@pytest.mark.parametrize(
    ("sources", "mirror"),
    [
        # one-line format, a local mirror after the security archive
        ("# old\ndeb http://security.debian.org/debian-security bookworm-security main\n"
         "deb [arch=amd64] http://mirrors.mine.local/debian bookworm main\n",
         "http://mirrors.mine.local/debian"),
        # deb822 (Debian 12's and 13's default)
        ("Types: deb\nURIs: http://10.1.2.3/debian\nSuites: trixie trixie-updates\n"
         "Components: main\n", "http://10.1.2.3/debian"),
        ("", "http://deb.debian.org/debian"),  # nothing configured: Debian's own
    ],
)  # fmt: skip
def test_setup_takes_the_debian_mirror_from_the_machines_apt_sources(
    tmp_path: Path, sources: str, mirror: str
) -> None:
    """deploy/setup.sh fetches TimescaleDB's source from the mirror apt already uses."""
    script = (DEPLOY / "setup.sh").read_text()
    start = script.index("debian_mirror() {")
    function = script[start : script.index("\n}\n", start) + 3]
    listed = tmp_path / "sources.list"
    listed.write_text(sources)
    function = function.replace(
        "/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources",
        str(listed),
    )
    assert str(listed) in function
    found = subprocess.run(
        ["bash", "-c", f"{function}\ndebian_mirror"], capture_output=True, text=True, check=True,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert found.stdout.strip() == mirror


def test_the_compose_file_checks_every_service_and_its_broker_loses_nothing() -> None:
    """deploy/compose (not run here: no container runtime): every service has a health check,
    the gateway and the API start only after what they need is healthy, and its Mosquitto
    configuration passes the checks of `minewatch doctor`."""
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"database", "broker", "gateway", "api"}
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
    for name in ("gateway", "api"):
        needs = services[name]["depends_on"]
        assert all(v == {"condition": "service_healthy"} for v in needs.values()), name
    assert "./mosquitto.conf:/mosquitto/config/mosquitto.conf:ro" in services["broker"]["volumes"]
    lines = [
        line for line in (DEPLOY / "compose" / "mosquitto.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]  # fmt: skip
    assert [f for f in findings(parse(lines)) if f.level is not Level.OK] == []
    env = (DEPLOY / "compose" / "minewatch.env.example").read_text()
    assert "MINEWATCH_BROKER__PASSWORD" in env and "POSTGRES_PASSWORD" in env


def _compose() -> list[str] | None:
    """A Compose v2 command line (the docker CLI's plugin or Debian's ``docker-compose``
    2.x), or None where there is none: Compose 1 cannot read the file's top-level ``name``."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        version = subprocess.run([*command, "version", "--short"], capture_output=True,
                                 text=True)  # fmt: skip
        if version.returncode == 0 and version.stdout.strip().lstrip("v").startswith("2"):
            return command
    return None


@pytest.mark.skipif(_compose() is None, reason="no Compose v2 here (docker-compose 2.x does it)")
def test_compose_validates_the_file_offline_with_the_example_settings(tmp_path: Path) -> None:
    """``docker compose --env-file minewatch.env config`` (no daemon, no image pulled): the
    file, its interpolations and its env_file resolve as the steps at its top say. Run with
    Debian 13's docker-compose 2.26.1 (docs/operations.md "Containers")."""
    command = _compose()
    assert command is not None
    folder = tmp_path / "compose"
    shutil.copytree(DEPLOY / "compose", folder)
    shutil.copy(folder / "minewatch.env.example", folder / "minewatch.env")
    checked = subprocess.run(
        [*command, "--env-file", "minewatch.env", "-f", "compose.yaml", "config", "--services"],
        cwd=folder, capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert set(checked.stdout.split()) == {"database", "broker", "gateway", "api"}
