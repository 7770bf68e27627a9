"""A readout variant that was measured and not adopted (docs/rule-notes.md, "Readout").

With the windowed softmax error only the classes of the window compete, and the softmax is blind
to a shift common to them, so the newest classes' logits can grow on every input (on the
class-incremental validation stream, after the last task, outputs 8 and 9 average +2 to +3 on
the images of every class, while each old task's own two logits stay well ordered).  The probe:
each output keeps a running mean of its own logit over the new samples in which it is involved
(rate ``ALPHA``), and prediction subtracts it.  Validation seed only, LPN with and without
replay, ACC / forgetting for plain and centred.

    python scripts/readout_centring_probe.py [ALPHA]     # default 0.02
"""

from __future__ import annotations

import sys
from collections import deque

import numpy as np
from threadpoolctl import threadpool_limits

from lpn import metrics
from lpn.experiments import _digits_cl as D
from lpn.experiments import class_incremental_digits, permuted_digits, task_free_digits

ALPHA = float(sys.argv[1]) if len(sys.argv) > 1 else 0.02


class Centred:
    """An LPN learner whose prediction subtracts each output's running mean logit."""

    def __init__(self, inner, alpha):
        self.m, self.alpha = inner, alpha
        self.mu = np.zeros(10)
        self.win = deque()

    def predict(self, X):
        return self.m.predict(X) - self.mu
    def learn(self, X, Y):
        for x, y in zip(X, Y):
            z = np.asarray(self.m.net.predict(x[None]))[0]
            self.win.append(int(y))
            if len(self.win) > D.WINDOW:
                self.win.popleft()
            inv = np.zeros(10, bool)
            inv[list(set(self.win))] = True
            self.mu[inv] += self.alpha * (z[inv] - self.mu[inv])
            self.m.learn(x[None], np.array([y]))


STREAMS = (("class_incremental", class_incremental_digits, False),
           ("task_free", task_free_digits, True), ("permuted", permuted_digits, False))
LEARNERS = (("lpn", {"lr": 0.5, "budget": 1.0}), ("lpn_replay", {"lr": 0.5, "budget": 0.3}))

if __name__ == "__main__":
    seed = D.VAL_OFFSET
    with threadpool_limits(1):
        for name, mod, tf in STREAMS:
            for method, params in LEARNERS:
                stream = mod.stream(False)
                R0 = D.run_stream(D.make(method, seed, params), stream(seed), tf)
                R1 = D.run_stream(Centred(D.make(method, seed, params), ALPHA), stream(seed), tf)
                s0, s1 = metrics.summary(R0), metrics.summary(R1)
                print(f"{name:18s} {method:10s} plain {s0['acc']:.3f}/{s0['forgetting']:.3f}"
                      f"  centred {s1['acc']:.3f}/{s1['forgetting']:.3f}", flush=True)
