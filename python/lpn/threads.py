"""Thread-count control for the engine's pool (validated in Python so that every bad value is a
`ValueError`/`TypeError`, never an `OverflowError`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _lpn

#: Most threads `set_num_threads` accepts.
MAX_THREADS = 4096


def set_num_threads(n: Any) -> None:
    """Compute on `n` threads from now on; `n = 0` restores the default (`RAYON_NUM_THREADS` if
    set, else one per core, so on a 2-core machine 0 means 2). Results do not depend on `n`."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if not 0 <= int(n) <= MAX_THREADS:
        raise ValueError(f"n must lie in [0, {MAX_THREADS}] (0: the default, one per core), "
                         f"got {n}")
    _lpn.set_num_threads(int(n))


def get_num_threads() -> int:
    """Threads the engine computes on."""
    return _lpn.get_num_threads()
