"""``minewatch evaluate``: the alarm engine measured against a trace's ground truth.

:mod:`.run` replays a trace through the engine (and the naive baseline and the reference),
:mod:`.score` maps labels to episodes and computes precision, recall, latency and the
ISA-18.2 / EEMUA 191 measures, :mod:`.report` renders the tables. Not used at run time: the
gateway never imports this package.
"""
