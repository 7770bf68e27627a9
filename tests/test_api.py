"""The Python API contract (docs/api.md): shapes, dtypes, layouts, errors, untouched state."""

import numpy as np
import pytest
from helpers import clone

import lpn


def small_net(**cfg):
    specs = [lpn.LayerSpec(16, 12, radius=0.2, activation="tanh"), lpn.LayerSpec(12, 4, radius=0.3)]
    return lpn.Network(specs, config=lpn.LearnConfig(**cfg), seed=1)


def test_version_and_exports():
    assert isinstance(lpn.__version__, str) and lpn.__version__.count(".") == 2
    for name in ("Network", "LayerSpec", "LearnConfig", "set_num_threads"):
        assert hasattr(lpn, name)


def test_shapes_and_dtypes(rng):
    net = small_net()
    assert (net.n_in, net.n_out, net.seed) == (16, 4, 1)
    x = rng.normal(size=16)
    y = net.predict(x)
    assert y.shape == (4,) and y.dtype == np.float32
    yb = net.predict(np.stack([x, x, x]))
    assert yb.shape == (3, 4) and yb.dtype == np.float32
    np.testing.assert_array_equal(yb[1], y)
    # float64, float32, Fortran order and strided views give the same answer
    xb = rng.normal(size=(5, 16))
    ref = net.predict(xb.astype(np.float32))
    np.testing.assert_array_equal(net.predict(xb), ref)
    np.testing.assert_array_equal(net.predict(np.asfortranarray(xb)), ref)
    wide = np.zeros((5, 32))
    wide[:, ::2] = xb
    np.testing.assert_array_equal(net.predict(wide[:, ::2]), ref)
    np.testing.assert_array_equal(net.predict(xb.tolist()), ref)


def test_learn_returns_mean_loss_and_reduces_error(rng):
    net = lpn.Network([lpn.LayerSpec(32, 16, radius=0.1)], seed=0)
    syn = net.layers[0].synapses()
    w = np.zeros((16, 32))
    w[syn["post"], syn["pre"]] = rng.normal(size=syn["pre"].size)
    x = rng.normal(size=(2000, 32))
    t = x @ w.T
    first = net.learn(x[:200], t[:200])
    assert isinstance(first, float) and first > 0
    net.learn(x[200:], t[200:])
    xt = rng.normal(size=(200, 32))
    mse = float(np.mean((net.predict(xt) - xt @ w.T) ** 2))
    assert mse < 0.01 * float(np.var(xt @ w.T))
    st = net.stats()
    assert st["steps"] == 2000 and st["samples"] == 2000
    layer = st["layers"][0]
    assert layer["budget"] < 0.3 or layer["touched_fraction"] < 0.5
    assert 0 < layer["touched_fraction"] <= 1
    assert layer["synapses"] == syn["pre"].size


def test_synapses_are_fresh_copies():
    net = small_net()
    a = net.layers[0].synapses()
    a["weight"][:] = 123.0
    b = net.layers[0].synapses()
    assert not np.any(b["weight"] == 123.0)
    assert set(b) == {"pre", "post", "weight", "short_trail", "long_trail", "consolidation",
                      "anchor"}


def test_mask_freezes_rows_bit_for_bit(rng):
    net = lpn.Network([lpn.LayerSpec(20, 10, radius=0.15)], seed=2)
    net.learn(rng.normal(size=(20, 20)), rng.normal(size=(20, 10)))
    before = net.layers[0].synapses()
    bias_before = net.layers[0].bias()
    mask = np.zeros(10, dtype=bool)
    mask[:4] = True
    net.learn(rng.normal(size=(50, 20)), rng.normal(size=(50, 10)), mask=mask)
    after = net.layers[0].synapses()
    frozen = before["post"] >= 4
    for k in ("weight", "short_trail", "long_trail", "consolidation", "anchor"):
        np.testing.assert_array_equal(after[k][frozen], before[k][frozen])
        assert not np.array_equal(after[k][~frozen], before[k][~frozen]) or k in (
            "consolidation", "anchor")
    np.testing.assert_array_equal(net.layers[0].bias()[4:], bias_before[4:])
    # predict zeroes masked outputs
    y = net.predict(rng.normal(size=20), mask=mask)
    assert np.all(y[4:] == 0) and np.any(y[:4] != 0)


def test_tag_partition_shares_no_synapse_and_tasks_do_not_interfere(rng):
    tags_in = np.repeat([0, 1], 16)
    tags_out = np.repeat([0, 1], 8)
    specs = [lpn.LayerSpec(32, 16, radius=0.5, in_tags=tags_in, out_tags=tags_out,
                           activation="tanh"),
             lpn.LayerSpec(16, 4, radius=0.5, in_tags=tags_out, out_tags=np.repeat([0, 1], 2))]
    net = lpn.Network(specs, seed=0)
    for k, layer in enumerate(net.layers):
        s = layer.synapses()
        tin = specs[k].in_tags
        tout = specs[k].out_tags
        assert all(tin[i] == tout[j] for i, j in zip(s["pre"], s["post"]))
    fb = net.layers[0].feedback()
    assert fb.shape == (16, 4)
    assert np.all(fb[:8, 2:] == 0) and np.all(fb[8:, :2] == 0) and np.all(fb[:8, :2] != 0)
    mask_a = np.array([True, True, False, False])
    net.learn(rng.normal(size=(100, 32)), rng.normal(size=(100, 4)), mask=mask_a)
    snap = [layer.synapses() for layer in net.layers]
    mask_b = ~mask_a
    net.learn(rng.normal(size=(100, 32)), rng.normal(size=(100, 4)), mask=mask_b)
    for k, layer in enumerate(net.layers):
        now = layer.synapses()
        a_rows = np.asarray(specs[k].out_tags)[now["post"]] == 0
        np.testing.assert_array_equal(now["weight"][a_rows], snap[k]["weight"][a_rows])


BAD_CALLS = {
    "x wrong length": lambda n: n.learn(np.zeros(15), np.zeros(4)),
    "t wrong length": lambda n: n.learn(np.zeros(16), np.zeros(5)),
    "batch mismatch": lambda n: n.learn(np.zeros((3, 16)), np.zeros((2, 4))),
    "3-d x": lambda n: n.learn(np.zeros((1, 1, 16)), np.zeros(4)),
    "nan in x": lambda n: n.learn(np.full(16, np.nan), np.zeros(4)),
    "inf in t": lambda n: n.learn(np.zeros(16), np.array([0, np.inf, 0, 0])),
    "nan late in batch": lambda n: n.learn(
        np.vstack([np.ones((3, 16)), np.full((1, 16), np.nan)]), np.zeros((4, 4))),
    "mask wrong length": lambda n: n.learn(np.zeros(16), np.zeros(4), mask=np.ones(3, bool)),
    "mask float": lambda n: n.learn(np.zeros(16), np.zeros(4), mask=np.ones(4) * 0.5),
    "string x": lambda n: n.learn(np.array(["a"] * 16), np.zeros(4)),
    "negative replay": lambda n: n.learn(np.zeros(16), np.zeros(4), replay=-1),
    "replay without buffer": lambda n: n.learn(np.zeros(16), np.zeros(4), replay=2),
    "predict wrong length": lambda n: n.predict(np.zeros(17)),
    "predict nan": lambda n: n.predict(np.full(16, np.nan)),
    "consolidate nan": lambda n: n.consolidate(float("nan")),
    "consolidate negative": lambda n: n.consolidate(-1.0),
    "contrastive shape mismatch": lambda n: n.contrastive_step(np.zeros(16), np.zeros(15)),
    "contrastive bad layer": lambda n: n.contrastive_step(np.zeros(16), np.zeros(16), layer=5),
    "layer synapses out of range": lambda n: n._engine.synapses(9),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_input_raises_and_changes_nothing(case, rng):
    net = small_net()
    net.learn(rng.normal(size=(30, 16)), rng.normal(size=(30, 4)))
    twin = clone(net)
    with pytest.raises((ValueError, TypeError)) as info:
        BAD_CALLS[case](net)
    assert len(str(info.value)) > 10
    assert net.same_state(twin), f"{case} changed the network"
    # and the network still works
    net.learn(np.ones(16), np.zeros(4))


def test_error_messages_name_expected_and_received():
    net = small_net()
    with pytest.raises(ValueError, match=r"\(15,\).*16"):
        net.predict(np.zeros(15))
    with pytest.raises(ValueError, match="mask has shape"):
        net.predict(np.zeros(16), mask=np.ones(7, bool))
    with pytest.raises(ValueError, match="finite"):
        net.learn(np.zeros(16), np.array([0, 0, np.nan, 0]))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(n_in=-1, n_out=3), ValueError, "n_in"),
        (dict(n_in=4, n_out=0), ValueError, "n_out"),
        (dict(n_in=4, n_out=3, activation="softmax"), ValueError, "activation"),
        (dict(n_in=4, n_out=3, dims=3), ValueError, "dims"),
        (dict(n_in=5, n_out=4, dims=2), ValueError, "square"),
        (dict(n_in=4, n_out=3, radius=-0.1), ValueError, "radius"),
        (dict(n_in=4, n_out=3, in_tags=[0, 1]), ValueError, "in_tags"),
        (dict(n_in=4, n_out=3, fan_in=0), ValueError, "fan_in"),
        (dict(n_in=4.5, n_out=3), TypeError, "n_in"),
        (dict(n_in=4, n_out=3, tag_affinity=[[1, 0]]), ValueError, "tag_affinity"),
    ],
)
def test_bad_specs(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        lpn.Network([lpn.LayerSpec(**kwargs)])


def test_bad_configs_and_chains():
    with pytest.raises(ValueError, match="budget"):
        lpn.LearnConfig(budget=2.0) and lpn.Network([lpn.LayerSpec(4, 4)],
                                                     lpn.LearnConfig(budget=2.0))
    with pytest.raises(TypeError):
        lpn.LearnConfig(no_such_option=1)
    with pytest.raises(ValueError, match="hidden_signal"):
        lpn.LearnConfig(hidden_signal="backprop")
    with pytest.raises(ValueError, match="rho_short"):
        lpn.Network([lpn.LayerSpec(4, 4)], lpn.LearnConfig(rho_short=1.5))
    with pytest.raises(ValueError, match="n_in"):
        lpn.Network([lpn.LayerSpec(4, 5), lpn.LayerSpec(6, 2)])
    with pytest.raises(ValueError, match="at least one"):
        lpn.Network([])
    with pytest.raises(ValueError, match="tag"):
        lpn.Network([lpn.LayerSpec(4, 4, in_tags=[0, 1, 2, 3], tag_affinity=[[1, 0], [0, 1]])])


def test_frozen_hidden_layer_never_changes(rng):
    specs = [lpn.LayerSpec(16, 12, radius=0.2, activation="tanh"), lpn.LayerSpec(12, 4)]
    net = lpn.Network(specs, lpn.LearnConfig(hidden_signal="frozen"), seed=0)
    before = net.layers[0].synapses()
    net.learn(rng.normal(size=(50, 16)), rng.normal(size=(50, 4)))
    after = net.layers[0].synapses()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])
    assert net.layers[0].feedback() is None and net.layers[0].signal == "frozen"
    assert net.stats()["layers"][1]["steps"] == 50


def test_budget_shrinks_while_loss_improves(rng):
    net = lpn.Network([lpn.LayerSpec(32, 16, radius=0.1)], seed=0)
    syn = net.layers[0].synapses()
    w = np.zeros((16, 32))
    w[syn["post"], syn["pre"]] = rng.normal(size=syn["pre"].size)
    budgets = []
    for _ in range(20):
        x = rng.normal(size=(10, 32))
        net.learn(x, x @ w.T)
        budgets.append(net.stats()["layers"][0]["budget"])
    assert budgets[-1] < 0.3
    assert min(budgets) >= 0.02
