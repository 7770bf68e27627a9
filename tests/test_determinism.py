"""Same seed, same numbers, whatever the thread count."""

import numpy as np

import lpn


def run(threads: int, steps: int = 1000) -> lpn.Network:
    lpn.set_num_threads(threads)
    try:
        rng = np.random.default_rng(99)
        tags = np.arange(1024) % 2
        specs = [
            lpn.LayerSpec(1024, 1024, dims=2, radius=0.09, in_tags=tags, out_tags=tags,
                          activation="tanh"),
            lpn.LayerSpec(1024, 8, radius=0.3, in_tags=tags, out_tags=np.arange(8) % 2),
        ]
        cfg = lpn.LearnConfig(auto_consolidate_every=100, auto_threshold=0.05,
                              restructure_every=250, replay_capacity=32, replay_on_conflict=True)
        net = lpn.Network(specs, config=cfg, seed=5)
        x = rng.normal(size=(steps, 1024)).astype(np.float32)
        t = rng.normal(size=(steps, 8)).astype(np.float32)
        masks = rng.random((steps, 8)) < 0.6
        for k in range(0, steps, 100):
            net.learn(x[k:k + 100], t[k:k + 100], mask=masks[k:k + 100], replay=2)
        net.contrastive_step(x[0], x[1], layer=0)
        return net
    finally:
        lpn.set_num_threads(0)


def test_bitwise_identical_for_1_and_2_threads():
    one = run(1)
    two = run(2)
    assert lpn.get_num_threads() >= 1
    assert one.layers[0].synapses()["pre"].size > 8000  # large enough for rayon to split
    assert one.same_state(two)
    for a, b in zip(one.layers, two.layers):
        sa, sb = a.synapses(), b.synapses()
        for k in sa:
            assert sa[k].tobytes() == sb[k].tobytes(), k
    assert one.stats()["replays"] > 0


def test_same_seed_same_network_different_seed_different():
    spec = [lpn.LayerSpec(50, 20, radius=0.1)]
    a = lpn.Network(spec, seed=3).layers[0].synapses()["weight"]
    b = lpn.Network(spec, seed=3).layers[0].synapses()["weight"]
    c = lpn.Network(spec, seed=4).layers[0].synapses()["weight"]
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    assert abs(float(np.std(a)) - 0.01) < 0.003  # N(0, 0.01²) initial weights
