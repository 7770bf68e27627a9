"""RecallMemory top-k scan at scale: recall latency over N stored items.

    python benches/memory_scan.py [--items 100000] [--dim 256] [--code-dim 128] [--k 10]

Fills a memory (observe learns every item once, on a narrow layer so filling is quick; the
scan's cost does not depend on the layer), then times `recall` for one query and for a batch,
interleaving repeats with a NumPy brute-force reference (matrix product + argpartition on the
same normalised codes), and prints medians. Same answers are checked, not assumed.
"""

import argparse
import statistics
import time

import numpy as np

import lpn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--code-dim", type=int, default=128)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=0, help="0: all cores")
    args = ap.parse_args()
    lpn.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.items, args.dim)).astype(np.float32)
    mem = lpn.RecallMemory(args.dim, code_dim=args.code_dim, seed=0, radius=0.02, repeats=1,
                           completion=0.0, strength_weight=0.0)
    t0 = time.perf_counter()
    for s in range(0, args.items, 10_000):
        mem.observe(X[s:s + 10_000], now=0.0)
    fill = time.perf_counter() - t0
    Q = X[rng.choice(args.items, args.batch)] + 0.1 * rng.standard_normal(
        (args.batch, args.dim)).astype(np.float32)
    # The reference: with completion=0 and code_dim >= dim a code is an orthonormal embedding,
    # which keeps cosines, so cosine on the raw vectors ranks the same.
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)

    def numpy_topk(q):
        qn = q / np.linalg.norm(q, axis=-1, keepdims=True)
        s = qn @ Xn.T
        part = np.argpartition(-s, args.k, axis=-1)[..., :args.k]
        return part

    one, batch, np_one, np_batch = [], [], [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        ids, _ = mem.recall(Q[0], k=args.k, now=0.0)
        one.append(time.perf_counter() - t)
        t = time.perf_counter()
        numpy_topk(Q[0])
        np_one.append(time.perf_counter() - t)
        t = time.perf_counter()
        bids, _ = mem.recall(Q, k=args.k, now=0.0)
        batch.append(time.perf_counter() - t)
        t = time.perf_counter()
        ref = numpy_topk(Q)
        np_batch.append(time.perf_counter() - t)
    agree = np.mean([len(set(a.tolist()) & set(b.tolist())) / args.k
                     for a, b in zip(bids, ref)])
    med = statistics.median
    print(f"items={args.items} dim={args.dim} code_dim={args.code_dim} k={args.k} "
          f"threads={lpn.get_num_threads()} (fill {fill:.1f} s)")
    print(f"recall, 1 query      : {1e3 * med(one):8.2f} ms   numpy brute force "
          f"{1e3 * med(np_one):8.2f} ms")
    print(f"recall, {args.batch} queries   : {1e3 * med(batch):8.2f} ms   numpy brute force "
          f"{1e3 * med(np_batch):8.2f} ms   ({1e3 * med(batch) / args.batch:.3f} ms/query)")
    if args.code_dim >= args.dim:
        print(f"top-{args.k} overlap with the numpy reference: {agree:.3f}")
    else:
        print("(code_dim < dim: codes are a random subspace, so the numpy cosine reference "
              "ranks differently; run with --code-dim >= --dim to check answers)")


if __name__ == "__main__":
    main()
