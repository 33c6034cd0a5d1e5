"""The personnel positioning (人员定位) and video dispatch (视频调度) feeds: their own MQTT
subscription, parser, writer and camera watchdog, run by :class:`FeedPipeline` as one more
gateway task. Output (产量) needs no pipeline: it travels as cumulative readings in the safety
feed and is computed at query time (api/production_repository.py)."""

from minewatch.ingest.feeds.pipeline import FeedPipeline
from minewatch.settings import FeedSettings

__all__ = ["FeedPipeline", "FeedSettings"]
