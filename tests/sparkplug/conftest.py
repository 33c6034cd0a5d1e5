from tests.sparkplug.peer import peer_python

__all__ = ["peer_python"]
