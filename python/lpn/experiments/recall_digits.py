"""recall_digits: a content-addressable memory on scikit-learn's digits.

Store N images, query each with a corrupted copy (30 % or 60 % of pixels occluded to 0, or
replaced by uniform noise), and count how often the stored original comes first: top-1
recall vs capacity N. The baseline is raw-cosine nearest neighbour on the same cues against
the same stored images. The memory's code with ``completion=0`` is an orthonormal projection,
which keeps cosines exactly (it equals the baseline by construction); what the learned layer
adds is the share ``completion`` of its self-associative completion in the query's code. That
share and the training passes (``repeats``) are chosen on a separate tuning set (other images,
other cues), the baseline has nothing to tune.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from ..memory import RecallMemory

NAME = "recall_digits"
METRIC = "top-1 recall of corrupted cues (mean over capacities and corruptions)"

CORRUPTIONS = (("occlude", 0.3), ("occlude", 0.6), ("noise", 0.3), ("noise", 0.6))


def corrupt(S, kind, frac, rng):
    q = S.copy()
    m = rng.random(S.shape) < frac
    q[m] = 0.0 if kind == "occlude" else rng.uniform(0.0, 16.0, int(m.sum()))
    # A cue that lost every pixel has no direction: keep one pixel of the original.
    dead = ~q.any(axis=1)
    q[dead, S[dead].argmax(axis=1)] = S[dead].max(axis=1)
    return q.astype(np.float32)


def raw_top1(Q, S):
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    Sn = S / np.linalg.norm(S, axis=1, keepdims=True)
    return float(np.mean(np.argmax(Qn @ Sn.T, axis=1) == np.arange(len(S))))


def lpn_top1(S, cues, seed, **opts):
    mem = RecallMemory(S.shape[1], code_dim=128, seed=seed, strength_weight=0.0, **opts)
    ids = mem.observe(S, now=0.0)
    out = []
    for Q in cues:
        got, _ = mem.recall(Q, k=1, now=0.0)
        out.append(float(np.mean(got[:, 0] == ids)))
    return out


def run(seed: int, quick: bool, bar) -> dict:
    rng = np.random.default_rng(seed)
    X = load_digits().data.astype(np.float32)
    X = X[rng.permutation(len(X))]
    tune, pool = X[:200], X[200:]
    capacities = [25, 100, 400] if quick else [25, 50, 100, 200, 400, 800, 1597]
    grid = [{}] if quick else [{"completion": c, "repeats": r}
                               for c in (0.25, 0.5, 1.0) for r in (3, 10)]
    bar.add_total(len(grid) + len(capacities))

    # Tuning: 100 other images, the same corruptions, other random cues.
    tune_cues = [corrupt(tune[:100], k, f, rng) for k, f in CORRUPTIONS]
    tune_scores = []
    for opts in grid:
        tune_scores.append(float(np.mean(lpn_top1(tune[:100], tune_cues, seed, **opts))))
        bar.update(1)
    best = grid[int(np.argmax(tune_scores))]

    curves = {"capacity": capacities}
    for k, f in CORRUPTIONS:
        curves[f"lpn_{k}_{int(f * 100)}"] = []
        curves[f"baseline_{k}_{int(f * 100)}"] = []
    for n in capacities:
        S = pool[:n]
        cues = [corrupt(S, k, f, rng) for k, f in CORRUPTIONS]
        lp = lpn_top1(S, cues, seed, **best)
        for (k, f), Q, v in zip(CORRUPTIONS, cues, lp):
            curves[f"lpn_{k}_{int(f * 100)}"].append(v)
            curves[f"baseline_{k}_{int(f * 100)}"].append(raw_top1(Q, S))
        bar.update(1)
    lpn_keys = [k for k in curves if k.startswith("lpn_")]
    lpn_mean = float(np.mean([curves[k] for k in lpn_keys]))
    base_mean = float(np.mean([curves["baseline" + k[3:]] for k in lpn_keys]))
    diff = {k[4:]: [round(a - b, 4) for a, b in zip(curves[k], curves["baseline" + k[3:]])]
            for k in lpn_keys}
    helps = sorted({f"{name}@{capacities[i]}" for name, d in diff.items()
                    for i, v in enumerate(d) if v > 0})
    hurts = sorted({f"{name}@{capacities[i]}" for name, d in diff.items()
                    for i, v in enumerate(d) if v < 0})
    return {
        "lpn": lpn_mean,
        "baseline": base_mean,
        "criterion": "learned-code top-1 recall >= raw-cosine top-1 recall, averaged over "
                     "capacities and corruptions",
        "passed": lpn_mean >= base_mean,
        "details": {
            "chosen": best or {"completion": 0.5, "repeats": 5},
            "tuning": [{"opts": g, "top1": s} for g, s in zip(grid, tune_scores)],
            "lpn_minus_baseline": diff,
            "helps_at": helps,
            "hurts_at": hurts,
        },
        "curves": curves,
    }
