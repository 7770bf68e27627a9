"""6. replay: experiment 3 with a small reservoir buffer replayed only under conflict."""

from __future__ import annotations

from .. import metrics
from . import _conflict as C

NAME = "replay"
METRIC = "A forgetting (rel. MSE after B - after A)"

CAPACITY = 50       # "small": 2.5 % of one task's samples (5 % in --quick)
REPLAY = 4          # samples replayed per conflicting step
CONFLICT_RATIO = 1.5  # the default


def run(seed: int, quick: bool, bar) -> dict:
    """Run the experiment (see the module docstring); `bar` receives progress ticks.

    Returns `lpn`, `baseline`, `criterion`, `passed`, `details` and `curves`."""
    tk = C.make_tasks(seed, quick)
    n = C.steps_per_run(tk)
    bar.add_total(3 * n)
    ctrl = C.run_lpn(tk, seed, bar)
    rep = C.run_lpn(tk, seed, bar, replay=REPLAY, replay_capacity=CAPACITY,
                    replay_on_conflict=True, conflict_ratio=CONFLICT_RATIO)
    base = C.run_mlp(tk, seed, bar, replay_capacity=CAPACITY, replay=1)
    red = metrics.relative_reduction(ctrl["forgetting_a"], rep["forgetting_a"])
    b_learned = rep["err_b_after_b"] <= C.B_BOUND
    kept = rep["forgetting_a"] <= base["forgetting_a"]
    return {
        "lpn": rep["forgetting_a"],
        "baseline": base["forgetting_a"],
        "criterion": f"forgetting with conflict replay >= 50% lower than the control (control "
                     f"{ctrl['forgetting_a']:.3g}) AND B learned (rel. error <= {C.B_BOUND:g}; "
                     f"LPN {rep['err_b_after_b']:.3g}) AND forgetting <= the best dense "
                     f"baseline's (replay-MLP, same buffer: {base['forgetting_a']:.3g}, B error "
                     f"{base['err_b_after_b']:.3g})",
        "passed": bool(red >= 0.5 and b_learned and kept),
        "details": {
            "b_bound": C.B_BOUND,
            "b_learned": bool(b_learned),
            "forgetting_le_best_dense": bool(kept),
            "capacity": CAPACITY, "replay_per_conflict": REPLAY,
            "conflict_ratio": CONFLICT_RATIO,
            "control_forgetting_a": ctrl["forgetting_a"],
            "reduction": red,
            "lpn_replays": int(rep["stats"].get("replays", 0)),
            "lpn_new_steps": n,
            "lpn_err_b_after_b": rep["err_b_after_b"],
            "control_err_b_after_b": ctrl["err_b_after_b"],
            "replay_mlp_replays": int(base["replays"]),
            "replay_mlp_err_b_after_b": base["err_b_after_b"],
        },
        "curves": {
            "step": rep["curve"]["step"],
            "lpn_err_a": rep["curve"]["err_a"], "lpn_err_b": rep["curve"]["err_b"],
            "control_err_a": ctrl["curve"]["err_a"],
            "baseline_err_a": base["curve"]["err_a"], "baseline_err_b": base["curve"]["err_b"],
            "switch_step": [tk["A"]["x_train"].shape[0]],
        },
    }
