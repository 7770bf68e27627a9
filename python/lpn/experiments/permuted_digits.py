"""permuted_digits: 5 fixed pixel permutations of the digits, all ten classes each, one
head, no task id (domain-incremental).

Targets of issue 11: LPN's i.i.d. ceiling (joint training) within 3 points of the dense
MLP's; LPN with replay at least experience replay's ACC at equal buffer and replay count;
and the new tasks are learned (plasticity within 5 points of the best dense baseline's).
"""

from __future__ import annotations

from .. import tasks
from . import _digits_cl as D

NAME = "permuted_digits"
METRIC = "ACC (permuted pixels, one head, mean final accuracy)"


# Share of the training split used per permutation: 0.4 (~500 samples, 2500 steps in all)
# keeps the full grid, seeds and ablation within minutes on 2 cores; --quick 4 %.
FRACTION = 0.4
QUICK_FRACTION = 0.04


def stream(quick):
    """``seed -> stream`` at full or --quick size."""
    frac = QUICK_FRACTION if quick else FRACTION
    return lambda s: tasks.permuted_digits(s, D.N_TASKS, fraction=frac)


def run(seed: int, quick: bool, bar) -> dict:
    """Run the experiment (see the module docstring); ``bar`` receives progress ticks."""
    res = D.evaluate_all(stream(quick), seed, quick, bar)
    M = res["methods"]
    acc = {m: M[m]["acc"]["mean"] for m in M}
    best = D.best_dense(res)
    ceiling_ok = acc["lpn_joint"] >= acc["joint"] - 0.03
    er_ok = acc["lpn_replay"] >= acc["er"]
    learned = M["lpn_replay"]["plasticity"]["mean"] >= M[best]["plasticity"]["mean"] - 0.05
    return {
        "lpn": acc["lpn_replay"],
        "baseline": acc[best],
        "criterion": f"LPN joint ceiling within 0.03 of the MLP's ({D.fmt(res, 'lpn_joint')} vs "
                     f"{D.fmt(res, 'joint')}); LPN+replay ACC >= ER (buffer {D.BUFFER}, "
                     f"{D.REPLAY} replay/sample; {D.fmt(res, 'lpn_replay')} vs "
                     f"{D.fmt(res, 'er')}); new tasks learned (plasticity within 0.05 of {best})",
        "passed": bool(ceiling_ok and er_ok and learned),
        "details": {**D.details(res), "best_dense": best, "fraction": QUICK_FRACTION if quick
                    else FRACTION, "joint_ceiling_within_3":
                    bool(ceiling_ok), "lpn_replay_ge_er": bool(er_ok),
                    "new_tasks_learned": bool(learned)},
        "curves": D.curves(res),
    }
