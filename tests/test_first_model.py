"""A first model that learns: fan-in shown and warned about, a radius for a fan-in, empty
layers refused, targets in the shapes a new user passes, and the documented loss."""

import warnings

import numpy as np
import pytest

import lpn


def _fan_in(spec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lpn.LowFanInWarning)
        return lpn.Network([spec]).layers[0].fan_in()


def test_default_readout_warns_and_repr_shows_fan_in():
    with pytest.warns(lpn.LowFanInWarning, match=r"12-13 \(mean 12.8\)/64.*radius_for_fan_in"):
        net = lpn.Network([lpn.LayerSpec(64, 10)])
    assert "fan-in per output 12-13 (mean 12.8)/64" in repr(net)
    assert net.fan_in() == [{"n_in": 64, "mean": 12.8, "min": 12, "max": 13}]
    np.testing.assert_array_equal(net.layers[0].fan_in(),
                                  np.bincount(net.layers[0].synapses()["post"], minlength=10))


@pytest.mark.parametrize("spec", [
    lpn.LayerSpec(64, 64),                      # a same-size local map: the default's use
    lpn.LayerSpec(64, 10, radius=0.2),          # a radius chosen on purpose
    lpn.LayerSpec(64, 10, fan_in=8),            # a fan-in chosen on purpose
    lpn.LayerSpec(64, 10, radius=lpn.radius_for_fan_in(64, "all")),
])
def test_no_warning_for_chosen_receptive_fields(spec):
    with warnings.catch_warnings():
        warnings.simplefilter("error", lpn.LowFanInWarning)
        lpn.Network([spec])


@pytest.mark.parametrize("n_in, n_out, dims, periodic", [
    (64, 10, 1, True), (64, 10, 1, False), (100, 7, 1, True), (37, 50, 1, False),
    (64, 16, 2, True), (64, 16, 2, False), (144, 9, 2, True), (100, 25, 2, False),
])
@pytest.mark.parametrize("k", [1, 5, 16, "all"])
def test_radius_for_fan_in_gives_every_output_at_least_k(n_in, n_out, dims, periodic, k):
    r = lpn.radius_for_fan_in(n_in, k, dims=dims, periodic=periodic)
    want = n_in if k == "all" else k
    counts = _fan_in(lpn.LayerSpec(n_in, n_out, dims=dims, radius=r, periodic=periodic))
    assert counts.min() >= want
    exact = _fan_in(lpn.LayerSpec(n_in, n_out, dims=dims, radius=r, periodic=periodic,
                                  fan_in=want))
    assert (exact == want).all()
    if dims == 1 and periodic and k != "all":  # and not wasteful: about k candidates
        assert counts.max() <= want + 2


def test_radius_for_fan_in_rejects_bad_input():
    for bad in (0, -1, "some", 1.5, True):
        with pytest.raises(ValueError, match="fan_in"):
            lpn.radius_for_fan_in(64, bad)
    with pytest.raises(ValueError, match="square"):
        lpn.radius_for_fan_in(10, 3, dims=2)


def test_zero_synapse_layer_is_an_error():
    with pytest.raises(ValueError, match="layer 0 .* has no synapses.*radius_for_fan_in"):
        lpn.Network([lpn.LayerSpec(64, 10, radius=0.0)])
    tagged = lpn.LayerSpec(8, 4, radius=0.5, in_tags=[0] * 8, out_tags=[1] * 4)
    with pytest.raises(ValueError, match="layer 1 .* no synapses.*tags"):
        lpn.Network([lpn.LayerSpec(8, 8, radius=0.5), tagged])


def test_one_output_takes_1d_and_scalar_targets():
    x = np.random.default_rng(0).normal(size=(20, 8))
    a = lpn.Network([lpn.LayerSpec(8, 1, radius=0.5)], seed=1)
    b = lpn.Network([lpn.LayerSpec(8, 1, radius=0.5)], seed=1)
    y = x.sum(axis=1)
    a.learn(x, y)                       # (B,) for one output
    b.learn(x, y[:, None])              # (B, 1)
    assert a.same_state(b)
    a.learn(x[0], y[0])                 # a scalar for one sample
    b.learn(x[0], y[:1])
    assert a.same_state(b)


def test_batch_of_n_out_samples_is_not_read_as_one_target():
    net = lpn.Network([lpn.LayerSpec(8, 4, radius=0.5)])
    snap = net.to_bytes()
    with pytest.raises(ValueError, match=r"t has shape \(4,\) for a batch of 4 samples"):
        net.learn(np.ones((4, 8)), np.ones(4))
    with pytest.raises(ValueError, match=r"one-hot encode.*np.eye\(4"):
        net.learn(np.ones((4, 8)), np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="one-hot"):
        net.learn(np.ones((5, 8)), np.array([0, 1, 2, 3, 1]))
    with pytest.raises(ValueError, match="scalar"):
        net.learn(np.ones(8), 2)
    assert net.stats()["samples"] == 0
    assert lpn.Network.from_bytes(snap).same_state(net)


def test_learn_returns_the_loss_before_the_update():
    net = lpn.Network([lpn.LayerSpec(4, 1, radius=0.5)], seed=0)
    x, t = np.array([1.0, -1.0, 0.5, 2.0]), np.array([3.0])
    before = float(net.predict(x)[0])
    loss = net.learn(x, t)
    assert loss == pytest.approx((3.0 - before) ** 2, rel=1e-5)
    assert (3.0 - float(net.predict(x)[0])) ** 2 < loss  # the step then reduced it


def test_dense_readout_learns_digits_where_the_default_radius_does_not():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = ((X - X.mean(0)) / (X.std(0) + 1e-9)).astype(np.float32)
    T = np.eye(10, dtype=np.float32)[y]
    cfg = lpn.LearnConfig(lr=0.02, budget=1.0)

    def acc(spec):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lpn.LowFanInWarning)
            net = lpn.Network([spec], config=cfg, seed=0)
        for _ in range(5):
            net.learn(X[:1400], T[:1400])
        return float((net.predict(X[1400:]).argmax(1) == y[1400:]).mean())

    local = acc(lpn.LayerSpec(64, 10))
    dense = acc(lpn.LayerSpec(64, 10, radius=lpn.radius_for_fan_in(64, "all")))
    assert dense > 0.85 and dense > local + 0.2, (local, dense)
