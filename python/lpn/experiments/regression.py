"""1. regression: a local linear map learned online; the budget shrinks as loss improves."""

from __future__ import annotations

import numpy as np

import lpn

from .. import tasks
from ..baselines import NLMS
from ._common import learn_config, learn_in_chunks, mlp, rel_mse

NAME = "regression"
METRIC = "test MSE / target variance"


def run(seed: int, quick: bool, bar) -> dict:
    """Run the experiment (see the module docstring); `bar` receives progress ticks.

    Returns `lpn`, `baseline`, `criterion`, `passed`, `details` and `curves`."""
    rng = np.random.default_rng(seed)
    n, radius = 64, 0.1
    steps = 800 if quick else 1500
    chunk = 10
    # Support = the whole wiring neighbourhood: the map is exactly representable.
    W = tasks.local_linear_map(n, n, tasks.neighbourhood(n, n, radius), rng)
    X = tasks.gaussian_inputs(steps, n, rng)
    T = (X @ W.T).astype(np.float32)
    Xte = tasks.gaussian_inputs(500, n, rng)
    Tte = (Xte @ W.T).astype(np.float32)

    cfg = learn_config(lr=0.5, budget=0.3)
    net = lpn.Network([lpn.LayerSpec(n, n, radius=radius)], config=cfg, seed=seed)
    base = mlp(n, n, seed)
    # The fair dense counterpart of a local linear map: a dense linear model with the very
    # same normalised step (and lr), reading every input instead of a neighbourhood.
    linear = NLMS(n, n, lr=0.5)
    bar.add_total(3 * steps)

    curves: dict = {"step": [], "lpn_mse": [], "budget": [], "touched_fraction": [],
              "baseline_step": [], "baseline_mse": [], "linear_mse": []}
    budget0 = float(net.stats()["layers"][0]["budget"])

    def log_lpn(step):
        st = net.stats()["layers"][0]
        curves["step"].append(step)
        curves["lpn_mse"].append(rel_mse(net.predict(Xte), Tte))
        curves["budget"].append(float(st["budget"]))
        curves["touched_fraction"].append(float(st.get("touched_fraction", np.nan)))

    def log_base(step):
        curves["baseline_step"].append(step)
        curves["baseline_mse"].append(rel_mse(base.predict(Xte), Tte))

    learn_in_chunks(net, X, T, bar, chunk, on_chunk=log_lpn)
    learn_in_chunks(base, X, T, bar, chunk, on_chunk=log_base)
    learn_in_chunks(linear, X, T, bar, chunk,
                    on_chunk=lambda s: curves["linear_mse"].append(rel_mse(linear.predict(Xte),
                                                                           Tte)))

    lpn_mse = curves["lpn_mse"][-1]
    dense = {"tanh MLP": curves["baseline_mse"][-1], "NLMS linear": curves["linear_mse"][-1]}
    best = min(dense, key=lambda k: dense[k])
    base_mse = dense[best]
    # "Shrinks as loss improves": the budget after the loss has fallen to its floor is
    # below the starting budget.
    budget_final = curves["budget"][-1]
    budget_min_seen = float(np.min(curves["budget"]))
    passed = lpn_mse <= 0.01 and budget_final < budget0
    return {
        "lpn": lpn_mse,
        "baseline": base_mse,
        "criterion": "LPN test MSE <= 1% of target variance and budget at end < initial "
                     f"budget ({budget0:g}); best dense baseline: {best} "
                     f"({base_mse:.2g}, same steps)",
        "passed": bool(passed),
        "details": {
            "steps": steps,
            "best_dense": best,
            "mlp_mse": dense["tanh MLP"],
            "nlms_mse": dense["NLMS linear"],
            "n_in": n, "n_out": n, "radius": radius,
            "fan_in": int(tasks.neighbourhood(n, n, radius).sum(1).max()),
            "budget_initial": budget0,
            "budget_final": budget_final,
            "budget_min_seen": budget_min_seen,
            "lpn_synapses": int(net.stats()["layers"][0]["synapses"]),
            "baseline_params": int(sum(p.size for p in base.params())),
        },
        "curves": curves,
    }
