"""Modbus TCP: polls the devices of a register map (docs/modbus.md) into a durable spool. The
adapter is :mod:`.adapter`, its settings :mod:`.settings`, the spool :mod:`.spool`; the
register maths is :mod:`minewatch.modbus_map` (shared with the simulated server). See
README.md here."""
