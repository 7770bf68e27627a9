"""The README's two tables for the label-free digit streams, from a results.json of `lpn run`.

    python scripts/cl_tables.py results/results.json
"""

from __future__ import annotations

import json
import sys

STREAMS = ("class_incremental_digits", "permuted_digits", "task_free_digits")
LEARNERS = ("lpn", "lpn_replay", "lpn_joint", "finetune", "ewc", "si", "er", "joint")
ABLATIONS = ("trails", "adaptive_budget", "consolidation", "replay_policy", "readout")


def main(path: str) -> None:
    with open(path) as f:
        res = json.load(f)
    by = {}
    for r in res if isinstance(res, list) else res.get("results", res.values()):
        if isinstance(r, dict) and r.get("name") in STREAMS:
            by[r["name"]] = r["details"]
    streams = [s for s in STREAMS if s in by]
    short = [s.replace("_digits", "") for s in streams]
    print("| learner | " + " | ".join(f"{s} ACC / forgetting / plasticity" for s in short) + " |")
    print("| --- |" + " --- |" * len(streams))
    for m in LEARNERS:
        cells = []
        for s in streams:
            d = by[s]
            cells.append(f"{d[f'{m}_acc']:.3f} ± {d[f'{m}_acc_std']:.3f} / "
                         f"{d[f'{m}_forgetting']:.3f} / {d[f'{m}_plasticity']:.3f}")
        print(f"| {m} | " + " | ".join(cells) + " |")
    print()
    print("| LPN+replay, mechanism off | " + " | ".join(
        f"{s} ACC / forgetting (Δ ACC = full − off)" for s in short) + " |")
    print("| --- |" + " --- |" * len(streams))
    print("| none (full) | " + " | ".join(
        f"{by[s]['lpn_replay_acc']:.3f} / {by[s]['lpn_replay_forgetting']:.3f}"
        for s in streams) + " |")
    for a in ABLATIONS:
        cells = []
        for s in streams:
            d = by[s]
            cells.append(f"{d[f'ablation_{a}_off_acc']:.3f} ± {d[f'ablation_{a}_off_acc_std']:.3f}"
                         f" / {d[f'ablation_{a}_off_forgetting']:.3f}"
                         f" ({d[f'ablation_{a}_delta_acc']:+.3f})")
        print(f"| {a} | " + " | ".join(cells) + " |")
    print()
    for s in streams:
        d = by[s]
        chosen = {m: d[f"{m}_params"] for m in LEARNERS if f"{m}_params" in d}
        print(f"{s}: chosen grid points {json.dumps(chosen)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/results.json")
