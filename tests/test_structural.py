"""Structural plasticity (docs/rule.md, structural plasticity): prune and grow, invariants, bounded memory."""

import numpy as np
import psutil
import pytest

import lpn


def growth_allowed(net, k):
    """(n_in, n_out) bool: where layer k may ever hold a synapse, by brute force over all
    pairs from the positions the engine reports (periodic or open distance, tag rule)."""
    spec = net.specs[k]
    pin, pout = net.layers[k].positions()
    gap = np.abs(pin[:, None, :] - pout[None, :, :])
    if spec.periodic:
        gap = np.minimum(gap, 1.0 - gap)
    dist = gap[..., 0] if spec.dims == 1 else np.hypot(gap[..., 0], gap[..., 1])
    radius = spec.growth_radius if spec.growth_radius is not None else 1.5 * spec.radius
    tin = np.zeros(spec.n_in, int) if spec.in_tags is None else np.asarray(spec.in_tags)
    tout = np.zeros(spec.n_out, int) if spec.out_tags is None else np.asarray(spec.out_tags)
    if spec.tag_affinity is None:
        compatible = tin[:, None] == tout[None, :]
    else:
        aff = np.asarray(spec.tag_affinity)
        compatible = aff[tin[:, None], tout[None, :]] >= spec.tag_threshold
    return (dist <= radius * (1 + 1e-9)) & compatible


def check_invariants(net, allowed):
    for k, layer in enumerate(net.layers):
        syn = layer.synapses()
        pre, post = syn["pre"], syn["post"]
        assert np.all(np.diff(post) >= 0), f"layer {k}: rows out of order"
        same_row = np.diff(post) == 0
        assert np.all(np.diff(pre)[same_row] > 0), f"layer {k}: duplicate or unsorted (i, j)"
        assert np.all(allowed[k][pre, post]), f"layer {k}: synapse outside growth neighbourhood"
        counts = np.bincount(post, minlength=layer.spec.n_out)
        assert np.all(counts <= layer.state()["max_fan_in"]), f"layer {k}: row over max_fan_in"


def check_pruned_exactly(before, after, cfg):
    """Pruned: |w| < prune_weight, l < prune_long, c == 0, nothing else; survivors untouched
    and anything new starts from zero."""
    dead = ((np.abs(before["weight"]) < np.float32(cfg.prune_weight))
            & (before["long_trail"] < np.float32(cfg.prune_long))
            & (before["consolidation"] == 0))
    key_b = before["post"] * 10**6 + before["pre"]
    key_a = after["post"] * 10**6 + after["pre"]
    kept = np.isin(key_b, key_a)
    regrown = np.isin(key_a, key_b[dead])  # pruned then grown again in the same pass
    assert np.array_equal(kept, ~dead | np.isin(key_b, key_a[regrown]))
    survivors = np.isin(key_a, key_b[~dead])
    for name in ("weight", "short_trail", "long_trail", "consolidation", "anchor"):
        np.testing.assert_array_equal(after[name][survivors], before[name][~dead])
        assert np.all(after[name][~survivors] == 0), name


def tagged_grid_net(**cfg):
    specs = [
        lpn.LayerSpec(64, 36, dims=2, radius=0.15, in_tags=[i % 3 for i in range(64)],
                      out_tags=[j % 3 for j in range(36)], activation="tanh",
                      tag_affinity=[[1, 0.6, 0], [0, 1, 0], [0.2, 0, 1]]),
        lpn.LayerSpec(36, 8, radius=0.2, periodic=False, fan_in=3, growth_radius=0.5,
                      in_tags=[j % 3 for j in range(36)], out_tags=[j % 3 for j in range(8)]),
    ]
    return lpn.Network(specs, config=lpn.LearnConfig(**cfg), seed=4)


def test_invariants_hold_after_every_pass(rng):
    net = tagged_grid_net(prune_weight=0.03, prune_long=0.1, init_std=0.05)
    allowed = [growth_allowed(net, k) for k in range(2)]
    check_invariants(net, allowed)
    w = rng.normal(size=(8, 64)).astype(np.float32) * 0.3
    pruned = grown = 0
    for it in range(40):
        x = rng.normal(size=(10, 64)).astype(np.float32)
        net.learn(x, np.tanh(x @ w.T))
        if it == 20:
            net.consolidate(0.5)
        before = [layer["synapses"] for layer in net.stats()["layers"]]
        syn_before = [layer.synapses() for layer in net.layers]
        p, g = net.restructure()
        for k, layer in enumerate(net.layers):
            check_pruned_exactly(syn_before[k], layer.synapses(), net.config)
        stats = net.stats()["layers"]
        # stats() reports this pass, per layer, and the live count moves by exactly that much.
        assert (p, g) == (sum(s["pruned"] for s in stats), sum(s["grown"] for s in stats))
        for b, s in zip(before, stats):
            assert s["synapses"] == b - s["pruned"] + s["grown"]
        pruned += p
        grown += g
        check_invariants(net, allowed)
    assert pruned > 0 and grown > 0
    stats = net.stats()["layers"]
    assert sum(s["pruned_total"] for s in stats) == pruned
    assert sum(s["grown_total"] for s in stats) == grown


def test_growth_prefers_active_inputs_then_nearer_ones_and_starts_fresh():
    # Outputs at 1/6, 1/2, 5/6 of a ring of 9 inputs; each starts with the one input within
    # 0.1 and may grow to almost any input (growth radius 0.45), one per pass.
    spec = lpn.LayerSpec(9, 3, radius=0.1, growth_radius=0.45, max_fan_in=4)
    cfg = lpn.LearnConfig(init_std=0.0, budget=1.0, prune_weight=0.0, grow_per_row=1)
    net = lpn.Network([spec], config=cfg, seed=0)
    assert list(net.layers[0].synapses()["pre"]) == [1, 4, 7]
    x = np.zeros((20, 9), np.float32)
    x[:, 5] = x[:, 7] = 1.0  # equally active; 7 (distance 1/3) is nearer to output 0 than 5
    x[:, 8] = 0.3  # nearer still (2/9), but less active
    # Only output 0 learns, so only its error trace is above the layer mean.
    net.learn(x, np.ones((20, 3), np.float32), mask=[True, False, False])
    rows = []
    for _ in range(3):
        assert net.restructure() == (0, 1)
        syn = net.layers[0].synapses()
        rows.append(list(syn["pre"][syn["post"] == 0]))
    assert rows == [[1, 7], [1, 5, 7], [1, 5, 7, 8]]
    assert net.restructure() == (0, 0)  # the row is at max_fan_in
    for name in ("weight", "short_trail", "long_trail", "consolidation", "anchor"):
        assert np.all(syn[name][syn["post"] == 0][1:] == 0), name


def test_restructure_without_need_changes_nothing_else():
    net = tagged_grid_net(init_std=0.5)
    copy = lpn.Network._from_engine(net._engine.clone_engine(), net.specs, net.config)
    # Fresh network: no error trace anywhere (nobody above the mean), weights far above the
    # prune threshold, so the pass is a no-op.
    assert net.restructure() == (0, 0)
    assert net.same_state(copy)


def run_stream(net, w, steps, batch, rng):
    for _ in range(steps // batch):
        x = rng.normal(size=(batch, net.n_in)).astype(np.float32)
        net.learn(x, x @ w.T)


def test_100k_steps_keep_synapse_count_bounded_and_memory_flat(rng):
    spec = lpn.LayerSpec(36, 9, dims=2, radius=0.2)
    # High thresholds keep pruning and regrowth going all run long: the worst case for slots.
    cfg = lpn.LearnConfig(restructure_every=100, prune_weight=0.1, prune_long=0.5)
    net = lpn.Network([spec], config=cfg, seed=0)
    bound = int(net.layers[0].state()["max_fan_in"].sum())
    proc = psutil.Process()
    batch, most = 2000, 0
    rss = {}
    for block in range(50):
        if block % 5 == 0:  # the teacher moves, so different inputs matter over time
            w = (rng.random((9, 36)) < 0.2) * rng.normal(size=(9, 36))
            w = w.astype(np.float32)
        run_stream(net, w, batch, batch, rng)
        layer = net.stats()["layers"][0]
        most = max(most, layer["synapses"])
        assert layer["capacity"] <= bound
        step = (block + 1) * batch
        if step in (10_000, 100_000):
            rss[step] = proc.memory_info().rss
    stats = net.stats()
    assert stats["steps"] == 100_000
    layer = stats["layers"][0]
    assert most <= bound
    assert layer["pruned_total"] > 1000 and layer["grown_total"] > 1000, layer
    growth = (rss[100_000] - rss[10_000]) / rss[10_000]
    print(f"RSS at 10k {rss[10_000] / 2**20:.1f} MiB, at 100k {rss[100_000] / 2**20:.1f} MiB "
          f"({100 * growth:+.2f}%); synapses {layer['synapses']} <= {bound}, pruned "
          f"{layer['pruned_total']}, grown {layer['grown_total']}")
    assert growth < 0.05


def test_restructuring_finds_inputs_outside_the_initial_wiring(rng):
    n = 40
    w = np.zeros((n, n), np.float32)
    for j in range(n):
        # Support: two inputs inside N(j) = j-2..j+2 and two at distance 3, outside it but
        # inside the growth neighbourhood (1.5 x radius).
        w[j, (j + 1) % n], w[j, (j + 2) % n] = 0.8, -0.5
        w[j, (j + 3) % n], w[j, (j - 3) % n] = 1.0, -0.7
    x_test = rng.normal(size=(1000, n)).astype(np.float32)
    t_test = x_test @ w.T
    mse = {}
    for every in (0, 200):
        net = lpn.Network([lpn.LayerSpec(n, n, radius=0.05)],
                          config=lpn.LearnConfig(restructure_every=every), seed=0)
        bound = int(net.layers[0].state()["max_fan_in"].sum())
        run_stream(net, w, 20_000, 2000, np.random.default_rng(1))
        assert net.stats()["layers"][0]["synapses"] <= bound
        mse[every] = float(np.mean((net.predict(x_test) - t_test) ** 2)) / float(t_test.var())
    print(f"relative test MSE: no restructure {mse[0]:.3g}, restructure_every=200 {mse[200]:.3g}")
    assert mse[0] > 0.3  # half of the support is out of reach
    assert mse[200] < 0.01 * mse[0]


@pytest.mark.parametrize("threads", [1, 2])
def test_restructure_is_independent_of_thread_count(threads):
    # Big enough for the arena to split rows over several rayon tasks.
    spec = lpn.LayerSpec(4096, 4096, dims=2, radius=0.03)
    cfg = lpn.LearnConfig(prune_weight=0.01, init_std=0.02)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4096)).astype(np.float32)
    results = []
    try:
        for n_threads in (threads, 3):
            lpn.set_num_threads(n_threads)
            net = lpn.Network([spec], config=cfg, seed=1)
            net.learn(x, x[:, ::-1].copy(), mask=np.arange(4096) % 3 == 0)
            net.restructure()
            results.append(net)
    finally:
        lpn.set_num_threads(0)
    assert results[0].stats()["layers"][0]["grown"] > 0
    assert results[0].same_state(results[1])
