"""class_incremental_digits: digits in 5 tasks of 2 classes, one 10-way head, no task id.

Targets of issue 11, judged at equal buffer (200) and replay count (1 per sample): LPN with
replay reaches at least experience replay's ACC; LPN without replay reaches at least EWC's
and SI's; and the new tasks are learned (LPN + replay's plasticity, the mean accuracy on
each task right after it, within 5 points of the best dense baseline's).
"""

from __future__ import annotations

from .. import tasks
from . import _digits_cl as D

NAME = "class_incremental_digits"
METRIC = "ACC (class-incremental, one head, mean final accuracy)"


def stream(quick):
    """``seed -> stream`` at full or --quick size."""
    frac = D.QUICK_FRACTION if quick else 1.0
    return lambda s: tasks.class_incremental_digits(s, D.N_TASKS, fraction=frac)


def run(seed: int, quick: bool, bar) -> dict:
    """Run the experiment (see the module docstring); ``bar`` receives progress ticks."""
    res = D.evaluate_all(stream(quick), seed, quick, bar)
    M = res["methods"]
    acc = {m: M[m]["acc"]["mean"] for m in M}
    best = D.best_dense(res)
    er_ok = acc["lpn_replay"] >= acc["er"]
    reg_ok = acc["lpn"] >= max(acc["ewc"], acc["si"])
    learned = M["lpn_replay"]["plasticity"]["mean"] >= M[best]["plasticity"]["mean"] - 0.05
    return {
        "lpn": acc["lpn_replay"],
        "baseline": acc[best],
        "criterion": f"LPN+replay ACC >= ER (same buffer {D.BUFFER}, {D.REPLAY} replay/sample; "
                     f"{D.fmt(res, 'lpn_replay')} vs {D.fmt(res, 'er')}); LPN without replay >= "
                     f"EWC and SI ({D.fmt(res, 'lpn')} vs {D.fmt(res, 'ewc')}, "
                     f"{D.fmt(res, 'si')}); new tasks learned (plasticity within 0.05 of the "
                     f"best dense baseline, {best})",
        "passed": bool(er_ok and reg_ok and learned),
        "details": {**D.details(res), "best_dense": best, "lpn_replay_ge_er": bool(er_ok),
                    "lpn_ge_ewc_and_si": bool(reg_ok), "new_tasks_learned": bool(learned)},
        "curves": D.curves(res),
    }
