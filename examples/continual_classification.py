"""Continual classification: two tasks learned one after the other without forgetting.

    python examples/continual_classification.py [--seed 0]

Task A and task B are each a 4-class problem on Gaussian blobs. Their output units carry
different *tags* (A's outputs tag 0, B's tag 1) and each task trains with a *mask* over its
own outputs, so learning B cannot touch a single synapse of A. The control is the same layer
with both tasks answered on the same 4 outputs and no mask: it forgets A. Needs numpy only.
"""

import argparse
import sys

import numpy as np

import lpn


def blobs(rng, n, centers):
    """``n`` samples around each row of ``centers``; returns inputs and integer labels."""
    k, d = centers.shape
    y = rng.integers(0, k, size=n)
    return centers[y] + 1.0 * rng.normal(size=(n, d)), y


def accuracy(scores, y):
    return float((scores.argmax(axis=1) == y).mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=2000, help="training samples per task")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    d, k = 16, 4
    tasks = []
    for _ in range(2):
        centers = rng.normal(size=(k, d)) * 1.5
        tasks.append((blobs(rng, args.samples, centers), blobs(rng, 500, centers)))

    # 16 inputs readable by both tags; 8 outputs: 0-3 answer task A (tag 0), 4-7 task B (tag 1).
    affinity = np.array([[1.0, 1.0], [1.0, 1.0]])
    spec = lpn.LayerSpec(d, 2 * k, radius=1.0, in_tags=[0] * d, out_tags=[0] * k + [1] * k,
                         tag_affinity=affinity)
    net = lpn.Network([spec], config=lpn.LearnConfig(lr=0.05), seed=args.seed)
    masks = [np.arange(2 * k) < k, np.arange(2 * k) >= k]

    def one_hot(y, task):
        t = np.zeros((len(y), 2 * k), dtype=np.float32)
        t[np.arange(len(y)), y + task * k] = 1.0
        return t

    acc_a_after_a = None
    for task, ((x, y), _test) in enumerate(tasks):
        for _epoch in range(3):
            net.learn(x, one_hot(y, task), mask=masks[task])
        if task == 0:
            xa, ya = tasks[0][1]
            acc_a_after_a = accuracy(net.predict(xa)[:, :k], ya)
    (xa, ya), (xb, yb) = tasks[0][1], tasks[1][1]
    acc_a = accuracy(net.predict(xa)[:, :k], ya)
    acc_b = accuracy(net.predict(xb)[:, k:], yb)
    print(f"LPN: task A accuracy after A {acc_a_after_a:.3f}, after B {acc_a:.3f}; "
          f"task B accuracy {acc_b:.3f}")

    # Control: one set of 4 outputs shared by both tasks, no tags, no mask.
    control = lpn.Network([lpn.LayerSpec(d, k, radius=1.0)], config=lpn.LearnConfig(lr=0.05),
                          seed=args.seed)
    ctrl_after_a = None
    for task, ((x, y), _test) in enumerate(tasks):
        for _epoch in range(3):
            control.learn(x, one_hot(y, 0)[:, :k])
        if task == 0:
            ctrl_after_a = accuracy(control.predict(xa), ya)
    ctrl_a = accuracy(control.predict(xa), ya)
    print(f"control (shared outputs): task A accuracy after A {ctrl_after_a:.3f}, "
          f"after B {ctrl_a:.3f}")
    ok = acc_a == acc_a_after_a and acc_a > 0.8 and acc_b > 0.8
    print(f"kept A and learned B: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
