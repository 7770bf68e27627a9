"""The experiment suite (docs/experiments.md).

``run(name, seed=0, quick=False, progress=True)`` returns a plain dict (JSON-ready):
``name, metric, lpn, baseline, criterion, passed, details, curves, seconds``.
``quick=True`` shrinks every experiment to CI size without changing what it checks.
"""

from __future__ import annotations

import importlib
import time

from ._common import Bar

NAMES = (
    "regression",
    "partitioned_memory",
    "conflicting_memory",
    "consolidated_conflict",
    "structural_plasticity",
    "replay",
    "long_context_memory",
    "split_digits",
)

__all__ = ["NAMES", "module", "run"]


def module(name: str):
    """The module of experiment `name`; `ValueError` naming the choices if unknown."""
    if name not in NAMES:
        raise ValueError(f"unknown experiment {name!r}; expected one of {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}")


def run(name: str, seed: int = 0, quick: bool = False, progress: bool = True) -> dict:
    """Run experiment `name` and return its result dict (see the module docstring).

    `seed` fixes every random choice; `quick=True` is the CI-sized version; `progress`
    draws a bar when stderr is a terminal."""
    mod = module(name)
    bar = Bar(name, progress)
    t0 = time.perf_counter()
    try:
        out = mod.run(int(seed), bool(quick), bar)
    finally:
        bar.close()
    result = {
        "name": name,
        "metric": mod.METRIC,
        "lpn": float(out["lpn"]),
        "baseline": float(out["baseline"]),
        "criterion": out["criterion"],
        "passed": bool(out["passed"]),
        "details": out["details"],
        "curves": out["curves"],
        "seconds": time.perf_counter() - t0,
        "seed": int(seed),
        "quick": bool(quick),
    }
    return result
