"""The sources as plugins: every protocol folder has its adapter, settings, example
configuration and README; the registry builds what the settings ask for, in its order; each
example configuration switches its source on."""

from __future__ import annotations

from pathlib import Path

import pytest

from minewatch.ingest.sources import registry
from minewatch.ingest.sources.modbus.settings import ModbusSettings
from minewatch.ingest.sources.mqtt_json.adapter import MqttJsonSource
from minewatch.ingest.sources.mqtt_json.settings import MqttJsonSettings
from minewatch.ingest.sources.national.adapter import NationalFileSource
from minewatch.ingest.sources.national.settings import NationalFileSettings
from minewatch.ingest.sources.sparkplug.adapter import SparkplugSource
from minewatch.ingest.sources.sparkplug.settings import SparkplugSettings
from minewatch.settings import GatewaySettings, Settings

SOURCES = Path(__file__).resolve().parents[2] / "ingest" / "sources"
PLUGINS = sorted(p for p in SOURCES.iterdir() if (p / "adapter.py").exists())
MQTT = "mqtt://127.0.0.1:1"  # never connected to: building a source does no I/O


def test_every_protocol_folder_has_adapter_settings_example_and_readme() -> None:
    assert [p.name for p in PLUGINS] == ["modbus", "mqtt_json", "national", "replay", "sparkplug"]
    for folder in PLUGINS:
        for name in ("__init__.py", "settings.py", "example.env", "README.md"):
            assert (folder / name).is_file(), f"{folder.name}/{name} missing"


def test_every_configured_protocol_has_one_registry_line() -> None:
    configured = {p.name for p in PLUGINS} - {"replay"}  # started by minewatch replay only
    assert set(registry.SOURCES) == configured


def test_the_default_settings_build_the_mqtt_json_source_only() -> None:
    sources = registry.configured_sources(GatewaySettings(), MQTT)
    assert [type(s) for s in sources] == [MqttJsonSource]


def test_sources_come_in_the_registry_order_and_only_when_asked_for(tmp_path: Path) -> None:
    settings = GatewaySettings(
        topics=[], sparkplug_groups=["141024010001"], files_root=tmp_path / "files"
    )
    sources = registry.configured_sources(settings, MQTT, "postgresql://unused")
    assert [type(s) for s in sources] == [SparkplugSource, NationalFileSource]


def _load_env(path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            monkeypatch.setenv(name, value.strip("'"))
    return Settings()


@pytest.mark.parametrize(
    ("folder", "model"),
    [
        ("mqtt_json", MqttJsonSettings),
        ("sparkplug", SparkplugSettings),
        ("modbus", ModbusSettings),
        ("national", NationalFileSettings),
    ],
)
def test_each_example_configuration_switches_its_source_on(
    folder: str, model: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(GatewaySettings.model_fields):
        monkeypatch.delenv(f"MINEWATCH_GATEWAY__{name.upper()}", raising=False)
    off = model.from_gateway(GatewaySettings(topics=[]))
    settings = _load_env(SOURCES / folder / "example.env", monkeypatch)
    assert off is None
    assert isinstance(model.from_gateway(settings.gateway), model)
