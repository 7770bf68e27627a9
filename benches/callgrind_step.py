"""Instructions per synapse of one online learn step, counted by callgrind (not timed).

    python benches/callgrind_step.py [--side 256] [--steps 4] [--budget default|full|min] [--sparse]
    python benches/callgrind_step.py --whole --side 8 --steps 2000   # single-sample learn


Runs this file twice under ``valgrind --tool=callgrind`` (one thread): once building the layer
and warming it up, once doing the same plus ``--steps`` more steps; the difference in
instructions, divided by steps × synapses, is the cost of a step. Deterministic, so it proves a
speed-up on a busy machine where timings cannot.

``--whole`` counts the main thread instead of the pool's jobs: everything one Python
``net.learn(x[i], t[i])`` costs (the interpreter, argument conversion, the binding, the engine).
Small layers run inline, not as pool jobs, so this is the count for the single-sample row of
``benches/anchors.py`` (side 8: 1,024 synapses).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile


def workload(side: int, steps: int, budget: str, sparse: bool, predict: bool) -> None:
    import gc

    import numpy as np

    import lpn

    lpn.set_num_threads(1)
    n = side * side
    cfg = {
        "default": lpn.LearnConfig(),
        "full": lpn.LearnConfig(budget=1.0, budget_min=1.0),
        # A budget held at its floor: one synapse per row of 16 (quota 1), as after a run of
        # improving steps.
        "min": lpn.LearnConfig(budget=0.02, budget_min=0.02, budget_max=0.02),
    }[budget]
    net = lpn.Network([lpn.LayerSpec(n, n, dims=2, radius=2.5 / side, fan_in=16)], config=cfg,
                      seed=0)
    # The same 8 samples in both runs, cycled: making data per step would count numpy's random
    # generator (about 11 instructions per synapse) as part of the step.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, n)).astype(np.float32)
    if sparse:
        x[rng.random(size=x.shape) >= 0.05] = 0.0
    t = rng.normal(size=(8, n)).astype(np.float32)
    gc.disable()  # a collection in one run and not the other would count as step cost
    for k in range(2):  # warm up: scratch buffers, the pool
        net.learn(x[k], t[k])
    for k in range(2, steps + 2):
        if predict:
            net.predict(x[k % 8])
        else:
            net.learn(x[k % 8], t[k % 8])


def count(args: argparse.Namespace, steps: int) -> int:
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cg.out")
        # Only the jobs the engine's thread pool runs are counted, with everything they call:
        # at this size (side >= 64, above INLINE_SLOTS) every step's forward, selection, update
        # and trail passes run as pool jobs. The workers' idle spinning between steps and
        # Python's per-call overhead (~0.02 instructions per synapse at side 256) are not, so
        # repeated runs give the same count.
        # --whole: the main thread only (file -01), where the calls run inline; the pool's
        # idle workers spin a varying amount and would make the count noisy.
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + (
            ["--separate-threads=yes"] if args.whole
            else ["--toggle-collect=*Job>::execute*"]) + [
               sys.executable,
               __file__, "--run", "--side", str(args.side), "--steps", str(steps),
               "--budget", args.budget] + (["--sparse"] if args.sparse else []) + (
                   ["--predict"] if args.predict else [])
        env = dict(os.environ, RAYON_NUM_THREADS="1", PYTHONHASHSEED="0")
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        if args.whole:
            with open(out + "-01") as f:
                m = re.search(r"^summary: (\d+)", f.read(), re.M)
            return int(m.group(1))
        m = re.search(r"Collected : ([\d,]+)", res.stderr)
        return int(m.group(1).replace(",", ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--side", type=int, default=256, help="side² inputs and outputs, fan_in 16")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--budget", choices=("default", "full", "min"), default="default")
    ap.add_argument("--sparse", action="store_true", help="5%% of inputs non-zero")
    ap.add_argument("--predict", action="store_true", help="count predict instead of learn")
    ap.add_argument("--whole", action="store_true",
                    help="count the whole process (per Python call), not only the pool's jobs")
    ap.add_argument("--run", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run:
        workload(args.side, args.steps, args.budget, args.sparse, args.predict)
        return
    base = count(args, 0)
    full = count(args, args.steps)
    syn = args.side * args.side * 16
    what = "predict" if args.predict else f"learn ({args.budget} budget{', sparse' if args.sparse else ''})"
    per = (full - base) / args.steps
    scope = "whole Python call" if args.whole else "engine jobs"
    print(f"{what}, {syn} synapses, {scope}: {per:,.0f} instructions per step = "
          f"{per / syn:.1f} per synapse")


if __name__ == "__main__":
    main()
