"""The fast paths of issue 10 change speed only: same numbers, same errors as the general path."""

import numpy as np
import pytest

import lpn


def _net() -> lpn.Network:
    return lpn.Network([lpn.LayerSpec(36, 25, dims=2, radius=0.3, fan_in=16),
                        lpn.LayerSpec(25, 9, dims=2, radius=0.4)], seed=3)


def test_single_float32_sample_learns_like_the_general_path() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 36)).astype(np.float32)
    t = rng.normal(size=(30, 9)).astype(np.float32)
    fast, general = _net(), _net()
    for i in range(30):
        a = fast.learn(x[i], t[i])  # 1-D float32, contiguous: the fast path
        b = general.learn(x[i].astype(np.float64).tolist(), t[i:i + 1].astype(np.float64))
        assert a == b
    assert fast.same_state(general)


@pytest.mark.parametrize("n_in, n_out", [(36, 9), (400, 100)])
def test_both_one_sample_paths_learn_like_the_general_path(n_in, n_out) -> None:
    # Up to 256 values of x and t together the engine copies the sample under the GIL; beyond
    # it borrows the arrays. Either way: the general path's numbers, and a declined form
    # changes nothing.
    rng = np.random.default_rng(4)
    x = rng.normal(size=(12, n_in)).astype(np.float32)
    t = rng.normal(size=(12, n_out)).astype(np.float32)

    def net() -> lpn.Network:
        return lpn.Network([lpn.LayerSpec(n_in, n_out, dims=1, radius=0.2)], seed=5)

    fast, general = net(), net()
    for i in range(12):
        a = fast._engine.learn_one(x[i], t[i])
        assert a is not None
        b = general.learn(x[i].astype(np.float64).tolist(), t[i:i + 1].astype(np.float64))
        assert a == b
    assert fast.same_state(general)
    for xi, ti in _declined_inputs(x[0], t[0]):
        assert fast._engine.learn_one(xi, ti) is None
    assert fast.same_state(general)


@pytest.mark.parametrize("x, t, err", [
    (np.zeros(35, np.float32), np.zeros(9, np.float32), ValueError),
    (np.zeros(36, np.float32), np.zeros(8, np.float32), ValueError),
    (np.full(36, np.nan, np.float32), np.zeros(9, np.float32), ValueError),
    (np.zeros((2, 36), np.float32)[:, 0], np.zeros(9, np.float32), ValueError),
])
def test_bad_single_samples_are_refused_and_change_nothing(x, t, err) -> None:
    net, ref = _net(), _net()
    with pytest.raises(err):
        net.learn(x, t)
    assert net.same_state(ref)


def test_replay_false_is_still_a_type_error() -> None:
    net = _net()
    with pytest.raises(TypeError):
        net.learn(np.zeros(36, np.float32), np.zeros(9, np.float32), replay=False)


def _misaligned(v: np.ndarray) -> np.ndarray:
    """A float32 copy of `v` at an odd byte offset (np.frombuffer with offset=1)."""
    buf = bytearray(v.size * 4 + 1)
    out = np.frombuffer(buf, dtype=np.float32, count=v.size, offset=1)
    assert not out.flags.aligned
    out[...] = v  # frombuffer over a bytearray is writable
    return out


def _declined_inputs(x: np.ndarray, t: np.ndarray) -> list:
    """The same sample in forms the engine's one-sample path declines (the general path takes
    them): strided, float64, big-endian, lists, 2-D, misaligned."""
    strided = np.zeros((x.size, 2), np.float32)
    strided[:, 0] = x
    assert not strided[:, 0].flags.c_contiguous
    return [
        (strided[:, 0], t),
        (x.astype(np.float64), t),
        (x.astype(">f4"), t.astype(">f4")),
        (x.tolist(), t.tolist()),
        (x[None, :], t[None, :]),
        (_misaligned(x), _misaligned(t)),
    ]


def test_engine_one_sample_path_declines_other_inputs_and_changes_nothing() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=36).astype(np.float32)
    t = rng.normal(size=9).astype(np.float32)
    net, ref = _net(), _net()
    for xi, ti in _declined_inputs(x, t):
        assert net._engine.learn_one(xi, ti) is None
        assert net.same_state(ref)
    # Right dtype, wrong length: declined too (the general path names the shapes).
    assert net._engine.learn_one(x[:35].copy(), t) is None
    assert net._engine.learn_one(x, t[:8].copy()) is None
    assert net.same_state(ref)


def test_every_form_of_one_sample_learns_the_same_numbers() -> None:
    rng = np.random.default_rng(2)
    xs = rng.normal(size=(6, 36)).astype(np.float32)
    ts = rng.normal(size=(6, 9)).astype(np.float32)
    fast = _net()
    want = [fast.learn(x, t) for x, t in zip(xs, ts)]
    for k in range(6):
        other = _net()
        got = [other.learn(*_declined_inputs(x, t)[k]) for x, t in zip(xs, ts)]
        assert got == want, k
        assert other.same_state(fast), k


def test_misaligned_input_is_copied_not_refused() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 36)).astype(np.float32)
    net = _net()
    got = net.predict(_misaligned(x.reshape(-1)).reshape(4, 36))
    np.testing.assert_array_equal(got, net.predict(x))


@pytest.mark.parametrize("n_in, n_out", [(36, 9), (400, 100)])
def test_one_sample_predict_is_the_general_paths_output(n_in, n_out) -> None:
    # `predict` of one contiguous float32 sample goes through the engine's `predict_one`
    # (copied under the GIL up to 256 inputs, borrowed beyond): the batch path's numbers, a
    # fresh (n_out,) float32 array, and every other form of the sample declined to the
    # general path, which gives the same numbers.
    rng = np.random.default_rng(6)
    x = rng.normal(size=(5, n_in)).astype(np.float32)
    t = rng.normal(size=(5, n_out)).astype(np.float32)
    net = lpn.Network([lpn.LayerSpec(n_in, 40, dims=1, radius=0.2),
                       lpn.LayerSpec(40, n_out, dims=1, radius=0.3)], seed=7)
    net.learn(x, t)
    batch = net.predict(x)
    for i in range(5):
        y = net._engine.predict_one(x[i])
        assert y is not None and y.shape == (n_out,) and y.dtype == np.float32
        np.testing.assert_array_equal(y, batch[i])
        got = net.predict(x[i])
        np.testing.assert_array_equal(got, batch[i])
        got[0] = 123.0  # its own buffer: writing to it changes no later answer
        np.testing.assert_array_equal(net.predict(x[i]), batch[i])
        for xi, _ in _declined_inputs(x[i], t[i]):
            if isinstance(xi, np.ndarray) and xi.ndim == 1 and xi.dtype == np.float32 \
                    and xi.flags.c_contiguous and xi.flags.aligned and xi.dtype.isnative:
                continue
            assert net._engine.predict_one(xi) is None
            np.testing.assert_array_equal(np.asarray(net.predict(xi)).reshape(-1), batch[i])
    assert net._engine.predict_one(x[0, :-1].copy()) is None  # wrong length: declined


def test_one_sample_predict_refuses_bad_input_like_the_general_path() -> None:
    net = _net()
    bad = np.zeros(36, np.float32)
    bad[7] = np.inf
    with pytest.raises(ValueError, match="x") as fast:
        net.predict(bad)
    with pytest.raises(ValueError, match="x") as general:
        net.predict(bad[None, :])
    assert str(fast.value) == str(general.value)
    with pytest.raises(ValueError):
        net.predict(np.zeros(35, np.float32))
    # A mask takes the general path, and masks the single sample's outputs.
    x = np.ones(36, np.float32)
    m = np.zeros(9, bool)
    m[:3] = True
    y = net.predict(x, mask=m)
    assert y.shape == (9,) and np.all(y[3:] == 0)
    np.testing.assert_array_equal(y[:3], net.predict(x)[:3])
