"""The Rust engine against the NumPy reference of the same rule, side by side."""

import zlib

import numpy as np
import pytest

import lpn
from lpn.reference import ReferenceNetwork

RTOL = 1e-5
ATOL = 1e-7


def close(got, want, msg):
    """Agreement to RTOL relative to the array's scale: elementwise relative error is
    meaningless for a value that crosses zero, where the last ulp of a libm tanh or exp (Rust's
    and numpy's differ) dominates."""
    want = np.asarray(want)
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=max(ATOL, RTOL * scale), err_msg=msg)

SYN = ("weight", "short_trail", "long_trail", "consolidation", "anchor")


def assert_same(net, ref, where):
    for k, (layer, rlayer) in enumerate(zip(net.layers, ref.layers)):
        got, want = layer.synapses(), rlayer.synapses()
        np.testing.assert_array_equal(got["pre"], want["pre"], err_msg=f"{where} layer {k} pre")
        np.testing.assert_array_equal(got["post"], want["post"], err_msg=f"{where} layer {k}")
        for name in SYN:
            close(got[name], want[name], f"{where}: layer {k} {name}")
        s, rs = layer.state(), rlayer.state()
        for name in ("bias", "error_trace", "activity_trace"):
            close(s[name], rs[name], f"{where}: layer {k} {name}")
        assert s["budget"] == pytest.approx(rs["budget"], rel=RTOL), f"{where}: layer {k} budget"
        assert s["loss_avg"] == pytest.approx(rs["loss_avg"], rel=1e-4, abs=1e-9)
        assert s["expanding"] == rs["expanding"], f"{where}: layer {k} expanding"
        assert s["steps"] == rs["steps"]


def teacher_targets(rng, n_in, n_out, steps, act="linear"):
    w = rng.normal(size=(n_out, n_in)).astype(np.float32) * 0.3
    x = rng.normal(size=(steps, n_in)).astype(np.float32)
    t = x @ w.T
    if act == "sigmoid":
        t = 1 / (1 + np.exp(-t))
    elif act == "relu":
        t = np.maximum(t, 0)
    elif act == "tanh":
        t = np.tanh(t)
    return x, t.astype(np.float32)


CASES = {
    "ring_linear_masks_autoconsolidate": dict(
        specs=[lpn.LayerSpec(40, 24, radius=0.1)],
        cfg=lpn.LearnConfig(auto_consolidate_every=25, auto_threshold=0.05, rho_consolidation=0.999),
        masks=True,
    ),
    "ring_routing_autoconsolidate": dict(
        specs=[lpn.LayerSpec(40, 24, radius=0.15)],
        cfg=lpn.LearnConfig(auto_consolidate_every=20, auto_threshold=0.05, kappa_long=0.3,
                            route_consolidation=0.8, route_long=0.5, trail_scaled_step=False),
        masks=True,
    ),
    "grid_tags_two_layers_tanh": dict(
        specs=[
            lpn.LayerSpec(36, 25, dims=2, radius=0.3, in_tags=[i % 2 for i in range(36)],
                          out_tags=[j % 2 for j in range(25)], activation="tanh"),
            lpn.LayerSpec(25, 6, radius=0.4, in_tags=[j % 2 for j in range(25)],
                          out_tags=[j % 2 for j in range(6)]),
        ],
        cfg=lpn.LearnConfig(lr=0.3, kappa_long=0.5),
        masks=True,
    ),
    "relu_fan_in_open_ring": dict(
        specs=[lpn.LayerSpec(30, 20, radius=0.2, fan_in=4, activation="relu", periodic=False)],
        cfg=lpn.LearnConfig(init_std=0.3, budget=0.5),
        masks=False,
    ),
    "sigmoid_affinity_two_layers": dict(
        specs=[
            lpn.LayerSpec(20, 16, radius=0.25, activation="sigmoid",
                          in_tags=[i % 3 for i in range(20)], out_tags=[j % 3 for j in range(16)],
                          tag_affinity=[[1, 0.6, 0], [0, 1, 0], [0, 0, 1]]),
            lpn.LayerSpec(16, 4, radius=0.5, activation="sigmoid"),
        ],
        cfg=lpn.LearnConfig(bias_lr=0.2, w_max=0.5, beta=1.0),
        masks=True,
    ),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(CASES))
def test_engine_matches_reference_for_300_steps(name, seed):
    case = CASES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()) + seed)
    net = lpn.Network(case["specs"], config=case["cfg"], seed=7)
    ref = ReferenceNetwork.from_network(net)
    assert_same(net, ref, "start")
    act = case["specs"][-1].activation
    x, t = teacher_targets(rng, net.n_in, net.n_out, 300, act)
    # Switch the teacher half way so the loss jumps and the budget expands.
    t[150:] = teacher_targets(rng, net.n_in, net.n_out, 150, act)[1]
    consolidated = False
    for step in range(300):
        mask = rng.random(net.n_out) < 0.7 if case["masks"] and step % 3 else None
        got = net.learn(x[step], t[step], mask=mask)
        want = ref.learn(x[step], t[step], mask=mask)
        assert got == pytest.approx(want, rel=1e-4, abs=1e-9), f"loss at step {step}"
        if step == 149:
            net.consolidate(0.5)
            ref.consolidate(0.5)
            consolidated = True
        if step % 50 == 49:
            assert_same(net, ref, f"step {step}")
            close(net.predict(x[:5]), ref.predict(x[:5]), f"predict at step {step}")
    assert consolidated
    assert_same(net, ref, "end")
    # The run exercised both budget directions and the consolidation pull.
    out = net.layers[-1].synapses()
    assert np.any(out["consolidation"] > 0)


def test_contrastive_step_matches_reference(rng):
    specs = [lpn.LayerSpec(24, 16, radius=0.2, activation="tanh"),
             lpn.LayerSpec(16, 4, radius=0.5)]
    cfg = lpn.LearnConfig(hidden_signal="contrastive", init_std=0.3)
    net = lpn.Network(specs, config=cfg, seed=3)
    ref = ReferenceNetwork.from_network(net)
    for step in range(100):
        xp = rng.normal(size=24).astype(np.float32)
        xn = rng.permutation(xp)
        layer = step % 2
        got = net.contrastive_step(xp, xn, layer=layer)
        want = ref.contrastive_step(xp, xn, layer=layer)
        np.testing.assert_allclose(got, want, rtol=1e-5)
    assert_same(net, ref, "after contrastive steps")


# ---- the classification readout and the buffer policies, bit for bit ----------------------

from lpn.reference_replay import ReferenceReservoir, class_of  # noqa: E402


def assert_bits(net, ref, where):
    """Every synapse and row value equal bit for bit (not merely close)."""
    for k, (layer, rlayer) in enumerate(zip(net.layers, ref.layers)):
        got, want = layer.synapses(), rlayer.synapses()
        for name in ("pre", "post") + SYN:
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"{where} {k} {name}")
        s, rs = layer.state(), rlayer.state()
        for name in ("bias", "error_trace", "activity_trace", "budget", "loss_avg", "expanding",
                     "steps"):
            np.testing.assert_array_equal(s[name], rs[name], err_msg=f"{where} {k} {name}")


def engine_buffer(net):
    x, t, m, seen = net._engine.replay_buffer()
    n = x.size // net.n_in
    return x.reshape(n, net.n_in), t.reshape(n, net.n_out), m.reshape(n, net.n_out), seen


def engine_draws(res, t, after_x):
    """The draws the engine made for one offer, read back from the slot it wrote (the ChaCha
    stream itself cannot be replayed here). Fails if that slot is not one the policy allows."""
    if len(res.x) < res.capacity:
        return []
    changed = [s for s in range(len(res.x)) if not np.array_equal(res.x[s], after_x[s])]
    assert len(changed) <= 1, changed
    slot = changed[0] if changed else None
    if res.policy == "reservoir":
        return [res.capacity if slot is None else slot]
    c, stored = class_of(t), res.stored()
    top = stored.max()
    if stored[c] != top:
        assert slot is not None, "a sample of a smaller class must be stored"
        victim = class_of(res.t[slot])
        largest = [int(k) for k in np.flatnonzero(stored == top)]
        draws = [largest.index(victim)]  # ValueError if the engine evicted another class
    elif slot is None:
        return [int(stored[c])]  # any draw >= stored(c) drops the sample
    else:
        victim, draws = c, [0]
    slots = [k for k, tk in enumerate(res.t) if class_of(tk) == victim]
    return draws + [slots.index(slot)]


def fed(draws):
    """``below(n)`` answering ``draws`` in order, each checked to lie in ``[0, n)``."""
    it = iter(draws)

    def below(n):
        v = next(it)
        assert 0 <= v < n, (v, n)
        return v
    return below


READOUT_CASES = {
    "softmax_masks": (dict(output_error="softmax"), True, 0),
    "softmax_window": (dict(output_error="softmax", readout_window=9), True, 0),
    "softmax_window_balanced_replay": (
        dict(output_error="softmax", readout_window=12, replay_capacity=10,
             replay_policy="balanced"), False, 2),
    "mse_balanced_replay": (dict(replay_capacity=8, replay_policy="balanced"), False, 1),
    "softmax_reservoir_replay": (dict(output_error="softmax", replay_capacity=8), False, 1),
}


@pytest.mark.parametrize("name", sorted(READOUT_CASES))
def test_readout_and_buffer_policies_match_reference_bit_for_bit(name):
    cfg, masks, replay = READOUT_CASES[name]
    specs = [lpn.LayerSpec(24, 16, radius=0.3, activation="tanh"),
             lpn.LayerSpec(16, 6, radius=0.6)]
    net = lpn.Network(specs, config=lpn.LearnConfig(**cfg), seed=5)
    ref = ReferenceNetwork.from_network(net)
    res = ReferenceReservoir(net.config.replay_capacity, net.n_out, net.config.replay_policy)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    # An imbalanced class-incremental stream: classes 0-1, then 2-3 (more), then 4-5.
    labels = np.concatenate([rng.integers(0, 2, 60), rng.integers(2, 4, 120),
                             rng.integers(4, 6, 60)])
    for step, y in enumerate(labels):
        x = rng.normal(size=24).astype(np.float32)
        t = np.eye(6, dtype=np.float32)[y]
        mask = rng.random(6) < 0.8 if masks and step % 2 else None
        bx, bt, bm, _ = engine_buffer(net)
        got = net.learn(x, t, mask=mask, replay=replay)
        drawn = [(bx[s], bt[s], bm[s]) for s in net._engine.last_replayed()]
        want = ref.learn(x, t, mask=mask, replay_samples=drawn)
        assert got == want, f"loss at step {step}"
        if replay:
            after_x, after_t, after_m, seen = engine_buffer(net)
            m = np.ones(6, bool) if mask is None else mask
            res.offer(x, t, m, fed(engine_draws(res, t, after_x)))
            np.testing.assert_array_equal(np.array(res.x), after_x)
            np.testing.assert_array_equal(np.array(res.t), after_t)
            np.testing.assert_array_equal(np.array(res.mask), after_m)
            assert res.seen == seen
            np.testing.assert_array_equal(res.class_seen, net._engine.replay_class_seen())
        if step % 40 == 39:
            assert_bits(net, ref, f"step {step}")
    assert_bits(net, ref, "end")
    if ref.window:
        np.testing.assert_array_equal(ref.last_positive, net._engine.readout_last())
    if replay:
        assert net.stats()["replays"] > 0
