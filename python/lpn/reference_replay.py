"""The classification readout and the replay buffer policies of the NumPy reference.

``softmax_error`` is the output error of ``output_error="softmax"`` (docs/rule.md,
"Classification readout"), in the engine's float order (docs/rule-notes.md, "Readout"):
``math.exp`` and ``math.log`` are the C library's, as the engine's ``f64::exp``/``ln``.

``ReferenceReservoir`` is the buffer of ``replay_policy="reservoir"`` (Algorithm R) and
``"balanced"`` (class-balanced reservoir). The engine's ChaCha stream cannot be reproduced here,
so every random draw is asked of ``below(n)`` (an integer uniform in ``[0, n)``), in the order
the engine draws them; a test hands it the engine's draws.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from lpn.reference_float import F32

__all__ = ["ReferenceReservoir", "class_of", "softmax_error", "window_mask"]


def softmax_error(z: np.ndarray, t: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, float]:
    """``(e, L)``: ``e_j = t_j - p_j`` with ``p = softmax(z)`` over the involved outputs ``m``
    (0 elsewhere), and the cross-entropy ``L = -sum_m t_j log p_j`` (0 when none is
    involved)."""
    e = np.zeros(z.size, dtype=F32)
    idx = [int(j) for j in np.flatnonzero(m)]
    if not idx:
        return e, 0.0
    zmax = z[idx[0]]
    for j in idx[1:]:  # the first maximum, compared in float32
        if z[j] > zmax:
            zmax = z[j]
    d = [float(z[j]) - float(zmax) for j in idx]  # exact: two float32 in float64
    ex = [math.exp(v) for v in d]
    total = 0.0
    for v in ex:  # sequential float64, index order
        total += v
    ln_total = math.log(total)
    loss = 0.0
    for j, dj, v in zip(idx, d, ex):
        e[j] = F32(t[j]) - F32(v / total)
        loss += float(F32(t[j])) * (ln_total - dj)
    return e, loss


def window_mask(last: np.ndarray, t: np.ndarray, m: np.ndarray, n: int, window: int) -> np.ndarray:
    """Record new sample number ``n`` (1-based) in ``last`` (updated in place) and return the
    outputs it involves: ``m`` and a positive target among the last ``window`` new samples."""
    last[t > 0] = n
    recent = (last > 0) & (np.uint64(n) - last < np.uint64(window))
    return m & recent


def class_of(t: np.ndarray) -> int:
    """A target's class: its argmax, the lowest index on ties."""
    return int(np.argmax(t))


class ReferenceReservoir:
    """The replay buffer: ``x``, ``t``, ``mask`` lists of stored samples in slot order,
    ``seen`` samples offered, and per class ``class_seen`` (balanced policy)."""

    def __init__(self, capacity: int, n_out: int, policy: str = "reservoir"):
        if policy not in ("reservoir", "balanced"):
            raise ValueError(f'policy must be "reservoir" or "balanced", got {policy!r}')
        self.capacity, self.policy = int(capacity), policy
        self.x: list[np.ndarray] = []
        self.t: list[np.ndarray] = []
        self.mask: list[np.ndarray] = []
        self.seen = 0
        self.class_seen = np.zeros(n_out if policy == "balanced" else 0, dtype=np.uint64)

    def stored(self) -> np.ndarray:
        """Stored samples per class."""
        out = np.zeros(self.class_seen.size, dtype=np.int64)
        for t in self.t:
            out[class_of(t)] += 1
        return out

    def _write(self, slot: int | None, x: np.ndarray, t: np.ndarray, m: np.ndarray) -> None:
        item = (np.array(x, dtype=F32), np.array(t, dtype=F32), np.array(m, dtype=bool))
        if slot is None:
            self.x.append(item[0])
            self.t.append(item[1])
            self.mask.append(item[2])
        else:
            self.x[slot], self.t[slot], self.mask[slot] = item

    def offer(self, x: np.ndarray, t: np.ndarray, mask: np.ndarray,
              below: Callable[[int], int]) -> None:
        """Offer one sample (``mask``: all True for a sample learned without one)."""
        if self.capacity == 0:
            return
        if self.policy == "reservoir":
            if len(self.x) < self.capacity:
                self._write(None, x, t, mask)
            else:
                r = below(self.seen + 1)  # uniform in 0..=seen
                if r < self.capacity:
                    self._write(r, x, t, mask)
            self.seen += 1
            return
        c = class_of(t)
        self.class_seen[c] += 1
        self.seen += 1
        if len(self.x) < self.capacity:
            self._write(None, x, t, mask)
            return
        stored = self.stored()
        top = int(stored.max())
        if stored[c] != top:
            largest = np.flatnonzero(stored == top)
            victim = int(largest[below(largest.size)])
        elif below(int(self.class_seen[c])) < stored[c]:
            victim = c
        else:
            return
        slots = [s for s, ts in enumerate(self.t) if class_of(ts) == victim]
        self._write(slots[below(len(slots))], x, t, mask)
