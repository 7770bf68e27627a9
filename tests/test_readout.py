"""The classification readout (output_error="softmax", readout_window) and the class-balanced
replay buffer (replay_policy="balanced"): docs/rule.md, "Classification readout" and
"Local replay"."""

import json
import struct

import numpy as np
import pytest

import lpn

N_IN, N_OUT = 8, 4


def net_of(seed=0, out_activation="linear", **cfg):
    # radius 0.5 on a ring reaches every input: each output reads all 8.
    spec = lpn.LayerSpec(N_IN, N_OUT, radius=0.5, activation=out_activation)
    return lpn.Network([spec], config=lpn.LearnConfig(init_std=0.3, **cfg), seed=seed)


def rows(net, js):
    """Every value of output rows ``js``: their synapses and their per-row state."""
    syn, st = net.layers[-1].synapses(), net.layers[-1].state()
    on = np.isin(syn["post"], js)
    out = {k: v[on].copy() for k, v in syn.items()}
    out.update({k: st[k][js].copy() for k in ("bias", "error_trace")})
    return out


def assert_rows_equal(a, b):
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def header(data):
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n])["__metadata__"]


def test_softmax_error_is_onehot_minus_softmax_of_the_involved_logits(rng):
    net = net_of(output_error="softmax", bias_lr=0.5)
    x = rng.normal(size=N_IN).astype(np.float32)
    t = np.array([0, 0, 1, 0], np.float32)
    mask = np.array([True, True, True, False])
    z = net.predict(x).astype(np.float64)
    # By hand: softmax over the three involved logits only, no derivative factor.
    ez = np.exp(z[:3] - z[:3].max())
    p = ez / ez.sum()
    e = t[:3] - p
    loss = net.learn(x, t, mask=mask)
    assert loss == pytest.approx(-np.log(p[2]), rel=1e-12)
    st = net.layers[0].state()
    # After one step from h = 0: h = (1 - rho_h)|e|; bias moves by lr_b e / (1 + sum x^2).
    np.testing.assert_allclose(st["error_trace"][:3], 0.1 * np.abs(e), rtol=1e-5)
    nx2 = float(np.sum(x.astype(np.float64) ** 2))
    np.testing.assert_allclose(st["bias"][:3], 0.5 * e / (1 + nx2), rtol=1e-5)
    assert st["error_trace"][3] == 0 and st["bias"][3] == 0
    # predict still gives the logits (z), not probabilities.
    z2 = net.predict(x)
    assert not np.isclose(z2.sum(), 1.0)


def test_softmax_with_a_stable_max_takes_huge_logits(rng):
    net = net_of(output_error="softmax", lr=0.01)
    x = np.full(N_IN, 50.0, np.float32)
    net.learn(x, np.eye(N_OUT, dtype=np.float32)[1])
    loss = net.learn(x * 40, np.eye(N_OUT, dtype=np.float32)[1])
    assert np.isfinite(loss)
    assert np.all(np.isfinite(net.layers[0].synapses()["weight"]))


def test_softmax_needs_a_linear_output_layer():
    with pytest.raises(ValueError, match='must be "linear", got "tanh"'):
        net_of(out_activation="tanh", output_error="softmax")
    # Hidden layers may be anything: only the readout must give logits.
    specs = [lpn.LayerSpec(N_IN, 6, radius=0.5, activation="tanh"),
             lpn.LayerSpec(6, N_OUT, radius=0.5)]
    lpn.Network(specs, config=lpn.LearnConfig(output_error="softmax"), seed=0)


def test_invalid_readout_configs_name_expected_and_received():
    with pytest.raises(ValueError, match='readout_window=5 .*needs output_error="softmax", got '
                                         'output_error="mse"'):
        lpn.LearnConfig(readout_window=5)
    with pytest.raises(ValueError, match='unknown output_error "ce": expected "mse" or "softmax"'):
        lpn.LearnConfig(output_error="ce")
    with pytest.raises(ValueError, match='unknown replay_policy "fifo": expected "reservoir" or '
                                         '"balanced"'):
        lpn.LearnConfig(replay_policy="fifo")
    with pytest.raises(ValueError, match="readout_window must be >= 0"):
        lpn.LearnConfig(output_error="softmax", readout_window=-1)
    cfg = lpn.LearnConfig(output_error="softmax", readout_window=5)
    with pytest.raises(ValueError, match="readout_window"):
        cfg.replace(output_error="mse")


def test_window_involves_only_recent_classes_and_replay_all(rng):
    net = net_of(output_error="softmax", readout_window=3)
    eye = np.eye(N_OUT, dtype=np.float32)
    xs = rng.normal(size=(8, N_IN)).astype(np.float32)
    never = rows(net, [2, 3])
    for k, y in enumerate([0, 0, 0, 1]):
        net.learn(xs[k], eye[y])
    # New sample 5 (class 1) still sees class 0 (sample 3 is among the last 3: 3, 4, 5).
    before = rows(net, [0])
    net.learn(xs[4], eye[1])
    assert not np.array_equal(rows(net, [0])["weight"], before["weight"])
    # New sample 6 (class 1): class 0 was last positive at sample 3, outside the window; the
    # caller's mask would allow it, so the window alone leaves row 0 untouched, bit for bit.
    before = rows(net, [0])
    net.learn(xs[5], eye[1], mask=np.ones(N_OUT, bool))
    assert_rows_equal(rows(net, [0]), before)
    # Classes never seen were never involved.
    assert_rows_equal(rows(net, [2, 3]), never)
    np.testing.assert_array_equal(net._engine.readout_last(), [3, 6, 0, 0])
    # Only one class in the window: p = 1 on it, so no error at all (loss 0).
    assert net.learn(xs[6], eye[1]) == 0.0

    # Replayed samples involve their stored mask (all outputs), window or not.
    rep = net_of(output_error="softmax", readout_window=3, replay_capacity=4)
    untouched = rows(rep, [2, 3])
    for k, y in enumerate([0, 0, 1, 1]):
        rep.learn(xs[k], eye[y], replay=1)
    changed = rows(rep, [2, 3])
    assert not np.array_equal(changed["weight"], untouched["weight"])
    assert np.all(changed["error_trace"] > 0)


def test_caller_mask_and_window_combine(rng):
    net = net_of(output_error="softmax", readout_window=10)
    eye = np.eye(N_OUT, dtype=np.float32)
    for y in (0, 1, 2):
        net.learn(rng.normal(size=N_IN), eye[y], mask=np.array([True, True, True, False]))
    before = rows(net, [1, 3])
    net.learn(rng.normal(size=N_IN), eye[2], mask=np.array([True, False, True, True]))
    # Row 1 is masked out by the caller, row 3 by the window (never positive).
    assert_rows_equal(rows(net, [1, 3]), before)


def stream_classes(n_per_class, rng):
    y = np.concatenate([np.full(n, c) for c, n in enumerate(n_per_class)])
    x = rng.normal(size=(y.size, N_IN)).astype(np.float32)
    return x, np.eye(N_OUT, dtype=np.float32)[y]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_balanced_buffer_keeps_classes_balanced_where_reservoir_does_not(seed):
    rng = np.random.default_rng(seed)
    x, t = stream_classes([600, 100, 60, 40], rng)
    counts = {}
    for policy in ("reservoir", "balanced"):
        net = net_of(seed=seed, replay_capacity=40, replay_policy=policy)
        net.learn(x, t)
        _, bt, _, seen = net._engine.replay_buffer()
        counts[policy] = np.bincount(bt.reshape(-1, N_OUT).argmax(1), minlength=N_OUT)
        assert seen == 800 and counts[policy].sum() == 40
    print(f"seed {seed}: class counts in the buffer {counts}")
    # Balanced: the last classes fill up to an equal share (10 each), the first keeps its 10.
    np.testing.assert_array_equal(counts["balanced"], [10, 10, 10, 10])
    # Reservoir: proportional to the stream (600/800 of 40 = 30 expected for class 0).
    assert counts["reservoir"][0] >= 20 and counts["reservoir"][3] <= 6
    bal = net_of(seed=seed, replay_capacity=40, replay_policy="balanced")
    bal.learn(x, t)
    np.testing.assert_array_equal(bal._engine.replay_class_seen(), [600, 100, 60, 40])
    assert len(net_of(replay_capacity=4)._engine.replay_class_seen()) == 0


@pytest.mark.parametrize("policy", ["reservoir", "balanced"])
def test_replay_without_mask_trains_and_is_reproducible(policy, rng):
    x, t = stream_classes([50, 50, 50, 50], rng)
    runs = []
    for _ in range(2):
        net = net_of(seed=4, output_error="softmax", replay_capacity=20, replay_policy=policy)
        net.learn(x, t, mask=None, replay=2)
        runs.append(net)
    a, b = runs
    assert a.to_bytes() == b.to_bytes()
    assert a.stats()["replays"] == 2 * 199
    plain = net_of(seed=4, output_error="softmax", replay_capacity=20, replay_policy=policy)
    plain.learn(x, t)
    assert not np.array_equal(a.layers[0].synapses()["weight"],
                              plain.layers[0].synapses()["weight"])
    # Replay keeps the first classes: accuracy on class 0 with replay beats without.
    acc = [float((n.predict(x[:50]).argmax(1) == 0).mean()) for n in (a, plain)]
    print(f"{policy}: class-0 accuracy after the stream, replay vs none: {acc}")
    assert acc[0] > acc[1]


def test_checkpoint_round_trips_the_readout_and_buffer_state(rng):
    x, t = stream_classes([30, 30, 30, 30], rng)
    net = net_of(output_error="softmax", readout_window=7, replay_capacity=12,
                 replay_policy="balanced")
    net.learn(x[:70], t[:70], replay=1)
    data = net.to_bytes()
    meta = header(data)
    cfg = json.loads(meta["config"])
    assert (cfg["output_error"], cfg["readout_window"], cfg["replay_policy"]) == \
        ("softmax", 7, "balanced")
    back = lpn.Network.from_bytes(data)
    assert back.to_bytes() == data and back.same_state(net)
    np.testing.assert_array_equal(back._engine.readout_last(), net._engine.readout_last())
    np.testing.assert_array_equal(back._engine.replay_class_seen(),
                                  net._engine.replay_class_seen())
    net.learn(x[70:], t[70:], replay=1)
    back.learn(x[70:], t[70:], replay=1)
    assert back.to_bytes() == net.to_bytes()


def test_default_config_files_do_not_mention_the_new_fields():
    meta = header(net_of(replay_capacity=3).to_bytes())
    for key in ("output_error", "readout_window", "replay_policy"):
        assert key not in meta["config"]
    assert "class_seen" not in meta and "readout" not in json.dumps(meta)


def test_bad_input_changes_nothing(rng):
    net = net_of(output_error="softmax", readout_window=4, replay_capacity=5,
                 replay_policy="balanced")
    x, t = stream_classes([5, 5, 0, 0], rng)
    net.learn(x, t, replay=1)
    before = net.to_bytes()
    bad_t = t[0].copy()
    bad_t[1] = np.nan
    with pytest.raises(ValueError, match="t must be finite"):
        net.learn(x[:2], np.stack([t[0], bad_t]), replay=1)
    with pytest.raises(ValueError, match="mask"):
        net.learn(x[0], t[0], mask=np.ones(N_OUT + 1, bool), replay=1)
    assert net.to_bytes() == before
