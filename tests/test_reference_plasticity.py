"""Engine against the NumPy reference for structural passes, replay and contrastive steps."""

import numpy as np
import pytest
from test_reference import assert_same, teacher_targets

import lpn
from lpn.reference import ReferenceNetwork


def assert_structure_stats(net, ref, where):
    for k, (layer, rlayer) in enumerate(zip(net.stats()["layers"], ref.layers)):
        got = (layer["pruned"], layer["grown"], layer["pruned_total"], layer["grown_total"])
        want = (rlayer.pruned, rlayer.grown, rlayer.pruned_total, rlayer.grown_total)
        assert got == want, f"{where}: layer {k} (pruned, grown, totals)"
        assert layer["synapses"] == rlayer.pre.size


def buffer_samples(net):
    """The engine's reservoir as a list of (x, t, mask) — read before a learn call."""
    x, t, m, _ = net._engine.replay_buffer()
    n = x.size // net.n_in
    return [(x.reshape(n, -1)[k], t.reshape(n, -1)[k], m.reshape(n, -1)[k]) for k in range(n)]


def learn_both(net, ref, x, t, mask=None, replay=0):
    buf = buffer_samples(net)
    got = net.learn(x, t, mask=mask, replay=replay)
    drawn = [buf[s] for s in net._engine.last_replayed()]
    want = ref.learn(x, t, mask=mask, replay_samples=drawn)
    assert got == pytest.approx(want, rel=1e-4, abs=1e-9)
    return got, drawn


STRUCTURAL = {
    "grid_tags": [
        lpn.LayerSpec(64, 16, dims=2, radius=0.15, in_tags=[i % 2 for i in range(64)],
                      out_tags=[j % 2 for j in range(16)]),
    ],
    "ring_fan_in_two_layers_relu": [
        lpn.LayerSpec(40, 20, radius=0.15, fan_in=3, activation="relu"),
        lpn.LayerSpec(20, 6, radius=0.3, fan_in=4, max_fan_in=7),
    ],
    "open_grid_affinity_growth_radius": [
        lpn.LayerSpec(36, 9, dims=2, radius=0.2, periodic=False, growth_radius=0.45,
                      in_tags=[i % 3 for i in range(36)], out_tags=[j % 3 for j in range(9)],
                      tag_affinity=[[1, 0.7, 0], [0, 1, 0], [0, 0, 1]]),
    ],
}


@pytest.mark.parametrize("name", sorted(STRUCTURAL))
def test_restructure_every_matches_reference(name, rng):
    specs = STRUCTURAL[name]
    # Thresholds well above the defaults so that every pass prunes as well as grows (grown
    # synapses start with a scout trail s = 1, DESIGN §5.2, so their long trail passes 0.05
    # within one pass; 0.2 still prunes in every network here).
    cfg = lpn.LearnConfig(restructure_every=15, prune_weight=0.02, prune_long=0.2,
                          grow_per_row=2, init_std=0.05)
    net = lpn.Network(specs, config=cfg, seed=11)
    ref = ReferenceNetwork.from_network(net)
    x, t = teacher_targets(rng, net.n_in, net.n_out, 240)
    for step in range(240):
        mask = rng.random(net.n_out) < 0.6 if step % 4 == 3 else None
        learn_both(net, ref, x[step], t[step], mask)
        if step % 15 == 14:
            assert_same(net, ref, f"{name} after the pass at step {step}")
            assert_structure_stats(net, ref, f"{name} step {step}")
        if step == 100:
            assert net.restructure() == ref.restructure()
    totals = net.stats()["layers"]
    assert sum(layer["pruned_total"] for layer in totals) > 0
    assert sum(layer["grown_total"] for layer in totals) > 0
    assert_same(net, ref, f"{name} end")


def test_restructure_skips_frozen_and_covers_contrastive_layers(rng):
    specs = [lpn.LayerSpec(30, 20, radius=0.1, fan_in=3),
             lpn.LayerSpec(20, 10, radius=0.1, fan_in=3, activation="relu"),
             lpn.LayerSpec(10, 4, radius=0.3)]
    cfg = lpn.LearnConfig(hidden_signal=("frozen", "contrastive"), prune_weight=0.05,
                          init_std=0.3)
    net = lpn.Network(specs, config=cfg, seed=2)
    ref = ReferenceNetwork.from_network(net)
    frozen_before = net.layers[0].synapses()
    x, t = teacher_targets(rng, 30, 4, 60)
    for step in range(60):
        learn_both(net, ref, x[step], t[step])
        xp = x[step]
        xn = rng.permutation(xp)
        got = net.contrastive_step(xp, xn, layer=1)
        want = ref.contrastive_step(xp, xn, layer=1)
        np.testing.assert_allclose(got, want, rtol=1e-5)
        if step % 20 == 19:
            assert net.restructure() == ref.restructure()
            assert_same(net, ref, f"after the pass at step {step}")
            assert_structure_stats(net, ref, f"step {step}")
    for name, value in frozen_before.items():
        np.testing.assert_array_equal(net.layers[0].synapses()[name], value)
    layers = net.stats()["layers"]
    assert layers[0]["pruned_total"] == layers[0]["grown_total"] == 0
    assert layers[1]["grown_total"] > 0


@pytest.mark.parametrize("on_conflict", [False, True])
def test_replay_matches_reference_with_the_engines_draws(on_conflict, rng):
    specs = [lpn.LayerSpec(24, 12, radius=0.2, activation="relu"),
             lpn.LayerSpec(12, 6, radius=0.3, out_tags=[j % 2 for j in range(6)],
                           in_tags=[k % 2 for k in range(12)])]
    # restructure_every is odd so that passes land on replayed steps as well as on new ones.
    cfg = lpn.LearnConfig(replay_capacity=6, replay_on_conflict=on_conflict, conflict_ratio=1.2,
                          restructure_every=7, prune_weight=0.01, init_std=0.1)
    net = lpn.Network(specs, config=cfg, seed=5)
    ref = ReferenceNetwork.from_network(net)
    x, t = teacher_targets(rng, 24, 6, 200)
    t[100:] = teacher_targets(rng, 24, 6, 100)[1]  # a new teacher: the loss jumps
    halves = np.array([True, False] * 3)
    n_replayed = 0
    for step in range(200):
        mask = [halves, ~halves, None][step % 3]
        out_before = ref.layers[-1].state()
        buf = buffer_samples(net)
        loss, drawn = learn_both(net, ref, x[step], t[step], mask, replay=2)
        n_replayed += len(drawn)
        if on_conflict:
            conflict = ref.conflict(loss, out_before["loss_avg"], out_before["has_loss_avg"])
            # Local replay: only stored samples sharing an active output are eligible.
            eligible = [m for _, _, m in buf if mask is None or np.any(m & mask)]
            assert len(drawn) == (2 if conflict and eligible else 0), f"step {step}"
            for _, _, m in drawn:
                assert mask is None or np.any(m & mask)
        else:
            assert len(drawn) == (2 if buf else 0)
        if step % 40 == 39:
            assert_same(net, ref, f"step {step}")
    stats = net.stats()
    assert (stats["steps"], stats["samples"], stats["replays"]) == \
        (ref.steps, ref.samples, ref.replays)
    assert stats["replays"] == n_replayed > 0
    if on_conflict:
        assert n_replayed < 2 * 200 * 0.5  # conflicts are the exception, not the rule
    assert_same(net, ref, "end")
