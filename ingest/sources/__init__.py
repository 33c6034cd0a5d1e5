"""The gateway's sources, one folder per protocol (``mqtt_json``, ``sparkplug``, ``modbus``,
``national``, ``replay``), each with its adapter, settings model, example configuration and
README; what they share is :mod:`.base`, the table of them :mod:`.registry`."""
