"""Trace replay: a recorded trace (:mod:`minewatch.trace`) through the gateway's pipeline
(``minewatch replay``). The adapter is :mod:`.adapter`, its settings :mod:`.settings`. See
README.md here."""
