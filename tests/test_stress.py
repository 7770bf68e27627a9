"""Concurrency stress: 8 threads predict while 2 learn and 1 saves, for a bounded time.

No crash, no deadlock (every join has a timeout), no error, and every file written while the
network was busy loads and holds a state the learners actually passed through.
"""

import os
import threading
import time

import numpy as np

import lpn

DURATION = float(os.environ.get("LPN_STRESS_SECONDS", "6"))


def make():
    cfg = lpn.LearnConfig(restructure_every=25, replay_capacity=64, replay_on_conflict=True,
                          auto_consolidate_every=10, auto_threshold=0.05, kappa_long=0.5)
    specs = [lpn.LayerSpec(64, 96, radius=0.2, activation="tanh"),
             lpn.LayerSpec(96, 8, radius=0.3)]
    return lpn.Network(specs, config=cfg, seed=5)


def test_predict_learn_save_concurrently(tmp_path):
    net = make()
    errors = []
    stop = threading.Event()
    counts = {"predict": 0, "learn": 0, "save": 0}
    count_lock = threading.Lock()
    saved = []

    def guarded(fn):
        def run(*args):
            try:
                fn(*args)
            except BaseException as exc:  # every failure, even a panic, is reported below
                errors.append(exc)
                stop.set()
        return run

    def bump(key):
        with count_lock:
            counts[key] += 1

    @guarded
    def predictor(k):
        r = np.random.default_rng(100 + k)
        while not stop.is_set():
            x = r.normal(size=(int(r.integers(1, 5)), 64))
            y = net.predict(x, mask=r.random(8) < 0.5)
            assert y.shape == (x.shape[0], 8)
            bump("predict")

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
            path = tmp_path / f"snap-{k % 4}.safetensors"
            net.save(path)
            saved.append(net.stats()["samples"])
            k += 1
            bump("save")
            time.sleep(0.01)

    threads = ([threading.Thread(target=predictor, args=(k,)) for k in range(8)]
               + [threading.Thread(target=learner, args=(k,)) for k in range(2)]
               + [threading.Thread(target=saver)])
    for th in threads:
        th.daemon = True  # a deadlock must fail the test, not hang the interpreter
        th.start()
    time.sleep(DURATION)
    stop.set()
    for th in threads:
        th.join(timeout=60)
    assert not any(th.is_alive() for th in threads), "deadlock: a thread did not finish"
    assert not errors, errors
    assert counts["predict"] > 50 and counts["learn"] > 20 and counts["save"] > 5, counts

    files = sorted(tmp_path.iterdir())
    assert files and all(f.suffix == ".safetensors" for f in files), files  # no temp left
    for f in files:
        back = lpn.Network.load(f)
        st = back.stats()
        assert 0 < st["samples"] <= net.stats()["samples"]
        assert np.all(np.isfinite(back.predict(np.ones(64))))

    # Snapshots are consistent: a loaded copy continues like the live network would from
    # the same state (loading a snapshot and re-saving gives back the same state).
    snap = lpn.Network.load(files[0])
    assert lpn.Network.from_bytes(snap.to_bytes()).same_state(snap)
