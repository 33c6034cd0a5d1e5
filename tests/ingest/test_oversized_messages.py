"""A message larger than the limit is refused, and kept whole in the quarantine: every parser
(the safety contract, the personnel/video contract, Sparkplug B) keeps its exact bytes."""

from __future__ import annotations

import pytest

from minewatch.ingest.contract import parse_message
from minewatch.ingest.feeds.parsing import parse_feed_message
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.sources.sparkplug import decode_payload

LIMIT = 1024
PAYLOAD = b'{"v": 1, "padding": "' + b"x" * (5 * LIMIT) + b'"}'


@pytest.mark.parametrize(
    "refused",
    [
        parse_message("minewatch/v1/141024010001/safety/001", PAYLOAD, LIMIT),
        parse_feed_message("minewatch/v1/141024010001/personnel", PAYLOAD, LIMIT),
        decode_payload(PAYLOAD, source="141024010001/node/dev", max_bytes=LIMIT),
    ],
    ids=["safety", "personnel", "sparkplug"],
)
def test_an_oversized_message_is_quarantined_whole(refused: object) -> None:
    assert isinstance(refused, Rejection)
    assert refused.reason == QuarantineReason.PAYLOAD_TOO_LARGE
    assert refused.payload == PAYLOAD
