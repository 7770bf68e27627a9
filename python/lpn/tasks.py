"""Seeded data generators for the experiments (docs/experiments.md).

Every generator takes a ``numpy.random.Generator`` (or a seed) and nothing else random, so
an experiment is reproducible from its seed.  Geometry is the engine's own (``lpn._lpn``,
see docs/rule-notes.md): unit ``k`` of ``n`` in 1-D sits at ``(k + 0.5) / n``; on a 2-D grid of
shape ``(h, w)`` unit ``r * w + c`` sits at ``((r + 0.5) / h, (c + 0.5) / w)``; distances
are periodic per axis.  That is what lets a generator promise "the true support lies
inside the neighbourhood" (or, for the structural experiment, half outside it).
"""

from __future__ import annotations

import functools
from typing import Optional, Tuple

import numpy as np

from . import _lpn

__all__ = [
    "class_incremental_digits",
    "conflicting_tasks",
    "correlated_subspaces",
    "digits_split",
    "distances",
    "gaussian_inputs",
    "interleaved_tags",
    "joint_solution_residual",
    "kv_stream",
    "local_linear_map",
    "neighbourhood",
    "partitioned_maps",
    "permuted_digits",
    "positions",
    "rng_of",
    "split_digits",
    "tag_masks",
]


def rng_of(seed_or_rng) -> np.random.Generator:
    """A numpy Generator: `seed_or_rng` itself, or a new one seeded with it."""
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    return np.random.default_rng(seed_or_rng)


# --------------------------------------------------------------------------- geometry
# The engine's geometry (src/topology.rs), not a copy of it: positions, distances and the
# radius tolerance all come from `lpn._lpn`, so a task's support is exactly what a layer wires.


def positions(n: int, dims: int = 1, shape=None) -> np.ndarray:
    """Unit positions in ``[0, 1)^dims``, shape ``(n, dims)``, as the engine places them
    (row coordinate first on a 2-D grid)."""
    if dims not in (1, 2):
        raise ValueError(f"dims must be 1 or 2, got {dims}")
    grid: Optional[Tuple[int, int]] = None
    if shape is not None:
        if len(shape) != 2:  # the engine takes exactly (h, w)
            raise TypeError(f"shape must be (h, w), got {shape!r}")
        grid = (int(shape[0]), int(shape[1]))
    p = _lpn.unit_positions(n, dims, grid)
    return p[:, :1] if dims == 1 else p[:, ::-1].copy()


def distances(p_out: np.ndarray, p_in: np.ndarray, periodic: bool = True) -> np.ndarray:
    """Distance matrix ``(n_out, n_in)`` (small layers only: it is dense)."""
    return _lpn.distances(np.asarray(p_out, dtype=np.float64),
                          np.asarray(p_in, dtype=np.float64), periodic)


def neighbourhood(n_in, n_out, radius, dims=1, in_shape=None, out_shape=None, periodic=True,
                  in_tags=None, out_tags=None, offset=0.0) -> np.ndarray:
    """Boolean ``(n_out, n_in)``: which inputs each output may read (same-tag rule), with the
    engine's radius tolerance.

    ``offset`` shifts the centre of every output's disc along the first axis, which is how
    the structural-plasticity task puts the true support partly outside the wiring.
    """
    po = positions(n_out, dims, out_shape).copy()
    po[:, 0] = (po[:, 0] + offset) % 1.0
    d = distances(po, positions(n_in, dims, in_shape), periodic)
    ok = d <= _lpn.reach(radius)
    if in_tags is not None and out_tags is not None:
        ok &= np.asarray(out_tags)[:, None] == np.asarray(in_tags)[None, :]
    return ok


# ---------------------------------------------------------------- regression tasks
def local_linear_map(n_in, n_out, support, rng, scale=1.0) -> np.ndarray:
    """Random map ``W (n_out, n_in)`` non-zero only on ``support``.

    Row ``j`` gets N(0, scale² / |support_j|) entries, so with unit-variance inputs every
    target has variance ``scale²`` whatever the fan-in.
    """
    rng = rng_of(rng)
    support = np.asarray(support, dtype=bool)
    if support.shape != (n_out, n_in):
        raise ValueError(f"support must be ({n_out}, {n_in}), got {support.shape}")
    k = np.maximum(support.sum(1, keepdims=True), 1)
    W = rng.normal(0.0, 1.0, size=(n_out, n_in)) * scale / np.sqrt(k)
    return np.where(support, W, 0.0)


def gaussian_inputs(n, n_in, rng) -> np.ndarray:
    """`n` standard-normal input vectors of width `n_in`, float32."""
    return rng_of(rng).normal(0.0, 1.0, size=(n, n_in)).astype(np.float32)


# ----------------------------------------------------------------- tag partitions
def interleaved_tags(n: int, n_tags: int) -> np.ndarray:
    """Tag ``k mod n_tags``: every task's units are spread over the whole ring, so every
    output still finds same-tag inputs inside a small radius."""
    return (np.arange(n) % n_tags).astype(np.int64)


def tag_masks(tags, n_tags: int) -> list[np.ndarray]:
    """One boolean output mask per tag `0..n_tags-1`: `mask[k] = (tags == k)`."""
    tags = np.asarray(tags)
    return [tags == k for k in range(n_tags)]


def partitioned_maps(n_in, n_out, n_tasks, radius, rng, support_radius=None):
    """One local map per task, each living only on its own tag's inputs and outputs.

    Returns ``(in_tags, out_tags, maps)``; ``maps[k]`` is zero outside task ``k``'s rows and
    columns, and inside the same-tag neighbourhood, so a tag-partitioned layer can represent
    every task exactly with disjoint synapses.
    """
    rng = rng_of(rng)
    in_tags = interleaved_tags(n_in, n_tasks)
    out_tags = interleaved_tags(n_out, n_tasks)
    sup = neighbourhood(n_in, n_out, support_radius or radius, in_tags=in_tags,
                        out_tags=out_tags)
    maps = []
    for k in range(n_tasks):
        rows = out_tags == k
        maps.append(local_linear_map(n_in, n_out, sup & rows[:, None], rng))
    return in_tags, out_tags, maps


# --------------------------------------------------------------- conflicting tasks
def correlated_subspaces(n_in, dim, corr, rng):
    """Two ``dim``-dimensional input subspaces of R^n_in with all principal-angle cosines
    equal to ``corr``: ``U_B = corr * U_A + sqrt(1 - corr²) * V`` with ``V ⟂ U_A``.

    Bases are orthonormal and scaled by ``sqrt(n_in / dim)`` so inputs ``x = U z``,
    ``z ~ N(0, I)``, have unit variance per unit on average.
    """
    rng = rng_of(rng)
    if 2 * dim > n_in:
        raise ValueError("need 2*dim <= n_in for two distinct subspaces")
    Q, _ = np.linalg.qr(rng.normal(size=(n_in, 2 * dim)))
    UA, V = Q[:, :dim], Q[:, dim:]
    UB = corr * UA + np.sqrt(1.0 - corr * corr) * V
    s = np.sqrt(n_in / dim)
    return UA * s, UB * s


def conflicting_tasks(n_in, n_out, radius, rng, dim=4, corr=0.7, n_train=2000, n_test=500):
    """Tasks A and B on the same outputs, inputs in correlated subspaces, different maps.

    Both maps are local (support inside the neighbourhood).  Whether a single local map
    fits both tasks at once is checked by :func:`joint_solution_residual`; with
    ``2 * dim`` well below the fan-in it does (generically), so forgetting is a property of
    the learner, not of the problem.
    """
    rng = rng_of(rng)
    sup = neighbourhood(n_in, n_out, radius)
    UA, UB = correlated_subspaces(n_in, dim, corr, rng)
    WA = local_linear_map(n_in, n_out, sup, rng)
    WB = local_linear_map(n_in, n_out, sup, rng)
    tasks = {}
    for name, U, W in (("A", UA, WA), ("B", UB, WB)):
        Z = rng.normal(size=(n_train + n_test, dim))
        X = (Z @ U.T).astype(np.float32)
        T = (X @ W.T).astype(np.float32)
        tasks[name] = {
            "x_train": X[:n_train], "t_train": T[:n_train],
            "x_test": X[n_train:], "t_test": T[n_train:],
            "U": U, "W": W,
        }
    tasks["support"] = sup
    return tasks


def joint_solution_residual(tasks) -> float:
    """Relative MSE of the best single map with the layer's support on A and B together.

    Solved row by row by least squares on the test inputs; ~0 means a joint solution
    exists, so any forgetting is the learner's doing.
    """
    sup = tasks["support"]
    XA, TA = tasks["A"]["x_test"], tasks["A"]["t_test"]
    XB, TB = tasks["B"]["x_test"], tasks["B"]["t_test"]
    X = np.concatenate([XA, XB]).astype(np.float64)
    T = np.concatenate([TA, TB]).astype(np.float64)
    err = 0.0
    for j in range(sup.shape[0]):
        cols = np.where(sup[j])[0]
        w, *_ = np.linalg.lstsq(X[:, cols], T[:, j], rcond=None)
        err += float(((X[:, cols] @ w - T[:, j]) ** 2).mean())
    return err / sup.shape[0] / float(T.var())


# --------------------------------------------------------------- key -> value stream
def kv_stream(n_steps, n_pairs, n_key, n_values, rng, min_gap=0):
    """A stream of ``n_steps`` tokens holding ``n_pairs`` key→value facts among distractors.

    Keys are random ±1 patterns over ``n_key`` units (distinct with overwhelming
    probability); each fact's value is one of ``n_values`` classes.  Distractor tokens are
    random keys with no value: they take up room in a sliding window but are never queried.
    Facts sit at random positions in ``[0, n_steps - min_gap)``; all queries come after the
    stream, so the lag of a fact is ``n_steps - position``.
    """
    rng = rng_of(rng)
    if n_pairs > n_steps - min_gap:
        raise ValueError("more pairs than stream positions")
    keys = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(n_steps, n_key))
    pos = np.sort(rng.choice(n_steps - min_gap, size=n_pairs, replace=False))
    values = np.full(n_steps, -1, dtype=np.int64)
    values[pos] = rng.integers(n_values, size=n_pairs)
    return {
        "keys": keys,
        "values": values,
        "fact_positions": pos,
        "lags": n_steps - pos,
        "n_values": n_values,
    }


# ------------------------------------------------------------------ split digits
def split_digits(rng, n_tasks=5, test_fraction=0.3):
    """scikit-learn's bundled 8×8 digits, split into ``n_tasks`` tasks of 2 classes each.

    Pixels are scaled to ``[0, 1]``.  Each task's labels are 0/1 (first / second class of
    the pair); the train/test split is stratified and seeded.
    """
    from sklearn.datasets import load_digits

    rng = rng_of(rng)
    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    y = d.target
    classes = np.arange(10)
    if 10 % n_tasks:
        raise ValueError("n_tasks must divide 10")
    per = 10 // n_tasks
    tasks = []
    for k in range(n_tasks):
        cls = classes[k * per : (k + 1) * per]
        tr, te = [], []
        for c in cls:
            idx = np.where(y == c)[0]
            idx = rng.permutation(idx)
            n_te = round(test_fraction * idx.size)
            te.append(idx[:n_te])
            tr.append(idx[n_te:])
        tr = rng.permutation(np.concatenate(tr))
        te = np.concatenate(te)
        lab = {int(c): i for i, c in enumerate(cls)}
        tasks.append({
            "classes": cls.tolist(),
            "x_train": X[tr], "y_train": np.array([lab[int(c)] for c in y[tr]]),
            "x_test": X[te], "y_test": np.array([lab[int(c)] for c in y[te]]),
        })
    return tasks


# ------------------------------------------------- digits without task labels (§8)
@functools.lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    X.setflags(write=False)  # cached: callers index it (copies), never write it
    y = d.target.astype(np.int64)
    y.setflags(write=False)
    return X, y


def digits_split(rng, test_fraction=0.3):
    """scikit-learn's digits in ``[0, 1]``, one stratified seeded train/test split.

    Returns ``x_train, y_train, x_test, y_test`` with the original labels 0-9.
    """
    rng = rng_of(rng)
    X, y = _digits()
    tr, te = [], []
    for c in range(10):
        idx = rng.permutation(np.where(y == c)[0])
        n_te = round(test_fraction * idx.size)
        te.append(idx[:n_te])
        tr.append(idx[n_te:])
    tr = rng.permutation(np.concatenate(tr))
    te = np.concatenate(te)
    return X[tr], y[tr], X[te], y[te]


def class_incremental_digits(rng, n_tasks=5, fraction=1.0, blur=0.0):
    """The digits as a single-head class-incremental stream: task k holds classes
    ``2k, 2k+1``; labels stay 0-9 and no task id is given to the learner.

    ``fraction < 1`` keeps that share of each task's training samples (small forms).
    ``blur > 0`` makes the boundaries task-free: every training sample gets the sort key
    ``task + U(-blur, blur)`` and the stream is ordered by it, so neighbouring tasks overlap
    and no step marks a switch.  ``ends[i]`` is the stream position where task ``i``
    nominally ends (where the result matrix's row ``i`` is measured).

    Returns ``{"x", "y", "task", "ends", "tests": [(x_test, y_test) per task]}``.
    """
    rng = rng_of(rng)
    if 10 % n_tasks:
        raise ValueError("n_tasks must divide 10")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    per = 10 // n_tasks
    xtr, ytr, xte, yte = digits_split(rng)
    task_of = ytr // per
    keep = []
    for k in range(n_tasks):
        idx = np.where(task_of == k)[0]
        keep.append(idx[: max(per, round(fraction * idx.size))])
    order = np.concatenate(keep)
    key = task_of[order] + (rng.uniform(-blur, blur, size=order.size) if blur > 0 else 0.0)
    order = order[np.argsort(key, kind="stable")]
    sizes = [k.size for k in keep]
    return {
        "x": xtr[order], "y": ytr[order], "task": task_of[order],
        "ends": np.cumsum(sizes).tolist(),
        "tests": [(xte[yte // per == k], yte[yte // per == k]) for k in range(n_tasks)],
    }


def permuted_digits(rng, n_tasks=5, fraction=1.0):
    """Domain-incremental digits: task k applies a fixed pixel permutation (task 0 the
    identity) to all ten classes; one 10-way head, no task id.

    Returns the same dict as :func:`class_incremental_digits` plus ``perms``.
    """
    rng = rng_of(rng)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    xtr, ytr, xte, yte = digits_split(rng)
    n = max(10, round(fraction * ytr.size))
    perms = [np.arange(64)] + [rng.permutation(64) for _ in range(n_tasks - 1)]
    xs, ys, ts, tests = [], [], [], []
    for k, p in enumerate(perms):
        idx = rng.permutation(ytr.size)[:n]
        xs.append(xtr[idx][:, p])
        ys.append(ytr[idx])
        ts.append(np.full(n, k))
        tests.append((xte[:, p], yte))
    return {
        "x": np.concatenate(xs), "y": np.concatenate(ys), "task": np.concatenate(ts),
        "ends": [n * (k + 1) for k in range(n_tasks)], "tests": tests, "perms": perms,
    }
