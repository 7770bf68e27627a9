"""How LPN's rule settings for the label-free digit streams were chosen (docs/rule-notes.md,
"Routing" and "Cascade consolidation"): LPN+replay on the validation seed only (1000, never a
test seed), at grid point lr 0.5, budget 0.3, with the trails and the consolidation varied one
at a time around the settings the suite uses (``_digits_cl.TRAILS`` and ``_digits_cl.CASCADE``).

Prints ACC / forgetting per stream and the mean ACC; then, for LPN without replay on the
class-incremental stream, the accuracy on each task's test set when only that task's own two
classes compete (the collapse is one of calibration across tasks, not of features).

    python scripts/digits_rule_probe.py                 # the arms below
    python scripts/digits_rule_probe.py --cascade-grid  # the 8-point cascade grid instead
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
from threadpoolctl import threadpool_limits

from lpn import metrics
from lpn.experiments import _digits_cl as D
from lpn.experiments import class_incremental_digits, permuted_digits, task_free_digits

STREAMS = {
    "class_incremental": (class_incremental_digits.stream(False), False),
    "permuted": (permuted_digits.stream(False), False),
    "task_free": (task_free_digits.stream(False), True),
}
POINT = {"lr": 0.5, "budget": 0.3}
PLAIN_TRAILS = {"trail_scaled_step": True, "route_long": 0.0}
# (label, ablations off, config overrides)
ARMS = [
    ("trails as in the rule (g in the step, no routing)", (), PLAIN_TRAILS),
    ("trails: + route_long 0.9", (), {"trail_scaled_step": True}),
    ("trails: trail_scaled_step=False", (), {"route_long": 0.0}),
    ("trails: trail_scaled_step=False + route_long 0.9 (suite)", (), {}),
    ("trails off", ("trails",), {}),
    ("consolidation off", ("consolidation",), {}),
    ("auto-consolidation every 100 steps instead of the cascade", ("consolidation",),
     {"auto_consolidate_every": 100}),
]

# The cascade grid the suite's point (_digits_cl.CASCADE) was chosen from, by mean ACC.
CASCADE_GRID = [
    (f"cascade tau {tau:g}, c_max {c_max:g}, pull {pull:g}", (),
     {"cascade_tau": tau, "cascade_max": c_max, "pull": pull})
    for tau, c_max, pull in itertools.product((30.0, 300.0), (0.5, 0.9), (0.0, 0.1))
]


def main(arms: list) -> None:
    with threadpool_limits(limits=1):
        for label, off, rule in arms:
            cells, accs = [], []
            for name, (make_stream, task_free) in STREAMS.items():
                R = D.one_run("lpn_replay", D.VAL_OFFSET, POINT, make_stream, task_free,
                              off=off, rule=rule)
                s = metrics.summary(R)
                accs.append(s["acc"])
                cells.append(f"{name} {s['acc']:.3f}/{s['forgetting']:.3f}")
            print(f"{label:60s} " + "  ".join(cells) + f"  mean ACC {np.mean(accs):.3f}",
                  flush=True)
        if arms is CASCADE_GRID:
            return
        stream = STREAMS["class_incremental"][0](D.VAL_OFFSET)
        model = D.make("lpn", D.VAL_OFFSET, POINT)
        model.learn(stream["x"], stream["y"])
        for j, (xt, yt) in enumerate(stream["tests"]):
            z = model.predict(xt)
            own = np.unique(yt)
            within = float((own[z[:, own].argmax(1)] == yt).mean())
            print(f"lpn (no replay), class-incremental task {j} {own.tolist()}: accuracy "
                  f"{float((z.argmax(1) == yt).mean()):.3f}, within its own classes {within:.3f}")


if __name__ == "__main__":
    main(CASCADE_GRID if "--cascade-grid" in sys.argv[1:] else ARMS)
