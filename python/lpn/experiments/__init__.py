"""The experiment suite (docs/experiments.md).

``run(name, seed=0, quick=False, progress=True, overrides=None)`` returns a plain dict
(JSON-ready): ``name, metric, lpn, baseline, criterion, passed, details, curves, seconds,
seed, quick, overrides``. ``quick=True`` shrinks every experiment to CI size without changing
what it checks. ``overrides`` (a dict of ``LearnConfig`` fields) is applied on top of every
LearnConfig the experiment builds (experiments build theirs through
``_common.learn_config``); an experiment that builds none with overrides given is an error,
so an override is never silently ignored.
"""

from __future__ import annotations

import importlib
import time
from typing import Any, Mapping, Optional

from ._common import Bar, check_overrides, config_overrides

NAMES = (
    "regression",
    "partitioned_memory",
    "conflicting_memory",
    "consolidated_conflict",
    "structural_plasticity",
    "replay",
    "long_context_memory",
    "split_digits",
    # continual learning without task labels (one head, no task id)
    "class_incremental_digits",
    "permuted_digits",
    "task_free_digits",
    # recall memory
    "recall_scenarios",
    "recall_digits",
    "recall_usage",
)

__all__ = ["NAMES", "module", "run"]


def module(name: str):
    """The module of experiment `name`; `ValueError` naming the choices if unknown."""
    if name not in NAMES:
        raise ValueError(f"unknown experiment {name!r}; expected one of {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}")


def run(name: str, seed: int = 0, quick: bool = False, progress: bool = True,
        overrides: Optional[Mapping[str, Any]] = None) -> dict:
    """Run experiment `name` and return its result dict (see the module docstring).

    `seed` fixes every random choice; `quick=True` is the CI-sized version; `progress`
    draws a bar when stderr is a terminal; `overrides` (LearnConfig fields) apply on top of
    the experiment's own config."""
    mod = module(name)
    over = check_overrides(overrides)
    bar = Bar(name, progress)
    t0 = time.perf_counter()
    try:
        with config_overrides(over) as applied:
            out = mod.run(int(seed), bool(quick), bar)
    finally:
        bar.close()
    if over and not applied:
        raise ValueError(f"experiment {name!r} built no LearnConfig through "
                         f"experiments._common.learn_config, so overrides {over} cannot apply")
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
        "overrides": over,
    }
    return result
