"""Engine vs the NumPy reference of the same rule: online steps per second.

    python benches/compare.py [--side 32] [--steps 200]

Prints one table; both learn the same samples from the same state and end in the same state
(checked), so the comparison is like for like.
"""

import argparse
import time

import numpy as np

import lpn
from lpn.reference import ReferenceNetwork


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--side", type=int, default=32, help="grid side: side² inputs and outputs")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=0, help="0: all cores")
    args = ap.parse_args()
    lpn.set_num_threads(args.threads)
    n = args.side * args.side
    spec = lpn.LayerSpec(n, n, dims=2, radius=2.5 / args.side, fan_in=16)
    net = lpn.Network([spec], seed=0)
    ref = ReferenceNetwork.from_network(net)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.steps, n)).astype(np.float32)
    t = rng.normal(size=(args.steps, n)).astype(np.float32)

    t0 = time.perf_counter()
    for k in range(args.steps):
        ref.learn(x[k], t[k])
    t_ref = time.perf_counter() - t0

    t0 = time.perf_counter()
    for k in range(args.steps):
        net.learn(x[k], t[k])
    t_one = time.perf_counter() - t0

    net2 = lpn.Network([spec], seed=0)
    t0 = time.perf_counter()
    net2.learn(x, t)
    t_batch = time.perf_counter() - t0

    w = net.layers[0].synapses()["weight"]
    err = float(np.max(np.abs(w - ref.layers[0].synapses()["weight"])))
    syn = w.size
    print(f"layer {n} -> {n}, {syn} synapses, {args.steps} steps, "
          f"{lpn.get_num_threads()} threads; max |w_engine - w_reference| = {err:.2e}")
    print(f"{'implementation':<28}{'steps/s':>12}{'µs/step':>12}{'speed-up':>10}")
    for name, sec in (("numpy reference", t_ref), ("engine, one call per step", t_one),
                      ("engine, one batched call", t_batch)):
        print(f"{name:<28}{args.steps / sec:>12.0f}{1e6 * sec / args.steps:>12.1f}"
              f"{t_ref / sec:>10.1f}x")


if __name__ == "__main__":
    main()
