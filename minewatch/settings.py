"""Configuration through environment variables (``MINEWATCH_*``) and pydantic-settings.

One :class:`Settings` object is built at the edge (the CLI, a test fixture) and passed down
explicitly; nothing reads the environment anywhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseModel):
    """How the gateway batches, bounds and validates what it receives."""

    topics: list[str] = Field(
        default_factory=lambda: ["minewatch/v1/#"],
        description="MQTT topic filters to subscribe to (QoS 1): the whole tree, so that a "
        "topic outside the contract is quarantined, not unseen.",
    )
    client_id: str = Field(
        "minewatch-gateway",
        description="MQTT client identifier; fixed so that the broker keeps the session.",
    )
    max_inflight_messages: int = Field(
        1000,
        ge=1,
        description="Messages received but not yet durable (and so not acknowledged): "
        "the backpressure bound.",
    )
    batch_max_readings: int = Field(20_000, ge=1, description="Flush a write batch at this size.")
    batch_max_delay_ms: int = Field(100, ge=1, description="Flush a write batch after this delay.")
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_future_skew_s: float = Field(
        300.0, description="Readings stamped further in the future are quarantined."
    )
    max_past_age_s: float = Field(
        30 * 86400.0, description="Readings older than this are quarantined."
    )
    registry_refresh_s: float = Field(
        30.0,
        description="How often the point registry is reloaded from the database, when its "
        "tables (points, calibrations) changed since it was loaded.",
    )
    sparkplug_groups: list[str] = Field(
        default_factory=list,
        description="Sparkplug B group ids (12-digit mine codes) to take from spBv1.0/<group>/...; "
        "empty: no Sparkplug source.",
    )
    sparkplug_host_id: str | None = Field(
        None,
        pattern=r"^[^/+#]+$",
        description="Sparkplug Host ID: the gateway's Primary Host STATE is published on "
        "spBv1.0/STATE/<host id> (edge nodes configured with this id wait for it); unset: the "
        "client id + '-sparkplug'. Each gateway on a broker needs its own.",
    )
    modbus_map_file: Path | None = Field(
        None, description="TOML register map (docs/modbus.md); unset: no Modbus polling."
    )
    modbus_cycle_s: float = Field(5.0, gt=0, le=30, description="Modbus polling cycle.")
    modbus_spool_dir: Path = Field(
        Path("var/spool/modbus"),
        description="Durable spool of polled readings not yet in the database (ingest/spool.py).",
    )
    files_root: Path | None = Field(
        None,
        description="National TXT drop folder (inbox/, done/, rejected/ under it); unset: none.",
    )
    files_scan_s: float = Field(5.0, gt=0, description="How often the drop folder is scanned.")
    files_up_message_bytes: int = Field(
        16 * 1024 * 1024,
        ge=64 * 1024,
        description="With `installation` set: the smallest message size limit (Mosquitto's "
        "message_size_limit) of the brokers on the path up. A national file whose message "
        "(base64) would not fit is refused at the drop folder as too_large_to_send_up.",
    )
    files_max_age_s: float | None = Field(
        None,
        gt=0,
        description="National files whose header time is older are refused as stale; unset: "
        "no age limit (a late file is stored and flagged late_upload).",
    )
    publish_alarms: bool = Field(
        True, description="Forward alarm events to minewatch/v1/<mine>/alarms (QoS 1)."
    )
    tick_s: float | None = Field(
        5.0,
        gt=0,
        description="How often clock-driven alarm checks (data interruption) run; unset: never "
        "(replaying recorded traces, whose event time is not the wall clock).",
    )
    installation: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,50}$",
        description="This installation's name in the federation hierarchy; set: the gateway "
        "publishes the directives written here and stores those arriving from above, and "
        "stores the summaries (alarm changes, statistics) arriving from below.",
    )
    publish_statistics: bool = Field(
        True,
        description="With `installation` set: publish the 1- and 5-minute statistics and the "
        "personnel head-counts per minute on minewatch/v1/<mine>/statistics (QoS 1) for a "
        "level above in `alarms` mode.",
    )
    metrics_host: str = Field("127.0.0.1", description="Where /metrics (Prometheus) listens.")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Port of /metrics; unset: no metrics endpoint."
    )
    allowed_lateness_s: float = Field(
        60.0,
        ge=0,
        description="How far one point's readings may lag another's (event time) and still be "
        "evaluated together: cross-point rules (feed) and off-delay clears wait this long for "
        'a silent side (docs/alarms.md "Batching and late data").',
    )
    sparkplug_map_file: Path | None = Field(
        None,
        description="TOML map of Sparkplug metric names to point codes per edge node or device "
        '(docs/sparkplug.md "Metric map"); unset: metric names are point codes.',
    )
    stop_flush_s: float = Field(
        5.0,
        gt=0,
        description="On a stop signal, how long the last write batch may take to become durable; "
        "then it is left unacknowledged (redelivered to the next run) and the gateway exits.",
    )


class FeedSettings(BaseModel):
    """How the feed pipeline subscribes, batches, validates and times cameras out."""

    topics: list[str] = Field(
        default_factory=lambda: [
            "minewatch/v1/+/personnel",
            "minewatch/v1/+/personnel/meta",
            "minewatch/v1/+/video",
            "minewatch/v1/+/video/meta",
            "minewatch/v1/+/comms",
            "minewatch/v1/+/comms/meta",
        ],
        description="MQTT topic filters to subscribe to (QoS 1).",
    )
    client_id: str | None = Field(
        None,
        description="MQTT client identifier, fixed so that the broker keeps the session; "
        "unset: the gateway's client id + '-feeds' (it must differ from the gateway's).",
    )
    max_inflight_messages: int = Field(1000, ge=1, description="Received, not yet durable.")
    batch_max_rows: int = Field(20_000, ge=1, description="Flush a write batch at this size.")
    batch_max_delay_ms: int = Field(100, ge=1, description="Flush a write batch after this delay.")
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_future_skew_s: float = Field(300.0, description="Rows stamped later are quarantined.")
    max_past_age_s: float = Field(30 * 86400.0, description="Rows older are quarantined.")
    heartbeat_timeout_s: float = Field(
        90.0,
        gt=0,
        description="A camera (or communications device) with no heartbeat (status report) "
        "for this long is offline (per camera or device: heartbeat_timeout_s in video/meta, "
        "comms/meta).",
    )
    watchdog_interval_s: float = Field(
        5.0, gt=0, description="How often the clock-driven camera timeout sweep runs."
    )


class BrokerSettings(BaseModel):
    """The login and TLS files for a configured broker (``MINEWATCH_MQTT_URL``); the embedded
    broker makes its own logins (docs/operations.md "Who may publish")."""

    username: str | None = Field(
        None, description="Broker login (or user:password@ in MINEWATCH_MQTT_URL)."
    )
    password: SecretStr | None = Field(None, description="Password of the broker login.")
    ca_file: str | None = Field(
        None, description="CA certificate for an mqtts:// broker; unset: the system's CAs."
    )
    cert_file: str | None = Field(
        None, description="Client certificate, for a broker that asks for one (mqtts://)."
    )
    key_file: str | None = Field(None, description="Key of the client certificate.")
    bridge_file: Path | None = Field(
        None,
        description="Mosquitto configuration appended to the embedded broker's: the bridge "
        "up to the parent installation (written by minewatch federation config).",
    )


class RetentionSettings(BaseModel):
    """When the maintenance task runs; how long each table keeps its data is data itself, in
    the ``retention_policies`` table (docs/operations.md "Retention and statistics")."""

    enabled: bool = Field(
        True, description="Run retention and rollups in `minewatch gateway` and `demo`."
    )
    interval_s: float = Field(60.0, gt=0, description="Time between two maintenance rounds.")
    rollup_lookback_s: float = Field(
        1800.0,
        gt=0,
        description="Each round recomputes the 1- and 5-minute statistics this far back; older "
        "late readings are taken when their chunk is recomputed (docs/operations.md).",
    )


class ApiSettings(BaseModel):
    """Where the HTTP API listens and how much work one request may cause."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = Field(
        65_536, ge=1024, description="Larger request bodies are refused (413) unread."
    )
    pool_max_size: int = Field(10, ge=1, description="Database connections of the API at most.")
    pool_max_waiting: int = Field(
        100, ge=0, description="Requests queued for a connection at most; more: 503."
    )
    pool_timeout_s: float = Field(
        5.0, gt=0, description="Wait for a connection at most this long; then 503."
    )
    statement_timeout_ms: int = Field(
        15_000, ge=100, description="A single query of the API is cancelled after this (503)."
    )
    replica_url: str | None = Field(
        None,
        description="postgresql:// URL of a read-only streaming replica: reports and history "
        "read there, off the gateway's write path; unset: the primary (docs/operations.md).",
    )
    report_slots: int | None = Field(
        None, ge=1, description="Reports (history, series, reconciliation, audit) running at "
        "once at most, so that the live board keeps connections; unset: half the pool.",
    )  # fmt: skip


class AuthSettings(BaseModel):
    """Sign-in of the HTTP API: sessions, hashing cost, slowing down repeated failures."""

    session_hours: float = Field(12.0, gt=0, description="A browser or script session's life.")
    cookie_secure: bool = Field(
        True, description="Send the session cookie over HTTPS only (browsers treat "
        "http://localhost as secure); false only for a plain-HTTP test set-up.",
    )  # fmt: skip
    hash_time_cost: int = Field(3, ge=1, description="argon2id passes (time cost).")
    hash_memory_kib: int = Field(65_536, ge=8, description="argon2id memory per hash, KiB.")
    login_free_failures: int = Field(
        3, ge=0, description="Failed sign-ins (per username or address) before answers slow down."
    )
    login_delay_base_s: float = Field(
        0.5, ge=0, description="Delay after the first failure past the free ones; doubles each."
    )
    login_delay_max_s: float = Field(8.0, ge=0, description="Longest delay of a sign-in answer.")
    login_lockout_failures: int = Field(
        30, ge=1, description="From this many failures in the window: 429 with Retry-After."
    )
    login_window_s: float = Field(900.0, gt=0, description="How long a failure counts.")
    key_cache_s: float = Field(
        300.0, ge=0, description="How long a verified API key is remembered (saves a hash per "
        "request); a revoked key is refused at once all the same.",
    )  # fmt: skip


DEFAULT_PG_BIN_DIR = Path("/usr/lib/postgresql/15/bin")  # Debian 12's PostgreSQL


def installed_pg_bin_dir(root: Path = Path("/usr/lib/postgresql")) -> Path | None:
    """The newest ``<root>/<major>/bin`` with a server whose PostgreSQL has TimescaleDB."""
    found = [
        bin_dir
        for bin_dir in root.glob("*/bin")
        if bin_dir.parent.name.isdigit() and (bin_dir / "postgres").exists()
        and any((bin_dir.parent / "lib").glob("timescaledb*.so"))
    ]  # fmt: skip
    return max(found, key=lambda d: int(d.parent.name), default=None)


class Settings(BaseSettings):
    """All of minewatch's configuration.

    ``database_url`` and ``mqtt_url`` left unset mean: start the embedded stack (a private
    PostgreSQL + TimescaleDB cluster and a private Mosquitto under ``var_dir``).
    """

    model_config = SettingsConfigDict(
        env_prefix="MINEWATCH_", env_nested_delimiter="__", extra="ignore"
    )

    database_url: str | None = Field(None, description="postgresql:// URL of TimescaleDB.")
    mqtt_url: str | None = Field(
        None, description="mqtt://host:port (mqtts:// for TLS) of the broker."
    )
    var_dir: Path = Field(Path("var"), description="Where the embedded stack keeps its data.")
    pg_bin_dir: Path = Field(
        DEFAULT_PG_BIN_DIR,
        validate_default=True,
        description="PostgreSQL server binaries. Left at the default where that does not exist "
        "(Debian 13 ships PostgreSQL 17): the newest /usr/lib/postgresql/<major>/bin whose "
        "PostgreSQL has TimescaleDB.",
    )
    mosquitto_bin: Path = Field(Path("/usr/sbin/mosquitto"))

    @field_validator("pg_bin_dir")
    @classmethod
    def _installed_pg(cls, value: Path) -> Path:
        if value == DEFAULT_PG_BIN_DIR and not (value / "postgres").exists():
            return installed_pg_bin_dir() or value
        return value

    log_format: Literal["console", "json"] = Field(
        "console", description="console (rich, for a terminal) or json (one object per line)."
    )
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    feeds: FeedSettings = Field(default_factory=FeedSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
