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
