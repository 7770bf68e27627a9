"""4. consolidated_conflict: experiment 3 with ``consolidate()`` between A and B."""

from __future__ import annotations

from .. import metrics
from . import _conflict as C

NAME = "consolidated_conflict"
METRIC = "A forgetting (rel. MSE after B - after A)"

# Strength used for the criterion, fixed in advance; the sweep only draws the frontier.
# 0.5 sits at the knee of the frontier (seeds 0-4: forgetting 63-73% lower while B's error
# still falls from ~1.7 to ~0.2); strength 1 protects A almost fully but B barely learns.
STRENGTH = 0.5
SWEEP = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0)
SWEEP_QUICK = (0.25, 0.5, 1.0)
EWC_SWEEP = (10.0, 100.0, 1000.0)


def run(seed: int, quick: bool, bar) -> dict:
    """Run the experiment (see the module docstring); `bar` receives progress ticks.

    Returns `lpn`, `baseline`, `criterion`, `passed`, `details` and `curves`."""
    tk = C.make_tasks(seed, quick)
    n = C.steps_per_run(tk)
    sweep = sorted(set(SWEEP_QUICK if quick else SWEEP) | {STRENGTH})
    ewc_sweep = EWC_SWEEP[1:2] if quick else EWC_SWEEP
    bar.add_total(n * (1 + len(sweep) + len(ewc_sweep)))
    ctrl = C.run_lpn(tk, seed, bar)
    frontier = {}
    for s in sweep:
        frontier[s] = C.run_lpn(tk, seed, bar, strength=s)
    ewc = {lam: C.run_mlp(tk, seed, bar, ewc_lambda=lam) for lam in ewc_sweep}
    best = frontier[STRENGTH]
    red = metrics.relative_reduction(ctrl["forgetting_a"], best["forgetting_a"])
    ewc_main = ewc[100.0]
    dname, dense, dense_learns_b = C.best_dense({f"EWC lambda {lam:g}": r for lam, r in ewc.items()})
    b_learned = best["err_b_after_b"] <= C.B_BOUND
    kept = best["forgetting_a"] <= dense["forgetting_a"]
    return {
        "lpn": best["forgetting_a"],
        "baseline": dense["forgetting_a"],
        "criterion": f"forgetting with consolidate({STRENGTH:g}) >= 40% lower than the control "
                     f"(control {ctrl['forgetting_a']:.3g}) AND B learned (rel. error <= "
                     f"{C.B_BOUND:g}; LPN {best['err_b_after_b']:.3g}) AND forgetting <= the best "
                     f"dense baseline's ({dname}: {dense['forgetting_a']:.3g}, B error "
                     f"{dense['err_b_after_b']:.3g})",
        "passed": bool(red >= 0.4 and b_learned and kept),
        "details": {
            "best_dense": dname,
            "best_dense_learns_b": dense_learns_b,
            "b_bound": C.B_BOUND,
            "b_learned": bool(b_learned),
            "forgetting_le_best_dense": bool(kept),
            "best_dense_forgetting_a": dense["forgetting_a"],
            "best_dense_err_b_after_b": dense["err_b_after_b"],
            "strength": STRENGTH,
            "control_forgetting_a": ctrl["forgetting_a"],
            "reduction": red,
            "lpn_err_a_after_b": best["err_a_after_b"],
            "lpn_err_b_after_b": best["err_b_after_b"],
            "control_err_b_after_b": ctrl["err_b_after_b"],
            "ewc_mlp_err_b_after_b": ewc_main["err_b_after_b"],
        },
        "curves": {
            "strength": list(sweep),
            "frontier_forgetting_a": [frontier[s]["forgetting_a"] for s in sweep],
            "frontier_err_b": [frontier[s]["err_b_after_b"] for s in sweep],
            "control_point": [ctrl["forgetting_a"], ctrl["err_b_after_b"]],
            "ewc_lambda": list(ewc_sweep),
            "ewc_forgetting_a": [ewc[lam]["forgetting_a"] for lam in ewc_sweep],
            "ewc_err_b": [ewc[lam]["err_b_after_b"] for lam in ewc_sweep],
            "step": best["curve"]["step"],
            "lpn_err_a": best["curve"]["err_a"], "lpn_err_b": best["curve"]["err_b"],
            "control_err_a": ctrl["curve"]["err_a"],
        },
    }
