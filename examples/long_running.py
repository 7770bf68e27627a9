"""A long-running learner: one thread learns from a stream and checkpoints; others predict.

    python examples/long_running.py [--steps 21000] [--dir ckpt]

The learner saves atomically every ``--every`` samples (newest 3 kept) from inside ``learn``.
Two reader threads call ``predict`` concurrently (compute runs with the GIL released). At the
end the example "crashes" the learner, resumes from the newest checkpoint and checks that the
resumed network continues exactly like an uninterrupted one. Needs numpy only.
"""

import argparse
import os
import re
import sys
import tempfile
import threading

import numpy as np

import lpn


def stream(seed, n_in, n_out):
    """An endless, seeded stream of (x, t) from a fixed random map."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)
    while True:
        x = rng.normal(size=(100, n_in)).astype(np.float32)
        yield x, np.tanh(x @ W.T)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=21000)
    ap.add_argument("--every", type=int, default=5000)
    ap.add_argument("--dir", default=None, help="checkpoint folder (default: a temporary one)")
    ap.add_argument("--threads", type=int, default=2, help="engine threads")
    args = ap.parse_args(argv)
    lpn.set_num_threads(args.threads)
    folder = args.dir or tempfile.mkdtemp(prefix="lpn-ckpt-")
    spec = lpn.LayerSpec(32, 8, radius=1.0)
    net = lpn.Network([spec], config=lpn.LearnConfig(lr=0.1), seed=0)
    net.checkpoint_every(args.every, folder, keep=3)

    stop = threading.Event()
    predictions = [0, 0]

    def reader(k):
        x = np.random.default_rng(k).normal(size=(16, 32))
        while not stop.is_set():
            y = net.predict(x)
            assert y.shape == (16, 8) and np.isfinite(y).all()
            predictions[k] += 1

    readers = [threading.Thread(target=reader, args=(k,)) for k in range(2)]
    for th in readers:
        th.start()
    data = stream(1, 32, 8)
    seen, losses = 0, []
    try:
        while seen < args.steps:
            x, t = next(data)
            losses.append(net.learn(x, t))
            seen += len(x)
    finally:
        stop.set()
        for th in readers:
            th.join()
    files = sorted(os.listdir(folder))
    print(f"learned {seen} samples; loss {losses[0]:.4f} -> {losses[-1]:.4f}; "
          f"{sum(predictions)} concurrent predict calls; checkpoints kept: {files}")

    # "Crash" now, resume from the newest checkpoint, and replay the samples learned since.
    resumed = lpn.Network.load_latest(folder)
    last = int(re.findall(r"\d+", files[-1])[0])   # the step the newest checkpoint holds
    replay_from = stream(1, 32, 8)
    done = 0
    while done < seen:
        x, t = next(replay_from)
        if done >= last:
            resumed.learn(x, t)
        done += len(x)
    exact = resumed.same_state(net) and seen > last
    print(f"resumed from step {last} and caught up: identical state {exact}")
    ok = exact and len(files) == min(3, seen // args.every) and losses[-1] < 0.5 * losses[0]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
