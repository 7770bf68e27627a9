"""Continual-learning metrics over a task-by-task result matrix.

``R[i, j]`` is the score on task ``j`` measured right after training on task ``i``
(``T`` tasks, ``R`` is ``T x T``).  Scores are either accuracies (higher is better) or
errors such as MSE (lower is better).  Every summary keeps one sign convention whatever
the kind of score, so tables can mix them:

* ``forgetting`` is positive when a task got worse after it was learned;
* ``bwt`` (backward transfer) is negative when a task got worse after it was learned.

Forgetting of task ``j`` follows Chaudhry et al. (2018): best score seen after ``j`` was
learned and before the last task, minus the final score (for errors: final minus best).
The last task has no "earlier" and is left out of the averages, as in the literature.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "acc",
    "as_matrix",
    "bwt",
    "forgetting",
    "mean_spread",
    "plasticity",
    "per_task_forgetting",
    "recall_vs_lag",
    "relative_reduction",
    "summary",
]


def as_matrix(R) -> np.ndarray:
    """`R` as a float64 square `T x T` result matrix (row: after task i, column: task j)."""
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] < 1:
        raise ValueError(f"expected a square T x T result matrix, got shape {R.shape}")
    return R


def acc(R) -> float:
    """Average final score over all tasks (ACC for accuracies, mean final error for MSE)."""
    R = as_matrix(R)
    return float(R[-1].mean())


def bwt(R, higher_is_better: bool = True) -> float:
    """Backward transfer: mean change of each earlier task from just-learned to final.

    Negative means the tasks got worse, for accuracies and for errors alike.
    """
    R = as_matrix(R)
    T = R.shape[0]
    if T < 2:
        return 0.0
    diag = np.diag(R)[:-1]
    final = R[-1, :-1]
    delta = final - diag if higher_is_better else diag - final
    return float(delta.mean())


def per_task_forgetting(R, higher_is_better: bool = True) -> np.ndarray:
    """Forgetting of each task except the last (positive = forgot)."""
    R = as_matrix(R)
    T = R.shape[0]
    out = np.zeros(max(T - 1, 0))
    for j in range(T - 1):
        # Only rows after j was trained count as "earlier": before that the task was not
        # learned yet and its (poor) score says nothing about what could be forgotten.
        earlier = R[j : T - 1, j]
        if higher_is_better:
            out[j] = earlier.max() - R[-1, j]
        else:
            out[j] = R[-1, j] - earlier.min()
    return out


def forgetting(R, higher_is_better: bool = True) -> float:
    """Mean forgetting over all tasks but the last (positive = forgot)."""
    f = per_task_forgetting(R, higher_is_better)
    return float(f.mean()) if f.size else 0.0


def plasticity(R) -> float:
    """Mean score on each task right after learning it (the diagonal of ``R``).

    The "learning accuracy" of the continual-learning literature: a method that keeps old
    tasks by refusing to learn new ones scores low here even when its forgetting is zero.
    """
    R = as_matrix(R)
    return float(np.diag(R).mean())


def mean_spread(values) -> dict:
    """Mean, sample standard deviation, min and max of per-seed numbers (NaN-free input)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("mean_spread needs at least one value")
    if not np.all(np.isfinite(v)):
        raise ValueError("mean_spread got a non-finite value")
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "min": float(v.min()),
        "max": float(v.max()),
        "n": int(v.size),
    }


def summary(R, higher_is_better: bool = True) -> dict:
    """ACC, BWT, forgetting, plasticity and the matrix itself, as plain Python numbers."""
    R = as_matrix(R)
    return {
        "acc": acc(R),
        "plasticity": plasticity(R),
        "bwt": bwt(R, higher_is_better),
        "forgetting": forgetting(R, higher_is_better),
        "per_task_forgetting": per_task_forgetting(R, higher_is_better).tolist(),
        "matrix": R.tolist(),
    }


def relative_reduction(control: float, treated: float) -> float:
    """Fraction by which ``treated`` is below ``control`` (0.4 = 40 % lower).

    A control that did not forget at all leaves nothing to reduce; then the answer is 1
    if the treatment did not forget either and ``-inf`` if it did, so a criterion of the
    form "reduction >= x" is never passed by accident.
    """
    control = float(control)
    treated = float(treated)
    if control <= 0.0:
        return 1.0 if treated <= 0.0 else float("-inf")
    return 1.0 - treated / control


def recall_vs_lag(lags, correct, edges) -> dict:
    """Mean recall in lag bins ``[edges[k], edges[k+1])``.

    ``lags`` and ``correct`` are per-query arrays; empty bins report NaN recall and a zero
    count, so the caller can tell "no queries" from "all wrong".
    """
    lags = np.asarray(lags, dtype=np.float64).ravel()
    correct = np.asarray(correct, dtype=np.float64).ravel()
    if lags.shape != correct.shape:
        raise ValueError(f"lags and correct differ in length: {lags.shape} vs {correct.shape}")
    edges = np.asarray(edges, dtype=np.float64).ravel()
    if edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("edges must be at least two strictly increasing numbers")
    idx = np.searchsorted(edges, lags, side="right") - 1
    nb = edges.size - 1
    recall = np.full(nb, np.nan)
    count = np.zeros(nb, dtype=np.int64)
    for k in range(nb):
        sel = idx == k
        count[k] = int(sel.sum())
        if count[k]:
            recall[k] = correct[sel].mean()
    return {
        "edges": edges.tolist(),
        "centers": (0.5 * (edges[:-1] + edges[1:])).tolist(),
        "recall": recall.tolist(),
        "count": count.tolist(),
    }
