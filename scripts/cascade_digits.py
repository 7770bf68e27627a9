"""Cascade consolidation on the three digits streams (docs/rule-notes.md, "Cascade
consolidation"): lpn_replay (and, task-free, lpn without replay) with its consolidation as
configured (auto-consolidation), with consolidation off, and with the cascade instead.

Protocol of lpn.experiments._digits_cl: LPN's grid and then ``CASCADE_GRID`` on the validation
seed (1000), the chosen points on seeds 0, 1, 2; mean ± std.  About 5 minutes on 2 cores.

    python scripts/cascade_digits.py
"""

from __future__ import annotations

import json

import numpy as np
from threadpoolctl import threadpool_limits

from lpn import metrics
from lpn.experiments import _digits_cl as D
from lpn.experiments import class_incremental_digits, permuted_digits, task_free_digits

STREAMS = {
    "task_free_digits": (task_free_digits.stream(False), True),
    "class_incremental_digits": (class_incremental_digits.stream(False), False),
    "permuted_digits": (permuted_digits.stream(False), False),
}
SEEDS = (0, 1, 2)


def summary(name, method, seed, params, **kw):
    make_stream, task_free = STREAMS[name]
    return metrics.summary(D.one_run(method, seed, params, make_stream, task_free, **kw))


def main():
    out = {}
    with threadpool_limits(limits=1):
        for name in STREAMS:
            lpn_scores = [summary(name, "lpn_replay", D.VAL_OFFSET, p)["acc"]
                          for p in D.GRIDS["lpn_replay"]]
            best = D.GRIDS["lpn_replay"][int(np.argmax(lpn_scores))]
            c_scores = [summary(name, "lpn_replay", D.VAL_OFFSET, best, cascade=c)["acc"]
                        for c in D.CASCADE_GRID]
            chosen = D.CASCADE_GRID[int(np.argmax(c_scores))]
            print(f"{name}: lpn_replay {best}; cascade {chosen} "
                  f"(validation ACC {max(c_scores):.3f})", flush=True)
            arms = {"as configured": {}, "consolidation off": {"off": ("consolidation",)},
                    "cascade": {"cascade": chosen}}
            methods = ("lpn_replay", "lpn") if name == "task_free_digits" else ("lpn_replay",)
            res = {"params": best, "cascade": chosen, "cascade_val_acc": c_scores}
            for m in methods:
                for arm, kw in arms.items():
                    runs = [summary(name, m, s, best, **kw) for s in SEEDS]
                    agg = {k: metrics.mean_spread([r[k] for r in runs])
                           for k in ("acc", "forgetting", "plasticity")}
                    res[f"{m} / {arm}"] = agg
                    print(f"  {m:10s} {arm:17s} " + "  ".join(
                        f"{k} {v['mean']:.3f}±{v['std']:.3f}" for k, v in agg.items()),
                        flush=True)
            out[name] = res
    print(json.dumps(out, default=float))


if __name__ == "__main__":
    main()
