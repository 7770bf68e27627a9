"""Local replay (docs/rule.md, local replay): reservoir buffer, replay=k, replay on conflict."""

import numpy as np
import pytest

import lpn
from lpn import tasks

SYN = ("pre", "post", "weight", "short_trail", "long_trail", "consolidation", "anchor")
STATE = ("bias", "error_trace", "activity_trace", "budget", "loss_avg", "expanding", "steps")


def buffer(net):
    x, t, m, seen = net._engine.replay_buffer()
    n = x.size // net.n_in
    return x.reshape(n, net.n_in), t.reshape(n, net.n_out), m.reshape(n, net.n_out), seen


def clone(net):
    return lpn.Network._from_engine(net._engine.clone_engine(), net.specs, net.config)


def assert_same_learning_state(a, b):
    """Synapses and per-layer state bit for bit (the reservoir and RNG may differ)."""
    for k, (la, lb) in enumerate(zip(a.layers, b.layers)):
        sa, sb = la.synapses(), lb.synapses()
        for name in SYN:
            np.testing.assert_array_equal(sa[name], sb[name], err_msg=f"layer {k} {name}")
        sa, sb = la.state(), lb.state()
        for name in STATE:
            np.testing.assert_array_equal(sa[name], sb[name], err_msg=f"layer {k} {name}")


def test_reservoir_is_uniform_over_the_stream():
    # 400 networks see the same 100-sample stream (sample k has x[0] = k); each keeps 10.
    # Algorithm R keeps every sample with probability 10/100, whatever its position.
    n_nets, n_items, cap = 400, 100, 10
    x = np.zeros((n_items, 2), np.float32)
    x[:, 0] = np.arange(n_items)
    t = np.zeros((n_items, 1), np.float32)
    spec = lpn.LayerSpec(2, 1, radius=0.5)
    kept = np.zeros(n_items)
    for seed in range(n_nets):
        net = lpn.Network([spec], config=lpn.LearnConfig(replay_capacity=cap), seed=seed)
        net.learn(x, t)
        bx, _, bm, seen = buffer(net)
        assert seen == n_items and bx.shape == (cap, 2) and bm.all()
        ids = bx[:, 0].astype(int)
        assert len(set(ids)) == cap  # every slot holds a different sample
        kept[ids] += 1
    expected = n_nets * cap / n_items  # 40 per sample
    chi2 = float(np.sum((kept - expected) ** 2 / expected))
    # 99 degrees of freedom: mean 99, sd 14; 99 + 4 sd ≈ 155.
    assert chi2 < 155, chi2
    # No drift with stream position: first, middle and last thirds are kept equally often.
    thirds = [kept[:33].mean(), kept[33:66].mean(), kept[66:99].mean()]
    assert max(thirds) - min(thirds) < 0.15 * expected, thirds


def test_buffer_holds_samples_as_offered_with_their_masks(rng):
    net = lpn.Network([lpn.LayerSpec(6, 3, radius=0.5)],
                      config=lpn.LearnConfig(replay_capacity=4), seed=0)
    x = rng.normal(size=(3, 6)).astype(np.float32)
    t = rng.normal(size=(3, 3)).astype(np.float32)
    masks = np.array([[True, False, True], [False, True, False], [True, True, False]])
    net.learn(x[:2], t[:2], mask=masks[:2])
    net.learn(x[2], t[2])  # no mask: stored as all outputs on
    bx, bt, bm, seen = buffer(net)
    assert seen == 3
    np.testing.assert_array_equal(bx, x)
    np.testing.assert_array_equal(bt, t)
    np.testing.assert_array_equal(bm, np.vstack([masks[:2], [True, True, True]]))


def two_layer(capacity, **cfg):
    specs = [lpn.LayerSpec(20, 12, radius=0.25, activation="tanh"),
             lpn.LayerSpec(12, 4, radius=0.4, in_tags=[k % 2 for k in range(12)],
                           out_tags=[0, 1, 0, 1])]
    return lpn.Network(specs, config=lpn.LearnConfig(replay_capacity=capacity, **cfg), seed=3)


def test_replay_zero_learns_exactly_as_without_a_buffer(rng):
    plain, buffered = two_layer(0), two_layer(16)
    x = rng.normal(size=(300, 20)).astype(np.float32)
    t = rng.normal(size=(300, 4)).astype(np.float32)
    masks = rng.random((300, 4)) < 0.6
    for lo in range(0, 300, 50):
        sl = slice(lo, lo + 50)
        assert plain.learn(x[sl], t[sl], mask=masks[sl]) == \
            buffered.learn(x[sl], t[sl], mask=masks[sl], replay=0)
    assert_same_learning_state(plain, buffered)
    assert buffered.stats()["replays"] == 0
    assert buffered.stats()["replay_buffer"] == 16
    assert plain.stats()["steps"] == buffered.stats()["steps"] == 300


def test_replay_k_runs_k_extra_steps_per_sample(rng):
    net = two_layer(8)
    x = rng.normal(size=(20, 20)).astype(np.float32)
    t = rng.normal(size=(20, 4)).astype(np.float32)
    net.learn(x, t, replay=3)
    stats = net.stats()
    # The first sample finds the buffer empty; every later one replays 3.
    assert stats["samples"] == 20 and stats["replays"] == 19 * 3
    assert stats["steps"] == 20 + 19 * 3
    assert stats["layers"][-1]["steps"] == stats["steps"]
    assert len(net._engine.last_replayed()) == 19 * 3


def test_replay_on_conflict_fires_only_when_the_loss_jumps(rng):
    # 32 outputs: the step loss is a mean over many outputs, so once a task is learned it
    # rarely strays 1.5x above its average by chance.
    net = lpn.Network([lpn.LayerSpec(32, 32, radius=0.15)],
                      config=lpn.LearnConfig(replay_capacity=32, replay_on_conflict=True),
                      seed=1)
    sup = tasks.neighbourhood(32, 32, 0.15)
    w_a, w_b = (tasks.local_linear_map(32, 32, sup, rng) for _ in range(2))
    fired = []
    for step in range(800):
        x = rng.normal(size=32).astype(np.float32)
        t = (w_a if step < 600 else w_b) @ x + 0.1 * rng.normal(size=32)
        out = net.layers[-1].state()
        had_buffer = net.stats()["replay_buffer"] > 0
        before = net.stats()["replays"]
        loss = net.learn(x, t, replay=2)
        replayed = net.stats()["replays"] - before
        conflict = out["has_loss_avg"] and loss > 1.5 * out["loss_avg"]
        assert replayed == (2 if conflict and had_buffer else 0), f"step {step}"
        fired.append(replayed > 0)
    fired = np.array(fired)
    print(f"replay fired on {fired[400:600].mean():.1%} of settled steps, "
          f"{fired[600:620].mean():.1%} of the first 20 after the switch")
    assert fired[400:600].mean() < 0.1
    assert fired[600:620].mean() > 0.5


def test_replay_on_conflict_draws_only_samples_sharing_an_output(rng):
    net = two_layer(32, replay_on_conflict=True, conflict_ratio=0.0)  # every step conflicts
    even, odd = np.array([True, False, True, False]), np.array([False, True, False, True])
    x = rng.normal(size=(40, 20)).astype(np.float32)
    t = rng.normal(size=(40, 4)).astype(np.float32)
    net.learn(x[:10], t[:10], mask=even)
    # Only "even" samples are stored, so an "odd" sample has nothing to replay ...
    before = net.stats()["replays"]
    net.learn(x[10], t[10], mask=odd, replay=3)
    assert net.stats()["replays"] == before and len(net._engine.last_replayed()) == 0
    # ... and once both kinds are stored, each step draws only from its own kind.
    net.learn(x[11:20], t[11:20], mask=odd)
    for k in range(20, 40):
        mask = even if k % 2 else odd
        net.learn(x[k], t[k], mask=mask, replay=3)
        slots = net._engine.last_replayed()
        assert len(slots) == 3
        stored = buffer(net)[2]
        assert all(np.any(stored[s] & mask) for s in slots)


@pytest.mark.parametrize("seed", [0, 1])
def test_replay_lowers_forgetting_on_two_conflicting_tasks(seed):
    tk = tasks.conflicting_tasks(32, 32, 0.15, np.random.default_rng(seed), dim=3, corr=0.7,
                                 n_train=800, n_test=200)
    a, b = tk["A"], tk["B"]

    def rel_err(net, task):
        err = np.mean((net.predict(task["x_test"]) - task["t_test"]) ** 2)
        return float(err / np.mean(task["t_test"] ** 2))

    forgetting = {}
    for name, cfg, k in (("none", {}, 0), ("replay", {"replay_capacity": 50}, 1),
                         ("on_conflict", {"replay_capacity": 50, "replay_on_conflict": True}, 4)):
        net = lpn.Network([lpn.LayerSpec(32, 32, radius=0.15)],
                          config=lpn.LearnConfig(budget_min=0.3, **cfg), seed=seed)
        net.learn(a["x_train"], a["t_train"], replay=k)
        before = rel_err(net, a)
        net.learn(b["x_train"], b["t_train"], replay=k)
        forgetting[name] = rel_err(net, a) - before
        assert rel_err(net, b) < 0.01  # B is learned in every variant
    print(f"seed {seed}: forgetting of A {forgetting}")
    assert forgetting["none"] > 0.5
    assert forgetting["replay"] < 0.05 * forgetting["none"]
    assert forgetting["on_conflict"] < 0.7 * forgetting["none"]


def test_bad_replay_arguments_raise_and_change_nothing(rng):
    net = two_layer(4)
    net.learn(rng.normal(size=(5, 20)), rng.normal(size=(5, 4)))
    copy = clone(net)
    x, t = rng.normal(size=20), rng.normal(size=4)
    with pytest.raises(ValueError, match="replay must be >= 0"):
        net.learn(x, t, replay=-1)
    with pytest.raises(TypeError, match="replay must be an int"):
        net.learn(x, t, replay=1.5)
    with pytest.raises(TypeError, match="replay must be an int"):
        net.learn(x, t, replay=True)
    no_buffer = two_layer(0)
    no_copy = clone(no_buffer)
    with pytest.raises(ValueError, match="replay_capacity=0"):
        no_buffer.learn(x, t, replay=2)
    assert net.same_state(copy) and no_buffer.same_state(no_copy)
    with pytest.raises(ValueError, match="replay_capacity"):
        lpn.LearnConfig(replay_capacity=-1)
