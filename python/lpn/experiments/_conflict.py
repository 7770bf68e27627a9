"""The A-then-B protocol shared by the conflict experiments (3, 4 and 6).

Keeping one implementation guarantees that the control (experiment 3) and the treatments
(consolidation, replay) see the very same tasks, sample order and seeds, so their
forgetting numbers are directly comparable.
"""

from __future__ import annotations

import numpy as np

import lpn

from .. import metrics, tasks
from ._common import learn_config, learn_in_chunks, mlp, rel_mse

N, RADIUS, DIM, CORR = 64, 0.1, 4, 0.7
# "B is learned": B's relative test error after training on B must be at most this, for
# every treatment (a method that keeps A by not learning B does not pass).
B_BOUND = 0.05


def make_tasks(seed: int, quick: bool):
    """Tasks A and B: correlated inputs, different local maps on the same outputs."""
    steps = 1000 if quick else 2000
    rng = np.random.default_rng(seed)
    return tasks.conflicting_tasks(N, N, RADIUS, rng, dim=DIM, corr=CORR, n_train=steps,
                                   n_test=400)


def _protocol(model, tk, bar, chunk, between=None, replay=0):
    """Train A then B; return the 2x2 relative-error matrix and learning curves."""
    A, B = tk["A"], tk["B"]
    n_a = A["x_train"].shape[0]
    curve = {"step": [], "err_a": [], "err_b": []}

    def log(offset):
        def f(step):
            curve["step"].append(offset + step)
            curve["err_a"].append(rel_mse(model.predict(A["x_test"]), A["t_test"]))
            curve["err_b"].append(rel_mse(model.predict(B["x_test"]), B["t_test"]))
        return f

    E = np.zeros((2, 2))
    learn_in_chunks(model, A["x_train"], A["t_train"], bar, chunk, replay=replay, on_chunk=log(0))
    E[0] = curve["err_a"][-1], curve["err_b"][-1]
    if between is not None:
        between(model)
    learn_in_chunks(model, B["x_train"], B["t_train"], bar, chunk, replay=replay,
                    on_chunk=log(n_a))
    E[1] = curve["err_a"][-1], curve["err_b"][-1]
    return E, curve


# budget_min raised from the default 0.02 to 0.3 (a tuned default, see docs/experiments.md): with a
# budget that shrinks to one synapse per row, the short-trail feedback (g grows with s)
# keeps re-selecting the same one or two synapses, so the long trails - and therefore
# consolidate(), which scales c by l / mean(l) - end up protecting a seed-dependent handful
# of synapses per row; task A actually uses the whole neighbourhood.  Measured over seeds
# 0-4: with the default, consolidate(1) cut forgetting by -5%..92%; with 0.3, by 94-96%.
BASE_CONFIG = {"lr": 0.5, "budget": 0.3, "budget_min": 0.3}


def lpn_net(seed, **cfg_overrides):
    """The LPN every conflict experiment starts from (`BASE_CONFIG` plus overrides)."""
    cfg = dict(BASE_CONFIG)
    cfg.update(cfg_overrides)
    return lpn.Network([lpn.LayerSpec(N, N, radius=RADIUS)], config=learn_config(**cfg),
                       seed=seed)


def run_lpn(tk, seed, bar, strength=None, replay=0, chunk=50, **cfg):
    """A then B on an LPN, optionally consolidating in between or replaying; summary + curve."""
    net = lpn_net(seed, **cfg)
    between = None if strength is None else (lambda m: m.consolidate(strength))
    E, curve = _protocol(net, tk, bar, chunk, between=between, replay=replay)
    out = summarize(E)
    out["curve"] = curve
    out["stats"] = net.stats()
    return out


def run_mlp(tk, seed, bar, chunk=50, **kw):
    """A then B on the dense baseline (EWC/replay via keywords); summary + curve."""
    model = mlp(N, N, seed, **kw)
    A = tk["A"]

    def between(m):
        m.end_task(A["x_train"], A["t_train"])

    E, curve = _protocol(model, tk, bar, chunk, between=between)
    out = summarize(E)
    out["curve"] = curve
    out["replays"] = model.replays
    return out


def summarize(E):
    """Forgetting, final errors and the 2x2 matrix of a relative-error result matrix `E`."""
    s = metrics.summary(E, higher_is_better=False)
    return {
        "matrix": s["matrix"],
        "forgetting_a": s["per_task_forgetting"][0],
        "err_a_after_a": float(E[0, 0]),
        "err_a_after_b": float(E[1, 0]),
        "err_b_after_b": float(E[1, 1]),
        "bwt": s["bwt"],
    }


def best_dense(runs: dict):
    """The dense run that forgets A least among those that learn B (error <= B_BOUND).

    If none learns B, the one with the lowest B error is returned: it is still the fairest
    comparison, and the returned flag says B was not learned.
    """
    ok = {k: r for k, r in runs.items() if r["err_b_after_b"] <= B_BOUND}
    if ok:
        name = min(ok, key=lambda k: ok[k]["forgetting_a"])
        return name, runs[name], True
    name = min(runs, key=lambda k: runs[k]["err_b_after_b"])
    return name, runs[name], False


def steps_per_run(tk) -> int:
    """Learning steps of one A-then-B run (for the progress bar total)."""
    return tk["A"]["x_train"].shape[0] + tk["B"]["x_train"].shape[0]
