"""MQTT JSON: the minewatch contract (docs/feeds.md) over a persistent QoS 1 session. The
adapter is :mod:`.adapter` (also the personnel/video feeds' source), its settings
:mod:`.settings`; the parser is :mod:`minewatch.ingest.contract`. See README.md here."""
