"""5. structural_plasticity: the true support lies half outside the initial wiring."""

from __future__ import annotations

import numpy as np

import lpn

from .. import tasks
from ..baselines import NLMS
from ._common import learn_config, learn_in_chunks, mlp, rel_mse

NAME = "structural_plasticity"
METRIC = "final test MSE / target variance"

N, RADIUS = 64, 0.1
RESTRUCTURE_EVERY = 100


def run(seed: int, quick: bool, bar) -> dict:
    """Run the experiment (see the module docstring); `bar` receives progress ticks.

    Returns `lpn`, `baseline`, `criterion`, `passed`, `details` and `curves`."""
    rng = np.random.default_rng(seed)
    steps = 1500 if quick else 3000
    chunk = 50
    # Support: a disc of radius r/2 centred r ahead of each output, i.e. [p+r/2, p+3r/2].
    # Its inner half lies inside the wiring radius r, its outer half between r and the
    # growth radius 1.5 r, reachable only by growing synapses.
    support = tasks.neighbourhood(N, N, RADIUS / 2, offset=RADIUS)
    wired = tasks.neighbourhood(N, N, RADIUS)
    growth = tasks.neighbourhood(N, N, 1.5 * RADIUS)
    assert not (support & ~growth).any()
    outside = float((support & ~wired).sum() / support.sum())
    W = tasks.local_linear_map(N, N, support, rng)
    X = tasks.gaussian_inputs(steps, N, rng)
    T = (X @ W.T).astype(np.float32)
    Xte = tasks.gaussian_inputs(500, N, rng)
    Tte = (Xte @ W.T).astype(np.float32)

    def make(every):
        cfg = learn_config(lr=0.5, budget=0.3, restructure_every=every)
        return lpn.Network([lpn.LayerSpec(N, N, radius=RADIUS)], config=cfg, seed=seed)

    grow_net = make(RESTRUCTURE_EVERY)
    fixed_net = make(0)
    base = mlp(N, N, seed)
    linear = NLMS(N, N, lr=0.5)  # dense linear, same normalised step (see regression)
    bar.add_total(4 * steps)
    initial = int(grow_net.stats()["layers"][0]["synapses"])
    rows0 = np.bincount(grow_net.layers[0].synapses()["post"].astype(np.int64), minlength=N)
    bound = 2 * initial  # default max_fan_in: twice each row's initial size

    curves: dict = {"step": [], "lpn_mse": [], "fixed_mse": [], "baseline_mse": [], "synapses": [],
              "bound": [bound], "pruned": [], "grown": [], "linear_mse": []}

    def log_grow(step):
        st = grow_net.stats()["layers"][0]
        curves["step"].append(step)
        curves["lpn_mse"].append(rel_mse(grow_net.predict(Xte), Tte))
        curves["synapses"].append(int(st["synapses"]))
        # Cumulative counters when the engine has them, else the last pass's.
        curves["pruned"].append(int(st.get("pruned_total", st.get("pruned", 0))))
        curves["grown"].append(int(st.get("grown_total", st.get("grown", 0))))

    learn_in_chunks(grow_net, X, T, bar, chunk, on_chunk=log_grow)
    learn_in_chunks(fixed_net, X, T, bar, chunk,
                    on_chunk=lambda s: curves["fixed_mse"].append(
                        rel_mse(fixed_net.predict(Xte), Tte)))
    learn_in_chunks(base, X, T, bar, chunk,
                    on_chunk=lambda s: curves["baseline_mse"].append(
                        rel_mse(base.predict(Xte), Tte)))
    learn_in_chunks(linear, X, T, bar, chunk,
                    on_chunk=lambda s: curves["linear_mse"].append(
                        rel_mse(linear.predict(Xte), Tte)))
    dense = {"tanh MLP": curves["baseline_mse"][-1], "NLMS linear": curves["linear_mse"][-1]}
    best = min(dense, key=lambda k: dense[k])

    syn = grow_net.layers[0].synapses()
    rows = np.bincount(syn["post"].astype(np.int64), minlength=N)
    pairs = set(zip(syn["pre"].tolist(), syn["post"].tolist()))
    in_growth = bool(growth[syn["post"].astype(np.int64), syn["pre"].astype(np.int64)].all())
    covered = float(support[syn["post"].astype(np.int64), syn["pre"].astype(np.int64)].sum()
                    / support.sum())
    mse_grow = curves["lpn_mse"][-1]
    mse_fixed = curves["fixed_mse"][-1]
    max_seen = max(curves["synapses"])
    rows_ok = bool((rows <= 2 * rows0).all())
    passed = (mse_grow <= 0.1 * mse_fixed and max_seen <= bound and rows_ok and in_growth
              and len(pairs) == syn["pre"].size)
    return {
        "lpn": mse_grow,
        "baseline": dense[best],
        "criterion": f"with restructuring, final MSE <= 10% of the no-restructure run "
                     f"({mse_fixed:.3g}); synapses never above the bound ({bound}), rows within "
                     "max_fan_in, all inside the growth neighbourhood, no duplicates; best dense "
                     f"baseline: {best} ({dense[best]:.2g}, same steps)",
        "passed": bool(passed),
        "details": {
            "steps": steps, "restructure_every": RESTRUCTURE_EVERY,
            "best_dense": best, "mlp_mse": dense["tanh MLP"], "nlms_mse": dense["NLMS linear"],
            "support_outside_wiring": outside,
            "no_restructure_mse": mse_fixed,
            "ratio_to_no_restructure": mse_grow / mse_fixed if mse_fixed > 0 else float("inf"),
            "synapses_initial": initial, "synapses_final": int(syn["pre"].size),
            "synapses_max_seen": int(max_seen), "synapse_bound": bound,
            "support_covered_final": covered,
            "pruned_total": curves["pruned"][-1], "grown_total": curves["grown"][-1],
            "rows_within_max_fan_in": rows_ok, "all_in_growth_neighbourhood": in_growth,
        },
        "curves": curves,
    }
