"""How fast the engine is, against anchors measured in the same run (the table of issue 10).

    python benches/anchors.py [--quick] [--reps 7]

Every row is a ratio against something measured here and now, so the numbers mean the same on
any machine: a dense online-SGD loop with the same number of weights (torch when it is
installed — an optional bench dependency — else a NumPy loop, and the output says which), river's
``LinearRegression.learn_one`` (optional), the NumPy reference of the rule, the machine's memory
bandwidth, one thread against two, and resident bytes per synapse. Timings are medians over
``--reps`` interleaved repeats (anchor and engine alternate, so a noisy neighbour hits both);
ratios are medians of the per-repeat ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

import lpn

try:  # optional anchors
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None
try:
    from river import linear_model as river_lm
except ImportError:  # pragma: no cover
    river_lm = None

F32 = np.float32
ROWS: List[Tuple[str, str, str, str]] = []  # (what, measured, ratio, goal)


def row(what: str, measured: str, ratio: str, goal: str) -> None:
    ROWS.append((what, measured, ratio, goal))
    print(f"  {what}: {measured} -> {ratio} (goal {goal})", flush=True)


def grid(side: int, fan_in: int = 16) -> lpn.LayerSpec:
    """side² inputs → side² outputs on a periodic 2-D grid, fan-in 16."""
    return lpn.LayerSpec(side * side, side * side, dims=2, radius=2.5 / side, fan_in=fan_in)


def timed(f: Callable[[], None], n: int) -> float:
    """Seconds per call of ``f`` over ``n`` calls."""
    t0 = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t0) / n


def interleave(fns: Dict[str, Tuple[Callable[[], None], int]], reps: int) -> Dict[str, List[float]]:
    """Per-call seconds of each function, ``reps`` times, alternating (order rotates)."""
    names = list(fns)
    out: Dict[str, List[float]] = {k: [] for k in names}
    for r in range(reps):
        for k in names[r % len(names):] + names[: r % len(names)]:
            f, n = fns[k]
            out[k].append(timed(f, n))
    return out


def med(v: List[float]) -> float:
    return statistics.median(v)


def ratio(num: List[float], den: List[float]) -> float:
    """Median of per-repeat ratios num/den."""
    return med([a / b for a, b in zip(num, den)])


def us(s: float) -> str:
    return f"{s * 1e6:.1f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms"


def speed(r: float) -> str:
    """r = anchor time / lpn time."""
    return f"lpn {r:.2f}x faster" if r >= 1 else f"lpn {1 / r:.2f}x slower"


# ---- anchors ----------------------------------------------------------------------------------


def dense_sgd(m: int, rng: np.random.Generator) -> Tuple[str, Callable[[np.ndarray, np.ndarray], None]]:
    """One online SGD step of a dense m×m linear layer (with bias) on a squared error."""
    lr = 0.01
    if torch is not None:
        lin = torch.nn.Linear(m, m)
        opt = torch.optim.SGD(lin.parameters(), lr=lr)

        def step_t(x: np.ndarray, t: np.ndarray) -> None:
            xt, tt = torch.from_numpy(x), torch.from_numpy(t)
            opt.zero_grad(set_to_none=True)
            loss = ((lin(xt) - tt) ** 2).mean()
            loss.backward()
            opt.step()

        return "torch CPU", step_t
    w = rng.normal(0.0, 0.01, size=(m, m)).astype(F32)
    b = np.zeros(m, dtype=F32)

    def step_np(x: np.ndarray, t: np.ndarray) -> None:
        e = w @ x + b - t
        e *= F32(2 * lr / m)
        np.subtract(w, np.outer(e, x), out=w)  # in place: no new weight matrix per step
        b[...] -= e

    return "NumPy dense SGD (torch not installed)", step_np


def numpy_sgd(m: int, rng: np.random.Generator) -> Callable[[np.ndarray, np.ndarray], None]:
    saved = globals()["torch"]
    globals()["torch"] = None
    try:
        return dense_sgd(m, rng)[1]
    finally:
        globals()["torch"] = saved


def bandwidth(mb: int = 256) -> float:
    """Bytes/s of the best of: copy (read + write counted, STREAM convention) and a read-only
    reduction, on one and on two threads (NumPy releases the GIL in both)."""
    n = mb * (1 << 20) // 4
    a = np.ones(n, dtype=F32)
    b = np.zeros(n, dtype=F32)
    best = 0.0
    with ThreadPoolExecutor(2) as pool:
        for _ in range(3):
            for parts in (1, 2):
                cuts = np.linspace(0, n, parts + 1).astype(int)
                sl = [slice(cuts[i], cuts[i + 1]) for i in range(parts)]
                t0 = time.perf_counter()
                list(pool.map(lambda s: np.copyto(b[s], a[s]), sl))
                best = max(best, 2 * a.nbytes / (time.perf_counter() - t0))
                t0 = time.perf_counter()
                list(pool.map(lambda s: np.add.reduce(a[s]), sl))
                best = max(best, a.nbytes / (time.perf_counter() - t0))
    return best


# ---- rows -------------------------------------------------------------------------------------


def learn_loop(net: lpn.Network, x: np.ndarray, t: np.ndarray) -> Callable[[], None]:
    k = [0]

    def f() -> None:
        i = k[0] % x.shape[0]
        net.learn(x[i], t[i])
        k[0] += 1

    return f


def step_vs_dense(side: int, m: int, reps: int, steps: int, rng: np.random.Generator) -> None:
    n = side * side
    net = lpn.Network([grid(side)], seed=0)
    syn = net.stats()["layers"][0]["synapses"]
    x = rng.normal(size=(64, n)).astype(F32)
    t = rng.normal(size=(64, n)).astype(F32)
    xd = rng.normal(size=(64, m)).astype(F32)
    td = rng.normal(size=(64, m)).astype(F32)
    name, dense = dense_sgd(m, rng)
    npd = numpy_sgd(m, rng)
    kd = [0]

    def d(fn: Callable[[np.ndarray, np.ndarray], None]) -> Callable[[], None]:
        def f() -> None:
            i = kd[0] % 64
            fn(xd[i], td[i])
            kd[0] += 1

        return f

    fns = {"lpn": (learn_loop(net, x, t), steps), "dense": (d(dense), steps)}
    if torch is not None:
        fns["numpy"] = (d(npd), steps)
    r = interleave(fns, reps)
    row(f"online learn step, {syn} synapses ({n}->{n}, fan_in 16) vs {name} {m}x{m}",
        f"lpn {us(med(r['lpn']))} vs {us(med(r['dense']))}", speed(ratio(r["dense"], r["lpn"])),
        "lpn >= 5x faster")
    if side == 64:
        npr = r["numpy"] if "numpy" in r else r["dense"]
        row(f"same vs NumPy dense online SGD {m}x{m}",
            f"lpn {us(med(r['lpn']))} vs {us(med(npr))}", speed(ratio(npr, r["lpn"])),
            "lpn faster")


def small_learn(reps: int, rng: np.random.Generator) -> None:
    net = lpn.Network([grid(8)], seed=0)  # 64 -> 64, fan_in 16: 1,024 synapses
    syn = net.stats()["layers"][0]["synapses"]
    x = rng.normal(size=(64, 64)).astype(F32)
    t = rng.normal(size=(64, 64)).astype(F32)
    fns = {"lpn": (learn_loop(net, x, t), 2000)}
    if river_lm is not None:
        lr = river_lm.LinearRegression()
        feats = [{f"x{i}": float(v) for i, v in enumerate(xr)} for xr in rng.normal(size=(64, syn))]
        ys = rng.normal(size=64).tolist()
        kr = [0]

        def rv() -> None:
            i = kr[0] % 64
            lr.learn_one(feats[i], ys[i])
            kr[0] += 1

        fns["river"] = (rv, 200)
    r = interleave(fns, reps)
    if "river" in r:
        cmp = (f"{speed(ratio(r['river'], r['lpn']))} than river LinearRegression.learn_one "
               f"({syn} features, {us(med(r['river']))})")
    else:
        cmp = "river not installed"
    row(f"single-sample learn from Python, {syn} synapses", us(med(r["lpn"])), cmp, "<= 5 µs")


def vs_reference(reps: int, rng: np.random.Generator) -> None:
    from lpn.reference import ReferenceNetwork

    side = 80  # 6,400 -> 6,400, ~100k synapses
    n = side * side
    x = rng.normal(size=(16, n)).astype(F32)
    t = rng.normal(size=(16, n)).astype(F32)
    net = lpn.Network([grid(side)], seed=0)
    syn = net.stats()["layers"][0]["synapses"]
    ref = ReferenceNetwork.from_network(net)
    kr = [0]

    def rf() -> None:
        i = kr[0] % 16
        ref.learn(x[i], t[i])
        kr[0] += 1

    got = {}
    for threads in (1, 2):
        lpn.set_num_threads(threads)
        r = interleave({"ref": (rf, 3), "lpn": (learn_loop(net, x, t), 100)}, max(3, reps // 2))
        got[threads] = ratio(r["ref"], r["lpn"])
    lpn.set_num_threads(0)
    row(f"engine vs the NumPy reference, {syn} synapses, one step",
        f"reference {us(med(r['ref']))}, engine {us(med(r['lpn']))}",
        f"{got[2]:.0f}x (2 threads), {got[1]:.0f}x (1 thread)", ">= 50x")


def big(side: int, reps: int, bw: float, rng: np.random.Generator) -> None:
    n = side * side
    full = lpn.LearnConfig(budget=1.0, budget_min=1.0)
    nets = {"default": lpn.Network([grid(side)], seed=0),
            "full": lpn.Network([grid(side)], config=full, seed=0)}
    syn = nets["full"].stats()["layers"][0]["synapses"]
    x = rng.normal(size=(4, n)).astype(F32)
    t = rng.normal(size=(4, n)).astype(F32)
    xs = x.copy()
    xs[rng.random(size=xs.shape) >= 0.05] = 0.0  # 5% of inputs non-zero

    def pred(net: lpn.Network) -> Callable[[], None]:
        return lambda: net.predict(x[0])

    out: Dict[int, Dict[str, List[float]]] = {}
    for threads in (1, 2):
        lpn.set_num_threads(threads)
        out[threads] = interleave({
            "predict": (pred(nets["default"]), 5),
            "full": (learn_loop(nets["full"], x, t), 2),
            "budgeted": (learn_loop(nets["default"], x, t), 2),
            "sparse": (learn_loop(nets["default"], xs, t), 2),
        }, reps)
    lpn.set_num_threads(0)
    two = out[2]
    fwd = 8 * syn / med(two["predict"])  # pre (4 B) + weight (4 B) per synapse
    row(f"forward at {syn / 1e6:.1f}M synapses, share of memory bandwidth ({bw / 1e9:.1f} GB/s)",
        f"{us(med(two['predict']))} = {fwd / 1e9:.1f} GB/s", f"{fwd / bw:.0%}", ">= 50%")
    lrn = 36 * syn / med(two["full"])
    row(f"full-budget learn at {syn / 1e6:.1f}M synapses (36 B moved per synapse)",
        f"{us(med(two['full']))} = {lrn / 1e9:.1f} GB/s", f"{lrn / bw:.0%}", ">= 30%")
    row(f"budgeted (default f) ÷ full-budget learn step at {syn / 1e6:.1f}M",
        f"{us(med(two['budgeted']))} vs {us(med(two['full']))}",
        f"{ratio(two['budgeted'], two['full']):.2f}", "< 1")
    row(f"step with 5% of inputs non-zero ÷ dense step at {syn / 1e6:.1f}M",
        f"{us(med(two['sparse']))} vs {us(med(two['budgeted']))}",
        f"{ratio(two['sparse'], two['budgeted']):.2f}", "<= 0.20")
    row(f"2 threads ÷ 1 thread, learn / predict at {syn / 1e6:.1f}M",
        f"learn {us(med(out[1]['budgeted']))} -> {us(med(two['budgeted']))}",
        f"{med(out[1]['budgeted']) / med(two['budgeted']):.2f}x / "
        f"{med(out[1]['predict']) / med(two['predict']):.2f}x", ">= 1.8x")


def small_threads(reps: int, rng: np.random.Generator) -> None:
    net = lpn.Network([grid(64)], seed=0)
    x = rng.normal(size=(64, 4096)).astype(F32)
    t = rng.normal(size=(64, 4096)).astype(F32)
    got = {}
    for threads in (1, 2):
        lpn.set_num_threads(threads)
        got[threads] = interleave({"lpn": (learn_loop(net, x, t), 200),
                                   "pred": (lambda: net.predict(x[0]), 200)}, reps)
    lpn.set_num_threads(0)
    row("2 threads ÷ 1 thread, learn / predict at 65k",
        f"learn {us(med(got[1]['lpn']))} -> {us(med(got[2]['lpn']))}",
        f"{med(got[1]['lpn']) / med(got[2]['lpn']):.2f}x / "
        f"{med(got[1]['pred']) / med(got[2]['pred']):.2f}x", ">= 1.8x")


MEMORY_PROBE = r"""
import json, resource, sys
import numpy as np, lpn
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
def peak():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
side = int(sys.argv[1])
n = side * side
rng = np.random.default_rng(0)
x = rng.normal(size=(2, n)).astype(np.float32)
t = rng.normal(size=(2, n)).astype(np.float32)
base = rss()
spec = lpn.LayerSpec(n, n, dims=2, radius=2.5 / side, fan_in=16)
net = lpn.Network([spec], seed=0)
syn = lambda: net.stats()["layers"][0]["synapses"]
out = {"built": (rss() - base) / syn()}
net.learn(x, t)
out["after learning"] = (rss() - base) / syn()
reset_peak()
net.restructure()
out["after 1 restructure"] = (rss() - base) / syn()
out["peak during it"] = (peak() - base) / syn()
for _ in range(4):
    net.learn(x, t)
    net.restructure()
out["after 5 restructures"] = (rss() - base) / syn()
out["peak, all passes"] = (peak() - base) / syn()
print(json.dumps(out))
"""


def memory(side: int) -> None:
    env = dict(os.environ, RAYON_NUM_THREADS="2")
    res = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(side)], env=env,
                         capture_output=True, text=True, check=True)
    d = json.loads(res.stdout.strip().splitlines()[-1])
    syn = side * side * 16
    row(f"resident bytes per synapse ({syn / 1e6:.1f}M synapses, separate process)",
        ", ".join(f"{k} {v:.1f}" for k, v in d.items()),
        f"{max(d.values()):.1f} B worst", "<= 24 built, <= 32 with growth room")


def build_time(reps: int) -> None:
    spec = lpn.LayerSpec(1_000_000, 1_000_000, dims=2, radius=0.0025, fan_in=16)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        net = lpn.Network([spec], seed=0)
        times.append(time.perf_counter() - t0)
        del net
    row("build 1M outputs x fan_in 16", f"{med(times):.2f} s", f"{med(times) / 2:.2f} of goal",
        "<= 2 s")


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=7, help="interleaved repeats per row")
    ap.add_argument("--quick", action="store_true", help="smaller layers, fewer repeats")
    args = ap.parse_args(argv)
    reps = 3 if args.quick else args.reps
    rng = np.random.default_rng(0)
    print(f"lpn {getattr(lpn, '__version__', '?')} from {os.path.dirname(lpn.__file__)}; "
          f"{os.cpu_count()} cores; dense anchor: "
          f"{'torch ' + torch.__version__ if torch is not None else 'NumPy (torch not installed)'}"
          f"; river: {'yes' if river_lm is not None else 'no'}", flush=True)
    bw = bandwidth(64 if args.quick else 256)
    print(f"  memory bandwidth (best of copy/read, 1-2 threads): {bw / 1e9:.1f} GB/s", flush=True)
    lpn.set_num_threads(1)  # one thread unless said
    step_vs_dense(64, 256, reps, 100, rng)
    step_vs_dense(128 if args.quick else 256, 512 if args.quick else 1024, reps,
                  20, rng)
    small_learn(reps, rng)
    lpn.set_num_threads(0)
    vs_reference(reps, rng)
    big(400 if args.quick else 791, reps, bw, rng)
    small_threads(reps, rng)
    memory(400 if args.quick else 791)
    build_time(1 if args.quick else 3)
    print()
    print("| what | measured | lpn ÷ anchor | goal |")
    print("|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
