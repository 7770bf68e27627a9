#!/usr/bin/env python3
"""Concurrency stress: 8 threads predict and read stats while 2 learn and 1 saves.

No crash, no deadlock (every join has a timeout), no error; every file written while the
network was busy loads, holds a state the learners passed through and re-saves to the same
bytes; readers never waited long (the engine lock is held in slices, and never with the GIL).

    python scripts/stress.py                 # 60 s (the default)
    python scripts/stress.py --seconds 10    # what CI runs (tests/test_stress.py)

Exit status 0 when every check held; the report is printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from typing import Any, Dict

import numpy as np

import lpn


def make() -> lpn.Network:
    cfg = lpn.LearnConfig(restructure_every=25, replay_capacity=64, replay_on_conflict=True,
                          auto_consolidate_every=10, auto_threshold=0.05, kappa_long=0.5)
    specs = [lpn.LayerSpec(64, 96, radius=0.2, activation="tanh"),
             lpn.LayerSpec(96, 8, radius=0.3)]
    return lpn.Network(specs, config=cfg, seed=5)


def run(seconds: float, folder: str) -> Dict[str, Any]:
    net = make()
    errors = []
    stop = threading.Event()
    counts = {"predict": 0, "learn": 0, "save": 0, "stats": 0}
    worst_read = [0.0]
    count_lock = threading.Lock()

    def guarded(fn):
        def go(*args):
            try:
                fn(*args)
            except BaseException as exc:  # every failure, even a panic, is reported
                errors.append(f"{type(exc).__name__}: {exc}")
                stop.set()
        return go

    def bump(key, dt=0.0):
        with count_lock:
            counts[key] += 1
            worst_read[0] = max(worst_read[0], dt)

    @guarded
    def predictor(k):
        r = np.random.default_rng(100 + k)
        while not stop.is_set():
            x = r.normal(size=(int(r.integers(1, 5)), 64))
            t0 = time.perf_counter()
            y = net.predict(x, mask=r.random(8) < 0.5)
            assert y.shape == (x.shape[0], 8)
            if k % 2:
                net.stats()
                bump("stats")
            bump("predict", time.perf_counter() - t0)

    @guarded
    def learner(k):
        r = np.random.default_rng(k)
        while not stop.is_set():
            b = int(r.integers(1, 6))
            x = r.normal(size=(b, 64))
            t = (r.random((b, 8)) < 0.3).astype(np.float32)
            net.learn(x, t, mask=r.random((b, 8)) < 0.8, replay=1)
            bump("learn")

    @guarded
    def saver():
        k = 0
        while not stop.is_set():
            net.save(os.path.join(folder, f"snap-{k % 4}.safetensors"))
            k += 1
            bump("save")
            time.sleep(0.01)

    threads = ([threading.Thread(target=predictor, args=(k,), daemon=True) for k in range(8)]
               + [threading.Thread(target=learner, args=(k,), daemon=True) for k in range(2)]
               + [threading.Thread(target=saver, daemon=True)])
    for th in threads:
        th.start()
    stop.wait(seconds)
    stop.set()
    for th in threads:
        th.join(timeout=60)
    hung = sum(th.is_alive() for th in threads)

    files = sorted(f for f in os.listdir(folder))
    loads_ok = True
    total = net.stats()["samples"]
    for f in files:
        if not f.endswith(".safetensors"):
            loads_ok = False  # a temporary left behind
            continue
        back = lpn.Network.load(os.path.join(folder, f))
        st = back.stats()
        loads_ok &= 0 < st["samples"] <= total
        loads_ok &= bool(np.all(np.isfinite(back.predict(np.ones(64)))))
        loads_ok &= lpn.Network.from_bytes(back.to_bytes()).to_bytes() == back.to_bytes()
    report = {
        "seconds": seconds, "counts": counts, "errors": errors[:5], "threads_hung": hung,
        "files": files, "files_ok": bool(loads_ok and files),
        "worst_predict_s": round(worst_read[0], 4), "samples": total,
    }
    report["ok"] = (not errors and hung == 0 and report["files_ok"]
                    and counts["predict"] > 50 and counts["learn"] > 20 and counts["save"] > 5)
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        report = run(args.seconds, d)
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
