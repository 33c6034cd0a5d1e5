"""Alarm events on MQTT for control-room screens: ``minewatch/v1/<mine>/alarms``.

Every committed alarm change (raise, clear, acknowledgement, disposal, escalation), incident
change and pre-alarm raise or clear (``"kind": "prealarm"``) reaches the database's
notification channel; this task forwards each to its mine's topic at QoS 1. Screens
subscribe there instead of polling the API. A broker outage is bridged by reconnecting; events
of the outage are not replayed (the API holds the full state: screens reload it on reconnect).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiomqtt
import orjson

from minewatch.alarms.live import AlarmBroadcaster
from minewatch.backoff import Backoff
from minewatch.broker_auth import login_options
from minewatch.feeds import alarm_topic, broker_address
from minewatch.retry import resume_cancellation, stop_if_cancelled

log = logging.getLogger(__name__)


async def publish_alarms(broadcaster: AlarmBroadcaster, mqtt_url: str, client_id: str) -> None:
    """Run until cancelled."""
    host, port = broker_address(mqtt_url)
    login: dict[str, Any] = login_options(mqtt_url)
    backoff = Backoff()
    async with broadcaster.subscribe() as events:
        while True:
            try:
                async with aiomqtt.Client(host, port, identifier=client_id, **login) as client:
                    backoff.reset()
                    while True:
                        resume_cancellation()
                        event = await events.get()
                        mine = event.get("mine")
                        if event.get("event") == "overflow" or not isinstance(mine, str):
                            continue
                        await client.publish(alarm_topic(mine), orjson.dumps(event), qos=1)
            except aiomqtt.MqttError as error:
                stop_if_cancelled(error)
                delay = backoff.next_delay()
                log.warning("alarm publisher lost the broker (%s); retry in %.1fs", error, delay)
                await asyncio.sleep(delay)
