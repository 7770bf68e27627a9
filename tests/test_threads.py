"""The GIL is released around compute: predictions run concurrently with learning and always see
a state the learner passed through (never a half-updated one)."""

import threading

import numpy as np

import lpn


def make():
    specs = [lpn.LayerSpec(400, 400, dims=2, radius=0.12, activation="tanh"),
             lpn.LayerSpec(400, 10, radius=0.3)]
    return lpn.Network(specs, seed=11)


def test_predict_threads_while_learning_see_consistent_states():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 400)).astype(np.float32)
    t = rng.normal(size=(60, 10)).astype(np.float32)
    probe = rng.normal(size=400).astype(np.float32)

    # Lock-step run: the probe's prediction after each learn call.
    ref = make()
    valid = {ref.predict(probe).tobytes()}
    for k in range(60):
        ref.learn(x[k], t[k])
        valid.add(ref.predict(probe).tobytes())

    net = make()
    seen, errors = [], []
    stop = threading.Event()

    def reader():
        try:
            while not stop.is_set():
                seen.append(net.predict(probe).tobytes())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def writer():
        try:
            for k in range(60):
                net.learn(x[k], t[k])
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for r in readers:
        r.start()
    w = threading.Thread(target=writer)
    w.start()
    w.join(timeout=60)
    stop.set()
    for r in readers:
        r.join(timeout=60)
    assert not w.is_alive() and not any(r.is_alive() for r in readers), "deadlock"
    assert not errors, errors
    assert len(seen) > 10
    assert set(seen) <= valid, "a prediction saw a state the learner never passed through"
    assert net.same_state(ref)


def test_learning_releases_the_gil():
    """A pure-Python thread keeps running while one long learn call computes."""
    net = make()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 400)).astype(np.float32)
    t = rng.normal(size=(400, 10)).astype(np.float32)
    ticks = []
    done = threading.Event()

    def counter():
        while not done.is_set():
            ticks.append(1)

    c = threading.Thread(target=counter)
    c.start()
    net.learn(x, t)
    done.set()
    c.join(timeout=30)
    # With the GIL held for the whole call the counter would get only a switch-interval slice.
    assert len(ticks) > 1000


def test_concurrent_learn_batches_never_interleave_and_all_finish():
    # Three threads each learn a batch long enough to span several 20 ms slices, so the later
    # ones wait for the batch lock while the first lets readers in between its slices. Every
    # waiter must be woken (a lost wake-up hangs the join) and the batches must run whole,
    # one after another: the end state is one of the six orders.
    import itertools

    rng = np.random.default_rng(5)
    spec = lpn.LayerSpec(4096, 4096, dims=2, radius=2.5 / 64, fan_in=16)
    batches = [(rng.normal(size=(120, 4096)).astype(np.float32),
                rng.normal(size=(120, 4096)).astype(np.float32)) for _ in range(3)]

    def fresh():
        return lpn.Network([spec], seed=2)

    orders = []
    for perm in itertools.permutations(range(3)):
        net = fresh()
        for k in perm:
            net.learn(*batches[k])
        orders.append(net)
    for _ in range(2):
        net = fresh()
        start = threading.Barrier(3)

        def learn(k, net=net, start=start):
            start.wait()
            net.learn(*batches[k])

        threads = [threading.Thread(target=learn, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a learner was never woken"
        assert any(net.same_state(o) for o in orders)
