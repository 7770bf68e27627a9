"""A small learn-step bench that needs numpy only (used under emulation by
scripts/arm64-check.sh, and runnable anywhere).

    python benches/step.py [--steps 2000]

Prints microseconds per online step for a small network (one call per sample and one
batched call) and for a 1,024 -> 1,024 grid layer with fan-in 16; the median of three
interleaved repeats.
"""

import argparse
import platform
import statistics
import time

import numpy as np

import lpn


def _time(fn, repeats=3):
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=2000, help="steps for the small network")
    ap.add_argument("--grid-steps", type=int, default=200, help="steps for the grid layer")
    args = ap.parse_args()
    rng = np.random.default_rng(0)

    small = lpn.LayerSpec(64, 16, radius=1.0)
    xs = rng.normal(size=(args.steps, 64)).astype(np.float32)
    ts = rng.normal(size=(args.steps, 16)).astype(np.float32)
    net = lpn.Network([small], seed=0)

    def one_by_one():
        for k in range(args.steps):
            net.learn(xs[k], ts[k])

    def batched():
        net.learn(xs, ts)

    side = 32
    grid = lpn.LayerSpec(side * side, side * side, dims=2, radius=2.5 / side, fan_in=16)
    big = lpn.Network([grid], seed=0)
    xg = rng.normal(size=(args.grid_steps, side * side)).astype(np.float32)
    tg = rng.normal(size=(args.grid_steps, side * side)).astype(np.float32)

    def grid_steps():
        for k in range(args.grid_steps):
            big.learn(xg[k], tg[k])

    print(f"lpn {lpn.__version__} on {platform.machine()}, python {platform.python_version()}, "
          f"{lpn.get_num_threads()} threads")
    rows = [
        ("64 -> 16, one call per sample", _time(one_by_one) / args.steps),
        ("64 -> 16, one batched call", _time(batched) / args.steps),
        ("1024 -> 1024 fan-in 16, one call per step", _time(grid_steps) / args.grid_steps),
    ]
    for name, sec in rows:
        print(f"{name:<44}{1e6 * sec:>10.1f} µs/step")


if __name__ == "__main__":
    main()
