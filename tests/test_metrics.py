import math

import numpy as np
import pytest

from lpn import metrics

# Three tasks, accuracies.  Rows: after task i; columns: task j.
R_ACC = np.array(
    [
        [0.90, 0.10, 0.20],
        [0.70, 0.95, 0.30],
        [0.60, 0.80, 0.85],
    ]
)


def test_acc_is_mean_of_last_row():
    assert metrics.acc(R_ACC) == pytest.approx((0.60 + 0.80 + 0.85) / 3)


def test_bwt_accuracy_negative_when_forgetting():
    # (0.60 - 0.90) and (0.80 - 0.95)
    assert metrics.bwt(R_ACC) == pytest.approx((-0.30 - 0.15) / 2)


def test_forgetting_accuracy_uses_best_earlier():
    R = np.array(
        [
            [0.50, 0.0, 0.0],
            [0.90, 0.8, 0.0],  # task 0 improved after task 1: best earlier is 0.90
            [0.70, 0.8, 0.9],
        ]
    )
    f = metrics.per_task_forgetting(R)
    assert f.tolist() == pytest.approx([0.20, 0.0])
    assert metrics.forgetting(R) == pytest.approx(0.10)


def test_forgetting_ignores_scores_before_task_was_learned():
    # Task 1 scored 0.99 by luck before it was trained; that must not count as "earlier".
    R = np.array([[0.9, 0.99], [0.9, 0.7]])
    assert metrics.per_task_forgetting(R).tolist() == [pytest.approx(0.0)]


def test_mse_forgetting_sign_positive_means_forgot():
    E = np.array(
        [
            [0.01, 1.0, 1.0],
            [0.05, 0.02, 1.0],
            [0.21, 0.02, 0.03],
        ]
    )
    f = metrics.per_task_forgetting(E, higher_is_better=False)
    assert f.tolist() == pytest.approx([0.20, 0.0])
    assert metrics.bwt(E, higher_is_better=False) == pytest.approx((-0.20 + 0.0) / 2)


def test_mse_forgetting_uses_best_earlier_error():
    E = np.array([[0.10, 1.0, 1.0], [0.02, 0.5, 1.0], [0.12, 0.5, 0.1]])
    # best earlier error of task 0 is 0.02 (after task 1), final 0.12
    assert metrics.per_task_forgetting(E, False)[0] == pytest.approx(0.10)


def test_no_forgetting_identity():
    R = np.eye(4) * 0.0 + 1.0
    s = metrics.summary(R)
    assert s["acc"] == 1.0 and s["bwt"] == 0.0 and s["forgetting"] == 0.0
    assert s["matrix"] == R.tolist()


def test_single_task():
    assert metrics.forgetting([[0.5]]) == 0.0
    assert metrics.bwt([[0.5]]) == 0.0
    assert metrics.acc([[0.5]]) == 0.5


def test_bad_matrix_raises():
    with pytest.raises(ValueError):
        metrics.acc(np.zeros((2, 3)))


def test_relative_reduction():
    assert metrics.relative_reduction(1.0, 0.4) == pytest.approx(0.6)
    assert metrics.relative_reduction(0.0, 0.0) == 1.0
    assert metrics.relative_reduction(0.0, 0.1) == -math.inf
    assert metrics.relative_reduction(0.5, 1.0) == pytest.approx(-1.0)


def test_recall_vs_lag_bins():
    lags = [1, 2, 5, 6, 7, 30]
    correct = [1, 0, 1, 1, 0, 1]
    r = metrics.recall_vs_lag(lags, correct, [0, 4, 8, 16, 32])
    assert r["count"] == [2, 3, 0, 1]
    assert r["recall"][0] == pytest.approx(0.5)
    assert r["recall"][1] == pytest.approx(2 / 3)
    assert math.isnan(r["recall"][2])
    assert r["recall"][3] == 1.0
    assert r["centers"] == [2.0, 6.0, 12.0, 24.0]


def test_recall_vs_lag_validates():
    with pytest.raises(ValueError):
        metrics.recall_vs_lag([1, 2], [1], [0, 1])
    with pytest.raises(ValueError):
        metrics.recall_vs_lag([1], [1], [2, 1])


def test_plasticity_is_mean_of_diagonal():
    R = np.array([[0.9, 0.1, 0.0], [0.5, 0.8, 0.1], [0.2, 0.4, 0.7]])
    assert metrics.plasticity(R) == pytest.approx(0.8)
    s = metrics.summary(R)
    assert s["plasticity"] == pytest.approx(0.8)
    # a learner that never learns a new task keeps its old one but has low plasticity
    frozen = np.array([[0.9, 0.1], [0.9, 0.1]])
    assert metrics.forgetting(frozen) == 0.0 and metrics.plasticity(frozen) == pytest.approx(0.5)


def test_mean_spread():
    s = metrics.mean_spread([0.5, 0.7, 0.9])
    assert s["mean"] == pytest.approx(0.7)
    assert s["std"] == pytest.approx(0.2)
    assert (s["min"], s["max"], s["n"]) == (0.5, 0.9, 3)
    assert metrics.mean_spread([0.3])["std"] == 0.0
    with pytest.raises(ValueError, match="at least one"):
        metrics.mean_spread([])
    with pytest.raises(ValueError, match="non-finite"):
        metrics.mean_spread([0.1, math.nan])
