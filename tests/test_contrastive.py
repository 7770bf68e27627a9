"""Target-free local contrastive step (docs/rule.md, contrastive step), alone and inside networks."""

import numpy as np
import pytest

import lpn

N_IN, N_H, K = 64, 16, 4


class Data:
    """Four classes living in a 4-dim subspace of smooth patterns on the input ring, under
    strong independent noise: the structure is in the correlations between inputs."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        pos = (np.arange(N_IN) + 0.5) / N_IN
        phase = self.rng.uniform(0, 2 * np.pi, K)
        self.u = np.stack([np.cos(2 * np.pi * (k + 1) * pos + phase[k]) for k in range(K)], 1)

    def sample(self, n):
        c = self.rng.integers(0, K, n)
        z = 0.5 * self.rng.normal(size=(n, K))
        z[np.arange(n), c] += 2.0
        x = z @ self.u.T + self.rng.normal(size=(n, N_IN))
        return x.astype(np.float32), c

    def negatives(self, x):
        """Each sample's values shuffled across inputs: same values, no correlations."""
        return np.stack([self.rng.permutation(row) for row in x]).astype(np.float32)


def hidden(net, x):
    """Activations of layer 0, recomputed from its synapses (tanh)."""
    syn = net.layers[0].synapses()
    w = np.zeros((net.specs[0].n_out, net.n_in), np.float32)
    w[syn["post"], syn["pre"]] = syn["weight"]
    return np.tanh(x @ w.T + net.layers[0].bias())


def ridge_accuracy(h_train, c_train, h_test, c_test, alpha=1e-2):
    def design(h):
        return np.hstack([h, np.ones((len(h), 1))])

    a, b = design(h_train), design(h_test)
    w = np.linalg.solve(a.T @ a + alpha * len(a) * np.eye(a.shape[1]), a.T @ np.eye(K)[c_train])
    return float(np.mean((b @ w).argmax(1) == c_test))


def contrastive_net(seed=0):
    specs = [lpn.LayerSpec(N_IN, N_H, radius=0.15, activation="tanh"),
             lpn.LayerSpec(N_H, K, radius=0.5)]
    return lpn.Network(specs, config=lpn.LearnConfig(hidden_signal="contrastive"), seed=seed)


def test_goodness_separates_and_features_help_a_linear_readout():
    data = Data(0)
    net = contrastive_net()
    untrained = lpn.Network._from_engine(net._engine.clone_engine(), net.specs, net.config)
    x_train, c_train = data.sample(1000)
    x_test, c_test = data.sample(1000)
    neg_test = data.negatives(x_test)

    def separation(model):
        return float(np.mean(hidden(model, x_test) ** 2) - np.mean(hidden(model, neg_test) ** 2))

    goodness = []
    for _ in range(3000):
        xp = data.sample(1)[0][0]
        goodness.append(net.contrastive_step(xp, data.negatives(xp[None])[0], layer=0))
    goodness = np.array(goodness)
    gap_first = float(np.mean(goodness[:200, 0] - goodness[:200, 1]))
    gap_last = float(np.mean(goodness[-200:, 0] - goodness[-200:, 1]))
    stats = net.stats()
    assert stats["contrastive_steps"] == 3000
    assert (stats["goodness_pos"], stats["goodness_neg"]) == tuple(goodness[-1])
    # Two rule applications per contrastive step, no sample steps.
    assert stats["layers"][0]["steps"] == 6000 and stats["steps"] == 0
    assert stats["layers"][1]["steps"] == 0

    acc = {name: ridge_accuracy(hidden(m, x_train), c_train, hidden(m, x_test), c_test)
           for name, m in (("untrained", untrained), ("trained", net))}
    sep = {"untrained": separation(untrained), "trained": separation(net)}
    print(f"G+ - G-: first 200 steps {gap_first:.3f}, last 200 {gap_last:.3f}; held-out "
          f"separation {sep}; ridge read-out accuracy {acc}")
    assert gap_last > gap_first + 0.1
    assert sep["trained"] > 0.2 > abs(sep["untrained"])
    assert acc["trained"] > acc["untrained"] + 0.02
    assert 1 - acc["trained"] < 0.5 * (1 - acc["untrained"])


def test_contrastive_hidden_layer_is_left_alone_by_learn(rng):
    net = contrastive_net(1)
    before = net.layers[0].synapses()
    state = net.layers[0].state()
    x = rng.normal(size=(50, N_IN)).astype(np.float32)
    net.learn(x, rng.normal(size=(50, K)))
    assert net.layers[1].state()["steps"] == 50
    for name, value in before.items():
        np.testing.assert_array_equal(net.layers[0].synapses()[name], value)
    np.testing.assert_array_equal(net.layers[0].bias(), state["bias"])
    assert net.layers[0].state()["steps"] == 0
    # Any layer that learns can take the target-free step, the output layer included.
    g = net.contrastive_step(x[0], x[1], layer=1)
    assert np.all(np.isfinite(g))
    assert net.layers[1].state()["steps"] == 52


def test_goodness_is_measured_before_the_update(rng):
    net = contrastive_net(2)
    xp = rng.normal(size=N_IN).astype(np.float32)
    xn = rng.permutation(xp)
    want = (float(np.mean(hidden(net, xp[None]) ** 2)), float(np.mean(hidden(net, xn[None]) ** 2)))
    got = net.contrastive_step(xp, xn, layer=0)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert net.contrastive_step(xp, xn, layer=0) != got  # the step changed the layer


def test_bad_contrastive_arguments_raise_and_change_nothing(rng):
    specs = [lpn.LayerSpec(N_IN, N_H, radius=0.15, activation="tanh"),
             lpn.LayerSpec(N_H, N_H, radius=0.15),
             lpn.LayerSpec(N_H, K, radius=0.5)]
    net = lpn.Network(specs, config=lpn.LearnConfig(hidden_signal=("contrastive", "frozen")),
                      seed=0)
    xp = rng.normal(size=N_IN).astype(np.float32)
    net.contrastive_step(xp, rng.permutation(xp), layer=0)
    copy = lpn.Network._from_engine(net._engine.clone_engine(), net.specs, net.config)
    bad_nan = xp.copy()
    bad_nan[3] = np.nan
    cases = [
        ((xp, xp[:-1]), {}, ValueError, "shape"),
        ((xp[:-1], xp[:-1]), {}, ValueError, "shape"),
        ((np.stack([xp, xp]), np.stack([xp, xp])), {}, ValueError, "shape"),
        ((xp, xp), {"layer": 3}, ValueError, "out of range"),
        ((xp, xp), {"layer": -1}, ValueError, "out of range"),
        ((xp, xp), {"layer": 1}, ValueError, "frozen"),
        ((xp, xp), {"layer": 1.0}, TypeError, "layer must be an int"),
        ((xp, xp), {"layer": True}, TypeError, "layer must be an int"),
        ((bad_nan, xp), {}, ValueError, "finite"),
        ((xp, bad_nan), {}, ValueError, "finite"),
        ((np.array(["a"] * N_IN), xp), {}, TypeError, "x_pos"),
    ]
    for args, kwargs, err, match in cases:
        with pytest.raises(err, match=match):
            net.contrastive_step(*args, **kwargs)
        assert net.same_state(copy), (args, kwargs)
    assert net.stats()["contrastive_steps"] == 1
