"""8. split_digits: scikit-learn's 8x8 digits as 5 tasks of 2 classes, learned in sequence.

Task-incremental protocol: the task identity is known, so every model answers with its own
task's two outputs (a mask for LPN, the same output mask for the dense baselines, i.e. a
multi-head MLP).  LPN: 64 pixels on an 8x8 grid -> 320 hidden tanh units on a 16x20 grid
with local 2-D receptive fields, hidden units tagged by task in interleaved columns (every
task covers the whole image), pixels carry a shared tag every task may read; 10 outputs,
two per task, each reading only its own task's hidden units.
"""

from __future__ import annotations

import numpy as np

import lpn

from .. import metrics, tasks
from ._common import learn_config, learn_in_chunks, mlp

NAME = "split_digits"
METRIC = "ACC (task-incremental, mean final accuracy)"

N_TASKS = 5
HIDDEN_SHAPE = (16, 20)


def build_lpn(seed, radius=0.3, lr=0.2, budget=0.3):
    """The task-partitioned two-layer LPN used on split digits: one tag per task on the
    hidden and output units, pixels readable by every task."""
    h, w = HIDDEN_SHAPE
    n_h = h * w
    shared = N_TASKS  # the pixels' tag, readable by every task's hidden units
    hidden_tags = np.array([(k % w) % N_TASKS for k in range(n_h)])
    aff = np.zeros((N_TASKS + 1, N_TASKS + 1))
    aff[:N_TASKS, :N_TASKS] = np.eye(N_TASKS)
    aff[shared, :] = 1.0
    out_tags = np.repeat(np.arange(N_TASKS), 2)
    l1 = lpn.LayerSpec(64, n_h, dims=2, radius=radius, in_shape=(8, 8), out_shape=(h, w),
                       in_tags=[shared] * 64, out_tags=hidden_tags.tolist(),
                       tag_affinity=aff.tolist(), activation="tanh")
    # radius 1.0 exceeds every distance on the unit torus: each output reads all hidden
    # units that its tag allows, i.e. exactly its own task's.
    l2 = lpn.LayerSpec(n_h, 2 * N_TASKS, dims=2, radius=1.0, in_shape=(h, w),
                       out_shape=(2, N_TASKS), in_tags=hidden_tags.tolist(),
                       out_tags=out_tags.tolist())
    cfg = learn_config(lr=lr, budget=budget)
    return lpn.Network([l1, l2], config=cfg, seed=seed), out_tags


def _targets(task, i):
    T = np.zeros((len(task["y_train"]), 2 * N_TASKS), dtype=np.float32)
    T[np.arange(len(T)), 2 * i + task["y_train"]] = 1.0
    return T


def _sequence(model, tk, masks, bar, epochs, ewc=False):
    R = np.zeros((N_TASKS, N_TASKS))
    for i, task in enumerate(tk):
        T = _targets(task, i)
        for _ in range(epochs):
            learn_in_chunks(model, task["x_train"], T, bar, 100, mask=masks[i])
        if ewc:
            model.end_task(task["x_train"], T, mask=masks[i])
        for j, u in enumerate(tk):
            y = np.asarray(model.predict(u["x_test"]))[:, 2 * j : 2 * j + 2].argmax(1)
            R[i, j] = float((y == u["y_test"]).mean())
    return R


def run(seed: int, quick: bool, bar) -> dict:
    """Run the experiment (see the module docstring); `bar` receives progress ticks.

    Returns `lpn`, `baseline`, `criterion`, `passed`, `details` and `curves`."""
    rng = np.random.default_rng(seed)
    tk = tasks.split_digits(rng, n_tasks=N_TASKS)
    # --quick keeps the whole (small) data set: with fewer samples the comparison would be
    # about sample efficiency, not forgetting, and the full run takes seconds anyway.
    epochs = 1
    n_train = sum(len(t["y_train"]) for t in tk) * epochs
    bar.add_total(4 * n_train)
    masks = [np.repeat(np.arange(N_TASKS), 2) == i for i in range(N_TASKS)]
    net, _ = build_lpn(seed)
    R = {"lpn": _sequence(net, tk, masks, bar, epochs)}
    R["mlp"] = _sequence(mlp(64, 10, seed, lr=0.05), tk, masks, bar, epochs)
    R["ewc_mlp"] = _sequence(mlp(64, 10, seed, lr=0.05, ewc_lambda=100.0), tk, masks, bar,
                             epochs, ewc=True)
    R["replay_mlp"] = _sequence(mlp(64, 10, seed, lr=0.05, replay_capacity=100, replay=1), tk,
                                masks, bar, epochs)
    S = {k: metrics.summary(v) for k, v in R.items()}
    best_dense = max(S[k]["acc"] for k in ("mlp", "ewc_mlp", "replay_mlp"))
    passed = S["lpn"]["forgetting"] <= 0.01 and S["lpn"]["acc"] >= best_dense - 0.05
    details = {"epochs": epochs, "train_samples": n_train, "best_dense_acc": best_dense}
    for k, s in S.items():
        details[f"{k}_acc"] = s["acc"]
        details[f"{k}_bwt"] = s["bwt"]
        details[f"{k}_forgetting"] = s["forgetting"]
        details[f"{k}_matrix"] = s["matrix"]
    return {
        "lpn": S["lpn"]["acc"],
        "baseline": S["mlp"]["acc"],
        "criterion": "LPN forgetting <= 0.01 (tags isolate tasks) and LPN ACC within 5 points "
                     "of the best dense baseline (MLP, EWC, replay)",
        "passed": bool(passed),
        "details": details,
        "curves": {
            "models": list(R),
            "acc": [S[k]["acc"] for k in R],
            "bwt": [S[k]["bwt"] for k in R],
            "forgetting": [S[k]["forgetting"] for k in R],
            # mean accuracy over the tasks seen so far, after each task
            **{f"{k}_seen_acc": [float(np.mean(v[i, : i + 1])) for i in range(N_TASKS)]
               for k, v in R.items()},
        },
    }
