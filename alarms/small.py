"""Reductions for the small arrays of a live batch (issue 14: calls per batch are the cost).

Under numpy 2.x, ``ndarray.any()``, ``.all()``, ``.min()`` and ``.max()`` pass through Python
(``numpy/_core/_methods.py``) and ``np.flatnonzero`` through ``ravel``: on an array of a few
dozen elements each took 4 to 7 times as long as ``np.count_nonzero``, ``ndarray.nonzero`` or
an ``argmin`` with its index (about 1.5-3 us against 0.4-0.8 us on the project's 2-core box;
docs/benchmarks.md, "Session 7"). A batch of one polling cycle makes dozens of such calls.
These give the same answers (a NaN counts as set, as in ``any``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def some(a: npt.NDArray[Any]) -> bool:
    """``bool(a.any())``."""
    return int(np.count_nonzero(a)) > 0


def every(a: npt.NDArray[Any]) -> bool:
    """``bool(a.all())``."""
    return int(np.count_nonzero(a)) == a.size


def where_set(a: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
    """``np.flatnonzero(a)`` of a one-dimensional ``a``."""
    return a.nonzero()[0]


def lowest(a: npt.NDArray[Any]) -> Any:
    """``a.min()`` of a non-empty one-dimensional integer ``a`` (of floats, the sign of a
    zero may differ)."""
    return a[a.argmin()]


def highest(a: npt.NDArray[Any]) -> Any:
    """``a.max()`` of a non-empty one-dimensional integer ``a``."""
    return a[a.argmax()]
