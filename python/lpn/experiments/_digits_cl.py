"""Continual learning on scikit-learn's digits without task labels.

Shared by ``class_incremental_digits``, ``permuted_digits`` and ``task_free_digits``: one
10-way head, no task id at test, one pass over the stream, the result matrix ``R[i, j]``
(accuracy on task ``j``'s test set after the stream reached task ``i``'s nominal end).

Learners (every one sees the very same stream, one online step per sample):

* ``lpn``: 64 pixels on an 8x8 grid -> 256 local tanh units on a 16x16 grid (radius 0.3)
  -> 10 linear outputs reading every hidden unit; hidden layers learn from fixed random
  feedback (docs/rule-notes.md).  The *readout* is the engine's local classification error
  (``output_error="softmax"``, docs/rule.md): the output error is ``onehot - softmax(z)``
  (local: each output needs only the 10 logits), restricted to the classes seen in the last
  ``WINDOW`` new samples (``readout_window``) so that a new class's samples do not push every
  absent (old) class down; replayed samples use all classes.  The "readout off" ablation is
  the rule's squared error on one-hot targets, no window.  Consolidation is the cascade
  (``consolidation_mode="cascade"``, ``CASCADE``: graded, use-driven, no task boundary).
  Trails steer without slowing (``TRAILS``: ``trail_scaled_step=False`` and routing
  ``route_long``, docs/rule-notes.md "Routing").  Both settings were chosen on the validation
  seed (1000) before any test seed was run: ``python scripts/digits_rule_probe.py`` prints
  the comparison.
* ``lpn_replay``: the same plus the engine's replay buffer of ``BUFFER`` samples and
  ``REPLAY`` replayed steps per new sample.  A replayed step recomputes the softmax error
  from the current logits and the stored one-hot target.  The buffer policy is the engine's
  class-balanced reservoir (``replay_policy="balanced"``, Chrysakis & Moens 2020: a new
  sample evicts one of the most frequent class); the ablation's "replay policy off" is plain
  reservoir sampling (``"reservoir"``), what ER uses.
* ``lpn_joint``: ``lpn`` on the shuffled stream (LPN's i.i.d. ceiling).
* dense baselines (:mod:`lpn.baselines`, softmax cross-entropy, SGD): fine-tuning, EWC,
  SI (both told the task boundaries; in the task-free stream they consolidate every
  ``PERIOD`` steps on the last ``PERIOD`` samples, since no boundary exists), experience
  replay with LPN's buffer size and replay count, and joint i.i.d. training.

Hyper-parameters: every learner has a grid of ``GRID_SIZE`` points (see ``GRIDS``), each
run once on a validation seed (``seed + 1000``: another split, init and stream order); the
best by ACC is then run on ``SEEDS`` seeds.  ``--quick`` runs the first grid point only, on
a quarter of the data (4 % for the permuted stream) and ``QUICK_SEEDS`` seeds.
"""

from __future__ import annotations

import itertools

import numpy as np

import lpn

from .. import metrics
from ..baselines import MLP
from ._common import learn_config

N_TASKS = 5
N_CLASSES = 10
BUFFER = 200
REPLAY = 1
WINDOW = 50
PERIOD = 100  # task-free EWC/SI: consolidate every PERIOD steps on the last PERIOD samples
# LPN's rule settings on these streams (validation seed 1000, scripts/digits_rule_probe.py).
TRAILS = {"trail_scaled_step": False, "route_long": 0.9}
CASCADE = {"consolidation_mode": "cascade", "cascade_tau": 300.0, "cascade_max": 0.5,
           "pull": 0.0}
SEEDS = 3
QUICK_SEEDS = 2
VAL_OFFSET = 1000
QUICK_FRACTION = 0.25


def _grid(**axes):
    keys = list(axes)
    return [dict(zip(keys, v)) for v in itertools.product(*(axes[k] for k in keys))]


# The first point of each grid is what --quick runs.
# Both grids were re-centred on the validation seed: LPN's best learning rate sat at the top of
# its old grid (0.5 of {0.5, 0.2}), the MLPs' at the bottom of theirs (0.03 of {0.03, 0.1}).
_LPN_GRID = _grid(lr=[0.5, 1.0], budget=[1.0, 0.3])
_MLP_GRID = _grid(lr=[0.03, 0.01], hidden=[128, 256])
GRIDS = {
    "lpn": _LPN_GRID,
    "lpn_replay": _LPN_GRID,
    "lpn_joint": _LPN_GRID,
    "finetune": _MLP_GRID,
    "ewc": _grid(lr=[0.03, 0.1], ewc_lambda=[100.0, 1000.0]),
    "si": _grid(lr=[0.03, 0.1], si_c=[1.0, 10.0]),
    "er": _MLP_GRID,
    "joint": _MLP_GRID,
}
GRID_SIZE = 4
assert all(len(g) == GRID_SIZE for g in GRIDS.values())
DENSE = ("finetune", "ewc", "si", "er")
ABLATIONS = ("trails", "adaptive_budget", "consolidation", "replay_policy", "readout")


# ------------------------------------------------------------------------------ learners
class LPNLearner:
    """The LPN classifier of this module (see the module docstring)."""

    def __init__(self, seed, lr=0.5, budget=0.3, radius=0.3, replay=0, off=(), rule=None):
        unknown = set(off) - set(ABLATIONS)
        if unknown:
            raise ValueError(f"unknown ablation {sorted(unknown)}; expected {ABLATIONS}")
        self.off = frozenset(off)
        cfg = {"lr": lr, "budget": budget}
        if "trails" in self.off:
            # g = 1 everywhere, no short-trail bonus while expanding, no routing.
            cfg.update(kappa_short=0.0, kappa_long=0.0, beta=0.0)
        else:
            cfg.update(TRAILS)
        if "adaptive_budget" in self.off:
            cfg.update(budget_min=budget, budget_max=budget)
        if "consolidation" not in self.off:
            cfg.update(CASCADE)
        self.softmax = "readout" not in self.off
        if self.softmax:
            cfg.update(output_error="softmax", readout_window=WINDOW)
        self.replay = int(replay)
        self.balanced = "replay_policy" not in self.off
        if self.replay:
            cfg.update(replay_capacity=BUFFER,
                       replay_policy="balanced" if self.balanced else "reservoir")
        h = 16
        l1 = lpn.LayerSpec(64, h * h, dims=2, radius=radius, in_shape=(8, 8), out_shape=(h, h),
                           activation="tanh")
        l2 = lpn.LayerSpec(h * h, N_CLASSES, dims=2, radius=1.0, in_shape=(h, h),
                           out_shape=(2, 5))
        # ``rule``: config overrides applied last (the probes of scripts/digits_rule_probe.py).
        cfg.update(rule or {})
        self.net = lpn.Network([l1, l2], config=learn_config(**cfg), seed=seed)

    def predict(self, X):
        """The 10 logits for one image or a batch."""
        return np.asarray(self.net.predict(X))

    def learn(self, X, Y):
        """The samples in order, one online step each (plus replays after each), one-hot
        targets; the engine keeps the window and the buffer."""
        T = np.eye(N_CLASSES, dtype=np.float32)[np.asarray(Y, dtype=np.int64)]
        self.net.learn(np.asarray(X, dtype=np.float32), T, replay=self.replay)


class DenseLearner:
    """An MLP baseline behind the same ``learn(X, Y)`` / ``predict`` / ``boundary`` calls."""

    def __init__(self, seed, kind, lr, hidden=128, ewc_lambda=0.0, si_c=0.0):
        kw = {"hidden": (int(hidden),), "lr": lr, "loss": "softmax", "seed": seed}
        if kind == "ewc":
            kw["ewc_lambda"] = ewc_lambda
        if kind == "si":
            kw["si_c"] = si_c
        if kind == "er":
            kw.update(replay_capacity=BUFFER, replay=REPLAY)
        self.kind = kind
        self.model = MLP(64, N_CLASSES, **kw)

    def predict(self, X):
        """Class probabilities for one image or a batch."""
        return np.asarray(self.model.predict(X))

    def learn(self, X, Y):
        """One SGD step per sample (plus ER's replays), labels as one-hot targets."""
        T = np.eye(N_CLASSES, dtype=np.float32)[np.asarray(Y)]
        self.model.learn(X, T)

    def boundary(self, X, Y):
        """A task boundary: EWC adds its Fisher from ``X, Y``, SI its importance."""
        if self.kind in ("ewc", "si"):
            self.model.end_task(X, np.eye(N_CLASSES)[np.asarray(Y)])


def make(method, seed, params, off=(), rule=None):
    """A fresh learner of ``method`` (a key of ``GRIDS``) at grid point ``params``; LPN
    learners take ``rule`` (config overrides) too."""
    if method.startswith("lpn"):
        return LPNLearner(seed, replay=REPLAY if method == "lpn_replay" else 0, off=off,
                          rule=rule, **params)
    return DenseLearner(seed, "finetune" if method == "joint" else method, **params)


# ------------------------------------------------------------------------------ protocol
def run_stream(model, stream, task_free=False, shuffle_seed=None):
    """Feed the stream; return the T x T accuracy matrix."""
    X, Y, ends = stream["x"], stream["y"], stream["ends"]
    tests = stream["tests"]
    T = len(ends)
    R = np.zeros((T, T))

    def evaluate(i):
        for j, (xt, yt) in enumerate(tests):
            R[i, j] = float((model.predict(xt).argmax(1) == yt).mean())

    if shuffle_seed is not None:  # joint i.i.d. training: one shuffled pass, judged at the end
        order = np.random.default_rng(shuffle_seed).permutation(len(Y))
        model.learn(X[order], Y[order])
        evaluate(T - 1)
        R[:-1] = R[-1]
        return R
    start = 0
    for i, end in enumerate(ends):
        if task_free and isinstance(model, DenseLearner):
            # No boundaries: EWC/SI consolidate on a fixed period of the stream.
            for a in range(start, end, PERIOD):
                b = min(end, a + PERIOD)
                model.learn(X[a:b], Y[a:b])
                if b - a == PERIOD:
                    model.boundary(X[a:b], Y[a:b])
        else:
            model.learn(X[start:end], Y[start:end])
            if isinstance(model, DenseLearner):
                model.boundary(X[start:end], Y[start:end])
        evaluate(i)
        start = end
    return R


def one_run(method, seed, params, make_stream, task_free, off=(), rule=None):
    """One learner on the stream of ``seed``; the joint learners get it shuffled."""
    stream = make_stream(seed)
    model = make(method, seed, params, off, rule)
    joint = method in ("joint", "lpn_joint")
    return run_stream(model, stream, task_free, shuffle_seed=seed + 1 if joint else None)


def evaluate_all(make_stream, seed, quick, bar, task_free=False, methods=None):
    """Grid search on the validation seed, then ``SEEDS`` seeds and the ablation.

    Returns a JSON-ready dict: per method the chosen parameters, per-seed summaries and
    mean/spread of ACC, BWT, forgetting and plasticity; the ablation table.
    """
    # The matrices here are tiny (at most 540 x 256): a multi-threaded BLAS only adds
    # wake-up latency (measured 40 ms per MLP test-set predict on a busy 2-core machine, vs
    # < 1 ms on one thread).  threadpoolctl ships with scikit-learn, which the data needs.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _evaluate_all(make_stream, seed, quick, bar, task_free, methods)


def _evaluate_all(make_stream, seed, quick, bar, task_free, methods):
    methods = tuple(GRIDS) if methods is None else tuple(methods)
    seeds = [seed + k for k in range(QUICK_SEEDS if quick else SEEDS)]
    n_steps = len(make_stream(seed)["y"])
    grid_runs = sum(1 if quick else len(GRIDS[m]) for m in methods)
    bar.add_total(n_steps * (grid_runs * (0 if quick else 1) + len(methods) * len(seeds)
                             + len(ABLATIONS) * len(seeds)))
    out = {"methods": {}, "ablation": {}, "seeds": seeds, "grid": {}}
    for m in methods:
        grid = GRIDS[m][:1] if quick else GRIDS[m]
        if len(grid) > 1:
            scores = []
            for p in grid:
                R = one_run(m, seed + VAL_OFFSET, p, make_stream, task_free)
                scores.append(metrics.acc(R))
                bar.update(n_steps)
            best = grid[int(np.argmax(scores))]
            out["grid"][m] = {"points": grid, "val_acc": scores}
        else:
            best = grid[0]
        runs = []
        for s in seeds:
            runs.append(metrics.summary(one_run(m, s, best, make_stream, task_free)))
            bar.update(n_steps)
        out["methods"][m] = _aggregate(best, runs)
    if "lpn_replay" in out["methods"]:
        best = out["methods"]["lpn_replay"]["params"]
        for a in ABLATIONS:
            runs = []
            for s in seeds:
                runs.append(metrics.summary(one_run("lpn_replay", s, best, make_stream, task_free,
                                                    off=(a,))))
                bar.update(n_steps)
            agg = _aggregate(best, runs)
            agg["delta_acc"] = out["methods"]["lpn_replay"]["acc"]["mean"] - agg["acc"]["mean"]
            out["ablation"][a] = agg
    return out


def _aggregate(params, runs):
    agg = {"params": params, "runs": runs}
    for k in ("acc", "bwt", "forgetting", "plasticity"):
        agg[k] = metrics.mean_spread([r[k] for r in runs])
    return agg


def best_dense(res, names=DENSE):
    """The dense baseline with the highest mean ACC among ``names``."""
    return max(names, key=lambda k: res["methods"][k]["acc"]["mean"])


def curves(res):
    """Plot data: mean seen-task accuracy per learner and the ablation bars."""
    c = {"models": [], "acc": [], "acc_std": [], "forgetting": [], "plasticity": []}
    for m, agg in res["methods"].items():
        c["models"].append(m)
        c["acc"].append(agg["acc"]["mean"])
        c["acc_std"].append(agg["acc"]["std"])
        c["forgetting"].append(agg["forgetting"]["mean"])
        c["plasticity"].append(agg["plasticity"]["mean"])
        mats = np.array([r["matrix"] for r in agg["runs"]]).mean(0)
        c[f"{m}_seen_acc"] = [float(mats[i, : i + 1].mean()) for i in range(mats.shape[0])]
    c["ablation"] = list(res["ablation"])
    c["ablation_acc"] = [res["ablation"][a]["acc"]["mean"] for a in res["ablation"]]
    c["ablation_forgetting"] = [res["ablation"][a]["forgetting"]["mean"]
                                for a in res["ablation"]]
    return c


def details(res):
    """The flat ``details`` dict of a result: per learner and ablation, means and stds."""
    d = {"seeds": res["seeds"], "buffer": BUFFER, "replay_per_sample": REPLAY,
         "window": WINDOW, "grid": res["grid"]}
    for m, agg in res["methods"].items():
        d[f"{m}_params"] = agg["params"]
        for k in ("acc", "bwt", "forgetting", "plasticity"):
            d[f"{m}_{k}"] = agg[k]["mean"]
            d[f"{m}_{k}_std"] = agg[k]["std"]
        d[f"{m}_matrix_seed0"] = agg["runs"][0]["matrix"]
    for a, agg in res["ablation"].items():
        d[f"ablation_{a}_off_acc"] = agg["acc"]["mean"]
        d[f"ablation_{a}_off_acc_std"] = agg["acc"]["std"]
        d[f"ablation_{a}_off_forgetting"] = agg["forgetting"]["mean"]
        d[f"ablation_{a}_delta_acc"] = agg["delta_acc"]
    return d


def fmt(res, m):
    """``mean±std`` of learner ``m``'s ACC, for criterion strings."""
    a = res["methods"][m]["acc"]
    return f"{a['mean']:.3f}±{a['std']:.3f}"
