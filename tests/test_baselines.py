import numpy as np
import pytest

from lpn.baselines import MLP, NLMS, HebbianMemory, dense_mlp, ewc_mlp, replay_mlp


def _linear_task(seed, n_in=8, n_out=3, n=400):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)
    X = rng.normal(size=(n, n_in))
    return X, X @ W.T


def _assert_matches_finite_differences(net, x, t, mask, gW, entries, eps=1e-6):
    """Each weight gradient `gW` at `entries` equals the central difference of the loss."""
    for W, g in zip(net.W, gW):
        for idx in entries:
            old = W[idx]
            W[idx] = old + eps
            lp, _, _ = net._grads(x, t, mask)
            W[idx] = old - eps
            lm, _, _ = net._grads(x, t, mask)
            W[idx] = old
            assert g[idx] == pytest.approx((lp - lm) / (2 * eps), rel=1e-4, abs=1e-8)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    net = MLP(5, 3, hidden=(4,), lr=0.1, seed=1, grad_clip=None)
    x = rng.normal(size=5)
    t = rng.normal(size=3)
    mask = np.array([True, False, True])
    _loss, gW, _gb = net._grads(x, t, mask)
    _assert_matches_finite_differences(net, x, t, mask, gW, [(0, 0), (1, 2)])


def test_online_sgd_learns_linear_map():
    # Task seed differs from the model seed: with equal seeds the LeCun init draws the very
    # same matrix as the task and there is nothing to learn.
    X, T = _linear_task(10)
    net = dense_mlp(8, 3, hidden=(), lr=0.05, seed=0)
    before = float(((net.predict(X) - T) ** 2).mean())
    for _ in range(5):
        net.learn(X, T)
    after = float(((net.predict(X) - T) ** 2).mean())
    assert after < 0.01 * before


def test_mask_freezes_masked_output_rows_and_predict_zeroes():
    X, T = _linear_task(1)
    net = dense_mlp(8, 3, hidden=(), lr=0.05, seed=0)
    w_before = net.W[0][1].copy()
    mask = np.array([True, False, True])
    net.learn(X[:50], T[:50], mask=mask)
    np.testing.assert_array_equal(net.W[0][1], w_before)
    y = net.predict(X[:4], mask=mask)
    assert y.dtype == np.float32 and y.shape == (4, 3)
    assert np.all(y[:, 1] == 0)


def test_shapes_validated():
    net = dense_mlp(4, 2)
    with pytest.raises(ValueError):
        net.learn(np.zeros((3, 5)), np.zeros((3, 2)))
    with pytest.raises(ValueError):
        net.predict(np.zeros(3))
    with pytest.raises(ValueError):
        MLP(4, 2, activation="nope")


def test_same_seed_same_result():
    X, T = _linear_task(2)
    a = dense_mlp(8, 3, seed=5)
    b = dense_mlp(8, 3, seed=5)
    a.learn(X[:100], T[:100])
    b.learn(X[:100], T[:100])
    np.testing.assert_array_equal(a.predict(X[:10]), b.predict(X[:10]))


def _sequential(net, tasks):
    (XA, TA), (XB, TB) = tasks
    net.learn(XA, TA)
    net.end_task(XA, TA)
    err_a = float(((net.predict(XA) - TA) ** 2).mean())
    net.learn(XB, TB)
    return float(((net.predict(XA) - TA) ** 2).mean()) - err_a


def test_ewc_and_replay_forget_less_than_plain():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 8))
    WA = rng.normal(size=(3, 8)) / np.sqrt(8)
    WB = rng.normal(size=(3, 8)) / np.sqrt(8)
    # Same inputs, different maps: maximal conflict, so any protection shows.
    tasks = ((X, X @ WA.T), (X, X @ WB.T))
    plain = _sequential(dense_mlp(8, 3, hidden=(32,), lr=0.02, seed=0), tasks)
    ewc = _sequential(ewc_mlp(8, 3, hidden=(32,), lr=0.02, seed=0, ewc_lambda=50.0), tasks)
    rep = _sequential(
        replay_mlp(8, 3, hidden=(32,), lr=0.02, seed=0, replay_capacity=100, replay=1), tasks
    )
    assert plain > 0.1
    assert ewc < plain
    assert rep < plain


def test_replay_buffer_is_bounded_reservoir():
    X, T = _linear_task(4, n=300)
    net = replay_mlp(8, 3, replay_capacity=20, replay=2, seed=0)
    net.learn(X, T)
    assert len(net.buffer) == 20
    assert net.seen == 300
    assert net.replays == 2 * 299


# ------------------------------------------------------------ issue 11 additions
def test_softmax_loss_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    net = MLP(5, 4, hidden=(6,), lr=0.1, seed=2, grad_clip=None, loss="softmax")
    x = rng.normal(size=5)
    t = np.eye(4)[2]
    for mask in (None, np.array([True, True, True, False])):
        loss, gW, gb = net._grads(x, t, mask)
        assert loss > 0
        _assert_matches_finite_differences(net, x, t, mask, gW, [(0, 0), (2, 1)])
        if mask is not None:
            # a masked class gets no gradient on its output row
            assert not np.any(gW[-1][3]) and gb[-1][3] == 0


def test_softmax_predict_is_a_distribution_and_learns_classes():
    rng = np.random.default_rng(0)
    C = rng.normal(size=(3, 6)) * 3
    y = rng.integers(3, size=600)
    X = C[y] + rng.normal(size=(600, 6)) * 0.3
    net = MLP(6, 3, hidden=(16,), lr=0.05, seed=1, loss="softmax")
    net.learn(X, np.eye(3)[y])
    P = net.predict(X)
    assert np.allclose(P.sum(1), 1.0, atol=1e-5)
    assert (P.argmax(1) == y).mean() > 0.95


def test_unknown_loss_rejected():
    with pytest.raises(ValueError, match="loss must be one of"):
        MLP(3, 2, loss="hinge")


def _two_tasks(seed):
    rng = np.random.default_rng(seed)
    XA = rng.normal(size=(300, 8))
    XB = rng.normal(size=(300, 8))
    WA = rng.normal(size=(2, 8)) / 3
    WB = rng.normal(size=(2, 8)) / 3
    return XA, XA @ WA.T, XB, XB @ WB.T


def test_si_importance_is_nonnegative_and_reduces_forgetting():
    XA, TA, XB, TB = _two_tasks(0)
    err = {}
    for c in (0.0, 10.0):
        net = MLP(8, 2, hidden=(16,), lr=0.05, seed=0, si_c=c)
        net.learn(XA, TA)
        net.end_task()
        if c > 0:
            assert all(np.all(o >= 0) for o in net.si_omega)
            assert any(np.any(o > 0) for o in net.si_omega)
            # the path integral restarts at the boundary
            assert all(not np.any(w) for w in net.si_w)
        net.learn(XB, TB)
        err[c] = float(((net.predict(XA) - TA) ** 2).mean())
    assert err[10.0] < err[0.0]


def test_nlms_matches_its_update_rule_and_converges():
    X, T = _linear_task(4, n=600)
    m = NLMS(8, 3, lr=0.5)
    x, t = X[0], T[0]
    m.learn(x, t)
    n2 = float(x @ x)
    assert np.allclose(m.W, 0.5 * np.outer(t, x) / (1e-6 + n2))
    assert np.allclose(m.b, 0.5 * t / (1 + n2))
    m.learn(X, T)
    m.learn(X, T)
    assert float(((m.predict(X) - T) ** 2).mean()) < 1e-4 * float(T.var())
    with pytest.raises(ValueError, match="lr must be in"):
        NLMS(3, 2, lr=2.5)
    with pytest.raises(ValueError, match="expected x"):
        m.learn(X[:, :5], T)


def test_hebbian_memory_sums_outer_products_and_ignores_zero_targets():
    rng = np.random.default_rng(1)
    K = rng.choice([-1.0, 1.0], size=(5, 64))
    V = np.eye(4)[[0, 1, 2, 3, 0]]
    mem = HebbianMemory(64, 4)
    mem.learn(K, V)
    assert np.allclose(mem.W, V.T @ K)
    W = mem.W.copy()
    mem.learn(rng.choice([-1.0, 1.0], size=(10, 64)), np.zeros((10, 4)))
    assert np.array_equal(mem.W, W)
    assert (mem.predict(K).argmax(1) == V.argmax(1)).all()
