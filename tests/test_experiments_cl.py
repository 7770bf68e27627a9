"""Issue 11 pieces that do not need a full experiment run: the label-free digit streams,
the LPN classifier's softmax readout and replay policy, and the grid bookkeeping."""

import numpy as np
import pytest

from lpn import tasks
from lpn.experiments import _digits_cl as D


def test_class_incremental_stream_orders_tasks_and_keeps_labels():
    s = tasks.class_incremental_digits(0, 5)
    assert s["ends"][-1] == len(s["y"])
    start = 0
    for k, end in enumerate(s["ends"]):
        assert set(np.unique(s["y"][start:end])) == {2 * k, 2 * k + 1}
        start = end
    for k, (xt, yt) in enumerate(s["tests"]):
        assert set(np.unique(yt)) == {2 * k, 2 * k + 1} and xt.shape[1] == 64
    small = tasks.class_incremental_digits(0, 5, fraction=0.3)
    assert len(small["y"]) < 0.35 * len(s["y"])
    with pytest.raises(ValueError, match="fraction"):
        tasks.class_incremental_digits(0, 5, fraction=0.0)


def test_task_free_stream_blurs_boundaries():
    s = tasks.class_incremental_digits(0, 5, blur=0.75)
    t = s["task"]
    # neighbouring tasks interleave: the task index goes down somewhere
    assert np.any(np.diff(t) < 0)
    # but the order is still roughly by task
    assert np.corrcoef(np.arange(t.size), t)[0, 1] > 0.9
    sharp = tasks.class_incremental_digits(0, 5)
    assert np.all(np.diff(sharp["task"]) >= 0)


def test_permuted_stream():
    s = tasks.permuted_digits(1, 3, fraction=0.2)
    assert len(s["perms"]) == 3 and np.array_equal(s["perms"][0], np.arange(64))
    n = s["ends"][0]
    assert s["ends"] == [n, 2 * n, 3 * n]
    x0, y0 = s["tests"][0]
    x2, y2 = s["tests"][2]
    assert np.array_equal(y0, y2)
    assert np.array_equal(x2, x0[:, s["perms"][2]])


def test_lpn_learner_uses_the_engines_readout_and_buffer():
    cfg = D.LPNLearner(0, replay=1).net.config
    assert (cfg.output_error, cfg.readout_window) == ("softmax", D.WINDOW)
    assert (cfg.replay_capacity, cfg.replay_policy) == (D.BUFFER, "balanced")
    off = D.LPNLearner(0, replay=1, off=("readout", "replay_policy")).net.config
    assert (off.output_error, off.readout_window, off.replay_policy) == ("mse", 0, "reservoir")
    assert D.LPNLearner(0).net.config.replay_capacity == 0


def _balance(balanced):
    m = D.LPNLearner(0, replay=1, off=() if balanced else ("replay_policy",))
    x = np.zeros((1200, 64), dtype=np.float32)
    m.learn(x, np.repeat([0, 1], [1000, 200]))
    _, t, _, seen = m.net._engine.replay_buffer()
    assert seen == 1200
    return np.bincount(t.reshape(-1, D.N_CLASSES).argmax(1), minlength=2)


def test_balanced_replay_buffer_keeps_classes_even_plain_reservoir_does_not():
    b = _balance(True)
    assert b.sum() == D.BUFFER and abs(int(b[0]) - int(b[1])) <= 2
    p = _balance(False)
    assert p.sum() == D.BUFFER and p[1] < 0.35 * D.BUFFER  # ~200/1200 of the stream


def test_ablation_switches_and_grids():
    assert all(len(g) == D.GRID_SIZE for g in D.GRIDS.values())
    with pytest.raises(ValueError, match="unknown ablation"):
        D.LPNLearner(0, off=("nope",))
    full = D.LPNLearner(0)
    assert full.softmax and full.balanced
    assert not D.LPNLearner(0, off=("readout",)).softmax
    assert not D.LPNLearner(0, off=("replay_policy",)).balanced


def test_lpn_learner_learns_iid_digits():
    s = tasks.class_incremental_digits(0, 5, fraction=0.5)
    m = D.make("lpn_joint", 0, D.GRIDS["lpn_joint"][0])
    R = D.run_stream(m, s, shuffle_seed=1)
    assert R[-1].mean() > 0.7  # chance is 0.1
