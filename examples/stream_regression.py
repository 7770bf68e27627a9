"""Stream regression: learn a local linear map online, one sample at a time, while it drifts.

    python examples/stream_regression.py [--steps 6000] [--seed 0]

Every sample is seen once (test-then-train: ``learn`` returns the loss *before* its update).
Halfway through, the map changes; the loss jumps, the adaptive budget grows to relearn, then
shrinks again. Needs numpy only. Exits non-zero if the learner does not track the stream.
"""

import argparse
import sys

import numpy as np

import lpn


def local_map(rng, n, width=3):
    """A random linear map where output j reads only inputs j-width..j+width (on a ring)."""
    W = np.zeros((n, n))
    for j in range(n):
        for d in range(-width, width + 1):
            W[j, (j + d) % n] = rng.normal() / np.sqrt(2 * width + 1)
    return W


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n = 64
    rng = np.random.default_rng(args.seed)
    maps = [local_map(rng, n), local_map(rng, n)]
    # radius 0.06 on a ring of 64 units: each output reads its 9 nearest inputs, enough for
    # the 7-wide support of the map.
    spec = lpn.LayerSpec(n, n, dims=1, radius=0.06)
    net = lpn.Network([spec], config=lpn.LearnConfig(lr=0.5, budget=0.3), seed=args.seed)
    half = args.steps // 2
    window, losses, report = 500, [], []
    for step in range(args.steps):
        W = maps[0] if step < half else maps[1]
        x = rng.normal(size=n)
        losses.append(net.learn(x, W @ x))          # one online step
        if (step + 1) % window == 0:
            budget = net.stats()["layers"][0]["budget"]
            mse = float(np.mean(losses[-window:]))
            report.append(mse)
            print(f"step {step + 1:6d}  mean loss {mse:9.5f}  budget {budget:.3f}"
                  + ("   <- the map changed" if step + 1 == half + window else ""))
    first, before_drift, last = report[0], report[half // window - 1], report[-1]
    ok = before_drift < 0.1 * first and last < 0.1 * first
    print(f"tracked the stream: {ok} (first window {first:.4f}, before drift "
          f"{before_drift:.4f}, last window {last:.4f})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
