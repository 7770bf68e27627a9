"""Float-order helpers of the NumPy reference (``lpn.reference``).

The rule in ``reference_rule`` reads as DESIGN.md §3; these helpers make its arithmetic agree
with the engine bit for bit: float32 state, float64 where the engine widens, and every sum
taken in the engine's order (row sums slot by slot in storage order, reductions first to
last). Nothing here is part of the rule itself.
"""

from __future__ import annotations

import math

import numpy as np

F32 = np.float32


def seq_sum64(values: np.ndarray, square: bool = False) -> float:
    """Sequential float64 sum of float32 values (or of their squares), first to last.

    Each value is widened to float64 before it is squared, as the engine does. ``np.cumsum``
    is a strict left-to-right accumulation (unlike ``np.sum``, which is pairwise), so this
    reproduces a plain ``for`` loop.
    """
    v = np.asarray(values, dtype=F32).astype(np.float64).ravel()
    if v.size == 0:
        return 0.0
    if square:
        v = v * v
    return float(np.cumsum(v)[-1])


def phi(activation: str, z: np.ndarray) -> np.ndarray:
    if activation == "linear":
        return z.copy()
    # tanh and sigmoid are evaluated in float64 and rounded once to float32, like the engine:
    # float32 libm kernels differ in the last ulp between numpy and Rust, and near saturation
    # that ulp decides whether φ' is exactly 0 (no candidates) or not (a full trail deposit).
    if activation == "tanh":
        return np.tanh(z.astype(np.float64)).astype(F32)
    if activation == "relu":
        return np.maximum(z, F32(0))
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-z.astype(np.float64)))).astype(F32)


def dphi(activation: str, z: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Written in terms of y like src/activation.rs, so both round the same way.
    if activation == "linear":
        return np.ones_like(z)
    if activation == "tanh":
        return F32(1) - y * y
    if activation == "relu":
        return (z > 0).astype(F32)
    return y * (F32(1) - y)


def sigmoid64(u: float) -> float:
    # 1 / (1 + exp(-u)) as the engine writes it; math.exp raises instead of returning inf.
    if -u > 700.0:
        return 0.0
    return 1.0 / (1.0 + math.exp(-u))


def row_sum(per_synapse: np.ndarray, post: np.ndarray, slot: np.ndarray, n_out: int,
            width: int) -> np.ndarray:
    """Float32 sum of each row's terms, added one at a time in storage order.

    Rows are laid side by side (zero padded) and accumulated column by column, which is a
    sequential loop per row done for all rows at once; padding adds +0 and changes nothing.
    """
    table = np.zeros((n_out, width), dtype=F32)
    table[post, slot] = per_synapse
    acc = np.zeros(n_out, dtype=F32)
    for col in range(width):
        acc += table[:, col]
    return acc


def top_in_rows(pre: np.ndarray, post: np.ndarray, row_start: np.ndarray, slot: np.ndarray,
                priority: np.ndarray, cand: np.ndarray, quota: np.ndarray) -> np.ndarray:
    """The ``quota[j]`` candidates of highest priority in each row ``j``; ties go to the lower
    input index (the engine's selection order)."""
    # Within each row: candidates first, then priority descending, then lower input index.
    # lexsort's last key is the primary one; negating a float32 is exact.
    order = np.lexsort((pre, -priority, ~cand, post))
    rank = np.empty_like(slot)
    rank[order] = np.arange(order.size) - row_start[post[order]]
    return cand & (rank < quota[post])
