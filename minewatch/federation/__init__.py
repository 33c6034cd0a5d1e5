"""Federation up the hierarchy (mine -> county -> city -> province) on Mosquitto's own bridges:
the hierarchy as data (:mod:`.hierarchy`) and the bridge configuration written from it
(:mod:`.bridge`)."""

from minewatch.federation.bridge import BridgeLogin, bridge_config, link_account
from minewatch.federation.hierarchy import Hierarchy, Installation, UpMode, load_hierarchy

__all__ = [
    "BridgeLogin",
    "Hierarchy",
    "Installation",
    "UpMode",
    "bridge_config",
    "link_account",
    "load_hierarchy",
]
